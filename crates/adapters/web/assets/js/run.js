import { html, useState } from './html.js';
import { api, can, download, seg } from './api.js';
import { go, links } from './router.js';
import { at, duration, num, percent, words } from './format.js';
import {
  Bar, Loading, Notice, PageHead, Pager, RUN_ACTIVE, RUN_RETRYABLE, RowErrors, StatusBadge, Time,
  useAction, useCursorPages, useInterval, useLoad,
} from './ui.js';

/** How often an active run is read again (the issue asks for 2 s at most). */
const REFRESH_MS = 1000;
const ERRORS_PAGE = 50;

async function readRun(pipelineId, runId) {
  const base = `/pipelines/${seg(pipelineId)}/runs/${seg(runId)}`;
  const [run, progress] = await Promise.all([api.get(base), api.get(`${base}/progress`)]);
  return { run, progress };
}

function Lineage({ pipelineId, run }) {
  const m = run.metadata || {};
  const parts = [];
  if (m.retryOf) {
    parts.push(html`<span data-lineage="retry">Retry of <a href=${links.run(pipelineId, m.retryOf)}><code>${m.retryOf}</code></a></span>`);
    parts.push(m.resumable
      ? html`<span data-lineage="resume">resumed from row ${num(m.resumeFromRow)}</span>`
      : html`<span data-lineage="resume">full re-run from row 0 (${words(run.loadStrategy)} does not resume)</span>`);
  } else if (run.trigger === 'poll') {
    parts.push(html`<span>Started by the touch file ${m.touchFile ? html`<code>${m.touchFile}</code>` : ''}</span>`);
  } else {
    parts.push(html`<span>Started from the ${run.trigger === 'api' ? 'API or dashboard' : run.trigger}</span>`);
  }
  return html`<p class="lineage">${parts.map((p, i) => html`${i ? ' · ' : ''}${p}`)}</p>`;
}

function Overview({ run, progress }) {
  const total = progress.totalRows;
  const known = run.totalRows !== null;
  // From the same snapshot as the other counters.
  const loaded = Math.max(0, progress.processedRows - progress.skippedRows - progress.failedRows);
  const pct = percent(progress.processedRows, total);
  return html`<section class="card" aria-labelledby="progress-title">
    <h2 id="progress-title" class="visually-hidden">Progress</h2>
    <div class="progress-line">
      <span class="big-number" data-testid="processed">${num(progress.processedRows)}</span>
      <span class="muted">${known
        ? `of ${num(total)} rows processed · ${pct}%`
        : `rows processed · ${RUN_ACTIVE.includes(progress.status) ? 'the source is being counted' : 'the source was not counted'}`}</span>
    </div>
    <${Bar} big label="Rows processed" total=${known ? total : 0} parts=${[
      { value: loaded, kind: 'loaded', label: 'Loaded' },
      { value: progress.skippedRows, kind: 'skipped', label: 'Skipped' },
      { value: progress.failedRows, kind: 'failed', label: 'Failed' },
    ]} />
    <dl class="stats">
      <div><dt><span class="key key-loaded" aria-hidden="true"></span>Loaded</dt><dd data-testid="loaded">${num(loaded)}</dd></div>
      <div><dt><span class="key key-failed" aria-hidden="true"></span>Failed</dt><dd data-testid="failed" class=${progress.failedRows ? 'bad' : ''}>${num(progress.failedRows)}</dd></div>
      <div><dt><span class="key key-skipped" aria-hidden="true"></span>Skipped</dt><dd data-testid="skipped">${num(progress.skippedRows)}</dd></div>
      <div><dt>ETA</dt><dd data-testid="eta">${progress.eta || '—'}</dd></div>
      <div><dt>Duration</dt><dd data-testid="duration">${duration(progress.durationMs)}</dd></div>
      <div><dt>Partitions done</dt><dd>${num(progress.completedPartitions)} / ${num(progress.partitions)}</dd></div>
    </dl>
    <dl class="facts facts-inline">
      <div><dt>Created</dt><dd><${Time} at=${run.createdAt} /></dd></div>
      <div><dt>Started</dt><dd>${run.startedAt ? html`<${Time} at=${run.startedAt} />` : 'not yet'}</dd></div>
      <div><dt>Finished</dt><dd>${run.finishedAt ? html`<${Time} at=${run.finishedAt} />` : 'not yet'}</dd></div>
    </dl>
  </section>`;
}

function Partitions({ details, status }) {
  if (!details.length) {
    return html`<section class="card"><h2>Partitions</h2><p class="muted">${RUN_ACTIVE.includes(status)
      ? 'The source is being counted; partitions appear when it is.'
      : 'None: the run ended before its source was cut into partitions.'}</p></section>`;
  }
  return html`<section class="card" aria-labelledby="parts-title">
    <h2 id="parts-title">Partitions</h2>
    <ol class="partitions">
      ${details.map((d) => {
        const pct = d.status === 'completed' ? 100 : (d.progress || 0);
        return html`<li class="partition" data-partition=${d.index} data-status=${d.status}>
          <span class="partition-name">#${d.index + 1}</span>
          <${Bar} label=${`Partition ${d.index + 1}`} total=${100}
            parts=${[{ value: pct, kind: d.status === 'failed' ? 'failed' : 'loaded', label: `${pct}%` }]} />
          <span class="partition-facts"><${StatusBadge} status=${d.status} />
            <span class="muted">${num(d.rows)} rows${d.status === 'running' ? ` · ${pct}%` : ''}</span></span>
        </li>`;
      })}
    </ol>
  </section>`;
}

function Log({ entries }) {
  return html`<section class="card" aria-labelledby="log-title">
    <h2 id="log-title">Log</h2>
    ${entries.length ? html`<ol class="timeline">
      ${entries.map((e) => html`<li>
        <time datetime=${e.timestamp} title=${at(e.timestamp)}>${at(e.timestamp)}</time>
        <span class="stage stage-${e.stage}">${e.stage}</span>
        <span class="message">${e.message}</span>
      </li>`)}
    </ol>` : html`<p class="muted">Nothing logged yet.</p>`}
  </section>`;
}

function AllErrors({ base }) {
  const pages = useCursorPages();
  const page = useLoad(() => api.get(`${base}/errors?limit=${ERRORS_PAGE}${pages.cursor ? `&cursor=${seg(pages.cursor)}` : ''}`), [base, pages.cursor]);
  if (page.error) return html`<${Notice} error=${page.error} />`;
  if (!page.data) return html`<${Loading} what="Loading errors" />`;
  const first = (pages.page - 1) * ERRORS_PAGE + 1;
  return html`<p class="muted">Errors ${num(first)}–${num(first + page.data.errors.length - 1)} of ${num(page.data.total)}</p>
    <${RowErrors} errors=${page.data.errors} label="All validation errors" />
    <${Pager} pages=${pages} nextCursor=${page.data.nextCursor} label="Error pages" />`;
}

function Errors({ pipelineId, runId, progress }) {
  const [all, setAll] = useState(false);
  const [error, setError] = useState(null);
  const base = `/pipelines/${seg(pipelineId)}/runs/${seg(runId)}`;
  const first = progress.validationErrors;
  const save = (accept, ext) => download(`${base}/errors`, accept, `pipeline-run-${runId}-errors.${ext}`)
    .then(() => setError(null), setError);
  return html`<section class="card" aria-labelledby="errors-title">
    <div class="section-head">
      <h2 id="errors-title">Rejected rows <span class="count">${num(progress.failedRows)}</span></h2>
      ${first.length ? html`<div class="actions">
        <button type="button" onClick=${() => save('text/csv', 'csv')}>Download CSV</button>
        <button type="button" onClick=${() => save('application/json', 'json')}>Download JSON</button>
      </div>` : null}
    </div>
    <${Notice} error=${error} />
    ${!first.length ? html`<p class="muted">No row has been rejected${RUN_ACTIVE.includes(progress.status) ? ' so far' : ''}.</p>` : null}
    ${first.length && !all ? html`
      <${RowErrors} errors=${first} label="First validation errors" />
      ${first.length >= 20 || progress.failedRows > first.length ? html`<p><button type="button" onClick=${() => setAll(true)}>Show all errors, page by page</button></p>` : null}` : null}
    ${all ? html`<${AllErrors} base=${base} />
      <p><button type="button" onClick=${() => setAll(false)}>Show only the first errors</button></p>` : null}
  </section>`;
}

export function RunPage({ pipelineId, runId, who }) {
  const view = useLoad(() => readRun(pipelineId, runId), [pipelineId, runId]);
  const pipeline = useLoad(() => api.get(`/pipelines/${seg(pipelineId)}`).catch(() => null), [pipelineId]);
  const { busy, error, act } = useAction();
  const status = view.data && view.data.run.status;
  // Live while the run is active; the loop ends with the first terminal read.
  useInterval(view.reload, REFRESH_MS, RUN_ACTIVE.includes(status));
  const crumbs = [
    { href: links.pipelines(), label: 'Pipelines' },
    { href: links.pipeline(pipelineId), label: pipeline.data ? pipeline.data.name : pipelineId },
  ];
  if (!view.data) {
    return html`<${PageHead} crumbs=${crumbs} title="Run" />
      ${view.error ? html`<${Notice} error=${view.error} />` : html`<${Loading} what="Loading the run" />`}`;
  }
  const { run, progress } = view.data;
  const writer = can(who, 'write');
  const base = `/pipelines/${seg(pipelineId)}/runs/${seg(runId)}`;
  const retryable = RUN_RETRYABLE.includes(progress.status);
  const cancellable = RUN_ACTIVE.includes(progress.status);
  return html`<${PageHead} crumbs=${crumbs} title=${html`Run <code class="run-id">${run.id}</code>`}>
      ${writer ? html`
        <button type="button" class="primary" disabled=${!retryable || busy !== null}
          title=${retryable ? '' : 'Only failed runs and runs with errors can be retried'}
          onClick=${() => act('retry', async () => {
            const next = await api.post(`${base}/retry`);
            go(links.run(pipelineId, next.id));
          })}>${busy === 'retry' ? 'Retrying…' : 'Retry'}</button>
        <button type="button" class="danger" disabled=${!cancellable || busy !== null}
          title=${cancellable ? '' : 'Only pending and running runs can be cancelled'}
          onClick=${() => act('cancel', async () => {
            await api.post(`${base}/cancel`);
            await view.reload();
          })}>${busy === 'cancel' ? 'Cancelling…' : 'Cancel'}</button>` : null}
    <//>
    <div class="run-meta">
      <span data-testid="run-status" aria-live="polite"><${StatusBadge} status=${progress.status} /></span>
      <span class="pill">${words(progress.loadStrategy)}</span>
      ${RUN_ACTIVE.includes(progress.status) ? html`<span class="live" aria-live="off">live</span>` : null}
    </div>
    <${Lineage} pipelineId=${pipelineId} run=${run} />
    <${Notice} error=${error} />
    <${Notice} error=${view.error} />
    ${run.error ? html`<div class="notice notice-error" role="alert"><strong>The run failed:</strong> ${run.error}</div>` : null}
    <${Overview} run=${run} progress=${progress} />
    <${Partitions} details=${progress.partitionDetails} status=${progress.status} />
    <${Errors} pipelineId=${pipelineId} runId=${runId} progress=${progress} />
    <${Log} entries=${progress.log} />`;
}
