import { html } from './html.js';
import { api, can, seg } from './api.js';
import { links } from './router.js';
import { words } from './format.js';
import {
  Loading, Notice, PageHead, Pager, StatusBadge, Table, Time, useCursorPages, useInterval, useLoad,
} from './ui.js';

const PAGE = 25;

/** "every 15 min · _READY.dat" or "manual". */
export function triggerText(polling) {
  if (!polling || !polling.enabled) return 'manual only';
  return `polls every ${polling.intervalMinutes} min for ${polling.touchFile}`;
}

async function pipelinesWithLastRun(cursor) {
  const query = `?limit=${PAGE}${cursor ? `&cursor=${seg(cursor)}` : ''}`;
  const page = await api.get(`/pipelines${query}`);
  // The list has no last run; one small request per pipeline of the page,
  // all at once.
  const last = await Promise.all(page.items.map((p) => api
    .get(`/pipelines/${seg(p.id)}/runs?limit=1`)
    .then((runs) => runs.items[0] || null, () => null)));
  return { ...page, items: page.items.map((p, i) => ({ ...p, lastRun: last[i] })) };
}

export function PipelinesPage({ who }) {
  const pages = useCursorPages();
  const list = useLoad(() => pipelinesWithLastRun(pages.cursor), [pages.cursor]);
  useInterval(list.reload, 5000, true);
  const items = list.data ? list.data.items : [];
  return html`<${PageHead} title="Pipelines">
      ${can(who, 'write') ? html`<a class="button primary" href=${links.pipelineNew()}>New pipeline</a>` : null}
    <//>
    <${Notice} error=${list.error} />
    ${list.data === undefined ? html`<${Loading} what="Loading pipelines" />` : null}
    ${list.data && !items.length ? html`<section class="card empty">
      <p>No pipelines yet.</p>
      ${can(who, 'write') ? html`<p>Add a <a href=${links.connectors()}>connector</a>, then create a <a href=${links.pipelineNew()}>new pipeline</a>.</p>` : null}
    </section>` : null}
    ${items.length ? html`<section class="card flush">
      <${Table} label="Pipelines" head=${['Name', 'Status', 'Strategy', 'Trigger', 'Last run']}>
        ${items.map((p) => html`<tr>
          <th scope="row"><a href=${links.pipeline(p.id)}>${p.name}</a>
            <div class="muted small">${p.destination.table}</div></th>
          <td><span class="pill pill-${p.status}">${p.status}</span></td>
          <td>${words(p.loadStrategy)}</td>
          <td>${triggerText(p.polling)}</td>
          <td>${p.lastRun ? html`<a href=${links.run(p.id, p.lastRun.id)} class="plain">
              <${StatusBadge} status=${p.lastRun.status} /></a>
              <div class="small"><${Time} at=${p.lastRun.createdAt} compact /></div>`
            : html`<span class="muted">no runs yet</span>`}</td>
        </tr>`)}
      <//>
    </section>` : null}
    <${Pager} pages=${pages} nextCursor=${list.data && list.data.nextCursor} label="Pipeline pages" />`;
}
