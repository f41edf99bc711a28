// Preact with htm: components written as tagged templates, no build step.
// Every value interpolated into a template becomes a text node or a property,
// never markup; nothing in the dashboard uses dangerouslySetInnerHTML (and
// the Content-Security-Policy enforces Trusted Types, so it could not).
import { h, render, Fragment } from '../vendor/preact.module.js';
import {
  useState, useEffect, useRef, useCallback, useMemo,
} from '../vendor/hooks.module.js';
import htm from '../vendor/htm.module.js';

export const html = htm.bind(h);
export { render, Fragment, useState, useEffect, useRef, useCallback, useMemo };
