import { html, useState } from './html.js';
import { ApiError, api, can, seg } from './api.js';
import { go, links } from './router.js';
import { bytes, duration, num, words } from './format.js';
import {
  ConfirmButton, Loading, Notice, PageHead, Pager, RUN_ACTIVE, RowErrors, StatusBadge, Table, Time,
  useAction, useCursorPages, useInterval, useLoad,
} from './ui.js';
import { triggerText } from './pipelines.js';

const RUNS_PAGE = 20;
const DRY_RUN_ROWS = 1000;

/** A delimiter or quote as people read it. */
const charName = (c) => ({ '\t': 'tab', ' ': 'space' }[c] || c);

function Definition({ p, connector }) {
  const s = p.source;
  const rows = [
    ['Connector', connector ? `${connector.name} (${connector.type})` : p.connectorId],
    ['Source', `${s.prefix || '(bucket root)'}${s.pattern ? ` · ${s.pattern}` : ' · every file'}`],
    ['Format', s.format === 'csv'
      ? html`CSV, delimiter <code>${charName(s.csv.delimiter)}</code>, quote <code>${charName(s.csv.quote)}</code>, ${s.csv.header ? 'with' : 'no'} header line`
      : 'JSON Lines'],
    ['Compression', s.compression],
    ['Destination', p.destination.table],
    ['Key columns', p.destination.keyColumns.length ? p.destination.keyColumns.join(', ') : 'none'],
    ['Load strategy', p.loadStrategy],
    ['Partitions', num(p.partitions)],
    ['Error threshold', p.maxErrors === null || p.maxErrors === undefined ? 'unlimited' : `${num(p.maxErrors)} failed rows`],
    ['Trigger', triggerText(p.polling)],
  ];
  if (p.polling && p.polling.enabled) {
    rows.push(['Touch file', `${p.polling.prefix || s.prefix}${p.polling.touchFile}${p.polling.deleteAfterProcess ? ' (deleted after a successful run)' : ''}`]);
  }
  return html`<dl class="facts">${rows.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}

function Columns({ columns }) {
  return html`<${Table} label="Columns" head=${['Column', 'Type', 'Required', 'Constraints']}>
    ${columns.map((c) => {
      const rules = [];
      if (c.maxLength) rules.push(`at most ${num(c.maxLength)} characters`);
      if (c.pattern) rules.push(`matches ${c.pattern}`);
      if (c.allowedValues) rules.push(`one of ${c.allowedValues.join(', ')}`);
      return html`<tr>
        <th scope="row"><code>${c.name}</code></th>
        <td>${c.type}</td>
        <td>${c.required ? 'yes' : 'no'}</td>
        <td>${rules.length ? rules.join('; ') : html`<span class="muted">—</span>`}</td>
      </tr>`;
    })}
  <//>`;
}

function DryRunReport({ report, onClose }) {
  return html`<section class="card" aria-labelledby="dry-title">
    <div class="section-head">
      <h2 id="dry-title">Dry run: the first ${num(report.rowsChecked)} rows</h2>
      <button type="button" onClick=${onClose}>Close</button>
    </div>
    <p>Nothing was loaded. ${report.complete ? 'These were all the rows of the source.' : 'The source has more rows.'}</p>
    <dl class="stats">
      <div><dt>Files matched</dt><dd>${num(report.filesMatched)}</dd></div>
      <div><dt>Files read</dt><dd>${num(report.filesRead)}</dd></div>
      <div><dt>Rows checked</dt><dd>${num(report.rowsChecked)}</dd></div>
      <div><dt>Would load</dt><dd class="ok">${num(report.validRows)}</dd></div>
      <div><dt>Would reject</dt><dd class=${report.failedRows ? 'bad' : ''}>${num(report.failedRows)}</dd></div>
    </dl>
    ${report.warnings.length ? html`<h3>Header warnings</h3>
      <ul class="warnings">${report.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : null}
    ${report.errors.length ? html`<h3>First errors</h3>
      <${RowErrors} errors=${report.errors} label="Dry-run errors" />` : html`<p class="ok">No validation errors in these rows.</p>`}
  </section>`;
}

function Runs({ pipelineId }) {
  const pages = useCursorPages();
  const runs = useLoad(() => api.get(`/pipelines/${seg(pipelineId)}/runs?limit=${RUNS_PAGE}${pages.cursor ? `&cursor=${seg(pages.cursor)}` : ''}`), [pipelineId, pages.cursor]);
  const items = runs.data ? runs.data.items : [];
  useInterval(runs.reload, 2000, items.some((r) => RUN_ACTIVE.includes(r.status)));
  useInterval(runs.reload, 10000, true);
  return html`<section class="card flush" aria-labelledby="runs-title">
    <h2 id="runs-title" class="pad">Runs</h2>
    <${Notice} error=${runs.error} />
    ${runs.data === undefined ? html`<${Loading} what="Loading runs" />` : null}
    ${runs.data && !items.length ? html`<p class="pad muted">No runs yet.</p>` : null}
    ${items.length ? html`<${Table} label="Runs" head=${['Run', 'Status', 'Started', 'Duration',
      { label: 'Loaded', num: true }, { label: 'Failed', num: true }, { label: 'Skipped', num: true }, { label: 'Rows', num: true }]}>
      ${items.map((r) => html`<tr>
        <th scope="row"><a href=${links.run(pipelineId, r.id)}><code>${r.id}</code></a>
          <div class="muted small">${r.metadata.retryOf ? `retry of ${r.metadata.retryOf}` : `by ${r.trigger}`}</div></th>
        <td><${StatusBadge} status=${r.status} /></td>
        <td><${Time} at=${r.startedAt || r.createdAt} compact /></td>
        <td>${duration(r.durationMs)}</td>
        <td class="num">${num(r.loadedRows)}</td>
        <td class="num">${num(r.failedRows)}</td>
        <td class="num">${num(r.skippedRows)}</td>
        <td class="num">${num(r.processedRows)}${r.totalRows !== null ? html` <span class="muted">/ ${num(r.totalRows)}</span>` : null}</td>
      </tr>`)}
    <//>` : null}
    <div class="pad"><${Pager} pages=${pages} nextCursor=${runs.data && runs.data.nextCursor} label="Run pages" /></div>
  </section>`;
}

/** The file ledger, once the server has one: hidden while the endpoint is a 404. */
function Files({ pipelineId }) {
  const pages = useCursorPages();
  const files = useLoad(() => api
    .get(`/pipelines/${seg(pipelineId)}/files?limit=50${pages.cursor ? `&cursor=${seg(pages.cursor)}` : ''}`)
    .catch((e) => {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }), [pipelineId, pages.cursor]);
  if (files.data === null || (files.data === undefined && !files.error)) return null;
  const items = files.data ? files.data.items || [] : [];
  return html`<section class="card flush" aria-labelledby="files-title" data-section="files">
    <h2 id="files-title" class="pad">Files</h2>
    <${Notice} error=${files.error} />
    ${files.data && !items.length ? html`<p class="pad muted">No file loaded yet.</p>` : null}
    ${items.length ? html`<${Table} label="Files" head=${['File', { label: 'Size', num: true }, { label: 'Rows', num: true }, 'Run', 'Loaded']}>
      ${items.map((f) => html`<tr>
        <th scope="row"><code>${f.key}</code></th>
        <td class="num">${bytes(f.size)}</td>
        <td class="num">${num(f.rows)}</td>
        <td>${f.runId ? html`<a href=${links.run(pipelineId, f.runId)}><code>${f.runId}</code></a>` : '—'}</td>
        <td><${Time} at=${f.loadedAt || f.createdAt} compact /></td>
      </tr>`)}
    <//>` : null}
    <div class="pad"><${Pager} pages=${pages} nextCursor=${files.data && files.data.nextCursor} label="File pages" /></div>
  </section>`;
}

export function PipelinePage({ id, who }) {
  const pipeline = useLoad(() => api.get(`/pipelines/${seg(id)}`), [id]);
  const connector = useLoad(() => (pipeline.data
    ? api.get(`/connectors/${seg(pipeline.data.connectorId)}`).catch(() => null)
    : Promise.resolve(null)), [pipeline.data && pipeline.data.connectorId]);
  const { busy, error, act } = useAction();
  const [dryRun, setDryRun] = useState(null);
  if (pipeline.error && pipeline.data === undefined) {
    return html`<${PageHead} crumbs=${[{ href: links.pipelines(), label: 'Pipelines' }]} title="Pipeline" />
      <${Notice} error=${pipeline.error} />`;
  }
  const p = pipeline.data;
  if (!p) return html`<${Loading} what="Loading the pipeline" />`;
  const writer = can(who, 'write');
  const paused = p.status === 'paused';
  return html`<${PageHead} crumbs=${[{ href: links.pipelines(), label: 'Pipelines' }]} title=${p.name}>
      <span class="pill pill-${p.status}">${p.status}</span>
      ${writer ? html`
        <button type="button" class="primary" disabled=${busy !== null || paused}
          title=${paused ? 'Resume the pipeline to run it' : ''}
          onClick=${() => act('start', async () => {
            const run = await api.post(`/pipelines/${seg(id)}/runs`);
            go(links.run(id, run.id));
          })}>${busy === 'start' ? 'Starting…' : 'Start run'}</button>
        <button type="button" disabled=${busy !== null}
          onClick=${() => act('dry', async () => {
            setDryRun(await api.post(`/pipelines/${seg(id)}/dry-run?rows=${DRY_RUN_ROWS}`));
          })}>${busy === 'dry' ? 'Checking…' : 'Dry run'}</button>
        <button type="button" disabled=${busy !== null}
          onClick=${() => act('pause', async () => {
            await api.patch(`/pipelines/${seg(id)}`, { status: paused ? 'active' : 'paused' });
            await pipeline.reload();
          })}>${paused ? 'Resume' : 'Pause'}</button>
        <a class="button" href=${links.pipelineEdit(id)}>Edit</a>
        <${ConfirmButton} label="Delete" question="Delete this pipeline and its run history?"
          onConfirm=${() => act('delete', async () => {
            await api.del(`/pipelines/${seg(id)}`);
            go(links.pipelines());
          })} />` : null}
    <//>
    <${Notice} error=${error} />
    ${dryRun ? html`<${DryRunReport} report=${dryRun} onClose=${() => setDryRun(null)} />` : null}
    <${Runs} pipelineId=${id} />
    <${Files} pipelineId=${id} />
    <div class="two">
      <section class="card" aria-labelledby="def-title">
        <h2 id="def-title">Definition</h2>
        <${Definition} p=${p} connector=${connector.data} />
        <p class="muted small">Created <${Time} at=${p.createdAt} compact />, changed <${Time} at=${p.updatedAt} compact />.</p>
      </section>
      <section class="card flush" aria-labelledby="cols-title">
        <h2 id="cols-title" class="pad">Columns</h2>
        <${Columns} columns=${p.schema.columns} />
      </section>
    </div>`;
}
