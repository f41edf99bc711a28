// Small shared pieces: badges, bars, times, notices, fields, pagers and the
// hooks that load data.
import { html, useCallback, useEffect, useRef, useState } from './html.js';
import { ago, at, num, percent, words } from './format.js';

/** Loads `load()` when `deps` change; `reload()` loads again in place. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const current = useRef(0);
  const run = useCallback(() => {
    const ticket = current.current + 1;
    current.current = ticket;
    return load().then(
      (data) => {
        if (current.current === ticket) setState({ data, error: null, loading: false });
        return data;
      },
      (error) => {
        if (current.current === ticket) setState((s) => ({ ...s, error, loading: false }));
        return undefined;
      },
    );
  }, deps);
  useEffect(() => {
    setState({ data: undefined, error: null, loading: true });
    run();
    return () => {
      current.current += 1;
    };
  }, [run]);
  return { ...state, reload: run };
}

/** Calls `tick` every `ms` while `active`, and once more when it stops being. */
export function useInterval(tick, ms, active) {
  const saved = useRef(tick);
  saved.current = tick;
  useEffect(() => {
    if (!active) return undefined;
    let timer = null;
    let stopped = false;
    const next = async () => {
      await saved.current();
      if (!stopped) timer = setTimeout(next, ms);
    };
    timer = setTimeout(next, ms);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [ms, active]);
}

// One clock for every relative time on the page, so that two times of the
// same second never read differently.
let clock = Date.now();
const clockListeners = new Set();
setInterval(() => {
  clock = Date.now();
  clockListeners.forEach((listener) => listener(clock));
}, 5_000);

/** The page's clock, moving every 5 s: keeps "2 minutes ago" current. */
export function useNow() {
  const [now, setNow] = useState(clock);
  useEffect(() => {
    clockListeners.add(setNow);
    return () => clockListeners.delete(setNow);
  }, []);
  return now;
}

/**
 * Runs one user action at a time: `busy` names the one under way, `error`
 * holds the last failure until the next action.
 */
export function useAction() {
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const act = async (what, fn) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return { busy, error, act };
}

/** A list page with Previous / Next over `nextCursor`. */
export function useCursorPages() {
  const [stack, setStack] = useState([null]);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    hasPrev: stack.length > 1,
    next: (cursor) => setStack((s) => [...s, cursor]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack([null]),
  };
}

export const RUN_ACTIVE = ['pending', 'running'];
export const RUN_RETRYABLE = ['failed', 'completed_with_errors'];

export function StatusBadge({ status }) {
  if (!status) return html`<span class="muted">no runs yet</span>`;
  return html`<span class="badge badge-${status}" data-status=${status}>${words(status)}</span>`;
}

/** A relative time with the absolute one beside it (or only in its tooltip). */
export function Time({ at: iso, compact }) {
  const now = useNow();
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso} title=${at(iso)}>${ago(iso, Math.max(now, Date.parse(iso)))}</time>${compact
    ? null
    : html` <span class="muted small">(${at(iso)})</span>`}`;
}

/**
 * A bar of `total` made of coloured `parts` ({value, kind, label}); its
 * accessible value is the sum of the parts.
 */
export function Bar({ parts, total, label, big }) {
  const done = parts.reduce((sum, p) => sum + p.value, 0);
  const pct = percent(done, total);
  return html`<div class=${big ? 'bar bar-big' : 'bar'} role="progressbar" aria-label=${label}
      aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}
      aria-valuetext=${`${num(done)} of ${num(total)} (${pct}%)`}>
    ${parts.filter((p) => p.value > 0).map((p) => html`<span class="bar-part bar-${p.kind}"
      title=${`${p.label}: ${num(p.value)}`}
      style=${{ width: `${total ? (p.value / total) * 100 : 0}%` }}></span>`)}
  </div>`;
}

/** An error from the API, in plain words. */
export function Notice({ error, kind = 'error', children }) {
  if (!error && !children) return null;
  return html`<div class="notice notice-${kind}" role=${kind === 'error' ? 'alert' : 'status'}>
    ${error ? error.message : null}${children}
  </div>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

/** A labelled form control with its hint and its error from the API. */
export function Field({ label, id, error, hint, children, inline }) {
  const hintId = hint ? `${id}-hint` : null;
  return html`<div class=${`field${inline ? ' field-inline' : ''}${error ? ' field-invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint ? html`<small id=${hintId} class="hint">${hint}</small>` : null}
    ${error ? html`<small class="field-error" id=${`${id}-error`} role="alert">${error}</small>` : null}
  </div>`;
}

/** A button that asks once more before it acts (no browser dialog). */
export function ConfirmButton({ label, question, onConfirm, busyLabel, className = 'danger' }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (busy) return html`<button type="button" class=${className} disabled>${busyLabel || label}…</button>`;
  if (!asking) {
    return html`<button type="button" class=${className} onClick=${() => setAsking(true)}>${label}</button>`;
  }
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span>${question}</span>
    <button type="button" class=${className} onClick=${async () => {
      setBusy(true);
      try {
        await onConfirm();
      } finally {
        setBusy(false);
        setAsking(false);
      }
    }}>Yes, ${label.toLowerCase()}</button>
    <button type="button" onClick=${() => setAsking(false)}>No</button>
  </span>`;
}

export function Pager({ pages, nextCursor, label }) {
  if (!pages.hasPrev && !nextCursor) return null;
  return html`<nav class="pager" aria-label=${label || 'Pages'}>
    <button type="button" disabled=${!pages.hasPrev} onClick=${pages.prev}>← Previous</button>
    <span class="muted">Page ${pages.page}</span>
    <button type="button" disabled=${!nextCursor} onClick=${() => pages.next(nextCursor)}>Next →</button>
  </nav>`;
}

/**
 * A table that scrolls sideways when it must; on phones its rows become
 * cards, each cell labelled with its column's heading (set as a data
 * attribute, read by the style sheet).
 */
export function Table({ label, head, children, className }) {
  const body = useRef(null);
  const labels = head.map((h) => h.label || h);
  useEffect(() => {
    if (!body.current) return;
    for (const row of body.current.rows) {
      Array.from(row.cells).forEach((cell, i) => {
        if (labels[i] !== undefined) cell.dataset.label = labels[i];
      });
    }
  });
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${label}>
    <table class=${`stack ${className || ''}`}>
      <thead><tr>${head.map((h) => html`<th scope="col" class=${h.num ? 'num' : ''}>${h.label || h}</th>`)}</tr></thead>
      <tbody ref=${body}>${children}</tbody>
    </table>
  </div>`;
}

/** Validation errors (row, column, value, message), values shown as text. */
export function RowErrors({ errors, label }) {
  return html`<${Table} label=${label} className="errors"
      head=${[{ label: 'Row', num: true }, 'Column', 'Value', 'Error']}>
    ${errors.map((e) => html`<tr>
      <td class="num">${num(e.row)}</td>
      <td><code>${e.column}</code></td>
      <td class="value"><code>${e.value}</code></td>
      <td>${e.error}</td>
    </tr>`)}
  <//>`;
}

/** A page heading with its breadcrumb and actions. */
export function PageHead({ crumbs, title, children }) {
  return html`<header class="page-head">
    ${crumbs && crumbs.length ? html`<nav class="crumbs" aria-label="Breadcrumb"><ol>
      ${crumbs.map((c) => html`<li><a href=${c.href}>${c.label}</a></li>`)}
    </ol></nav>` : null}
    <div class="page-title">
      <h1>${title}</h1>
      ${children ? html`<div class="actions">${children}</div>` : null}
    </div>
  </header>`;
}
