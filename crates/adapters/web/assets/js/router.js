// Routes live in the URL's fragment (#/pipelines/…), so the server only ever
// serves one page, and a link can be bookmarked or shared (ids only: the key
// is never in a URL).
import { useEffect, useState } from './html.js';
import { seg } from './api.js';

const ROUTES = [
  ['signin', /^#\/signin$/],
  ['pipelines', /^(?:#\/?(?:pipelines)?)?$/],
  ['pipelineNew', /^#\/pipelines\/new$/],
  ['pipeline', /^#\/pipelines\/([^/]+)$/],
  ['pipelineEdit', /^#\/pipelines\/([^/]+)\/edit$/],
  ['run', /^#\/pipelines\/([^/]+)\/runs\/([^/]+)$/],
  ['connectors', /^#\/connectors$/],
  ['apiKeys', /^#\/api-keys$/],
];

/** The route of a fragment: `{name, params}`; `notFound` when none matches. */
export function parse(hash) {
  for (const [name, pattern] of ROUTES) {
    const m = pattern.exec(hash);
    if (m) return { name, params: m.slice(1).map(decodeURIComponent) };
  }
  return { name: 'notFound', params: [] };
}

/** The current route, updated when the fragment changes. */
export function useRoute() {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const changed = () => setHash(window.location.hash);
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return parse(hash);
}

export const go = (href) => {
  window.location.hash = href.replace(/^#/, '');
};

export const links = {
  pipelines: () => '#/pipelines',
  pipelineNew: () => '#/pipelines/new',
  pipeline: (id) => `#/pipelines/${seg(id)}`,
  pipelineEdit: (id) => `#/pipelines/${seg(id)}/edit`,
  run: (pipeline, run) => `#/pipelines/${seg(pipeline)}/runs/${seg(run)}`,
  connectors: () => '#/connectors',
  apiKeys: () => '#/api-keys',
  signin: () => '#/signin',
};
