// Creating and editing a pipeline. The form's state has the API's shape, so a
// 400 naming `schema.columns[2].type` is shown next to that very control.
import { html, useEffect, useState } from './html.js';
import { api, can, seg } from './api.js';
import { go, links } from './router.js';
import { Field, Loading, Notice, PageHead, useLoad } from './ui.js';

const TYPES = ['string', 'integer', 'number', 'boolean', 'date', 'timestamp', 'email', 'uuid', 'json'];
const DRIFT = [
  ['ignore', 'ignore: log them'],
  ['fail', 'fail the run'],
  ['rescue', 'rescue into _sluice_rescued'],
  ['evolve', 'evolve: add them as columns'],
];
const STRATEGIES = [
  ['append', 'append: insert rows (rows whose key exists are skipped)'],
  ['upsert', 'upsert: insert or update by key'],
  ['replace', 'replace: swap in a fresh table when the run succeeds'],
];

const blankColumn = () => ({ name: '', source: '', type: 'string', required: false, maxLength: '', pattern: '', allowedValues: '' });

const blank = () => ({
  name: '',
  connectorId: '',
  status: 'active',
  source: { prefix: '', pattern: '*.csv', format: 'csv', csv: { delimiter: ',', quote: '"', header: true }, compression: 'auto' },
  schema: { columns: [blankColumn()] },
  destination: { table: '', keyColumns: '' },
  loadStrategy: 'append',
  schemaDrift: 'ignore',
  partitions: '4',
  maxErrors: '',
  polling: { enabled: false, intervalMinutes: '15', touchFile: '_READY.dat', prefix: '', deleteAfterProcess: false },
});

const text = (v) => (v === null || v === undefined ? '' : String(v));

/** A stored pipeline as form state. */
function fromPipeline(p) {
  return {
    name: p.name,
    connectorId: p.connectorId,
    status: p.status,
    source: {
      prefix: p.source.prefix,
      pattern: text(p.source.pattern),
      format: p.source.format,
      csv: { ...p.source.csv },
      compression: p.source.compression,
    },
    schema: {
      columns: p.schema.columns.map((c) => ({
        name: c.name,
        source: text(c.source),
        type: c.type,
        required: !!c.required,
        maxLength: text(c.maxLength),
        pattern: text(c.pattern),
        allowedValues: c.allowedValues ? c.allowedValues.join(', ') : '',
      })),
    },
    destination: { table: p.destination.table, keyColumns: p.destination.keyColumns.join(', ') },
    loadStrategy: p.loadStrategy,
    schemaDrift: p.schemaDrift || 'ignore',
    partitions: text(p.partitions),
    maxErrors: text(p.maxErrors),
    polling: {
      enabled: p.polling.enabled,
      intervalMinutes: text(p.polling.intervalMinutes),
      touchFile: p.polling.touchFile,
      prefix: text(p.polling.prefix),
      deleteAfterProcess: p.polling.deleteAfterProcess,
    },
  };
}

const list = (s) => s.split(',').map((v) => v.trim()).filter(Boolean);
const orNull = (s) => (s.trim() === '' ? null : s);
const numberOrNull = (s) => (String(s).trim() === '' ? null : Number(s));

/** Form state as the API's pipeline definition (nulls clear a member in a merge patch). */
function toSpec(f) {
  return {
    name: f.name,
    connectorId: f.connectorId,
    status: f.status,
    source: {
      prefix: f.source.prefix,
      pattern: orNull(f.source.pattern),
      format: f.source.format,
      csv: f.source.csv,
      compression: f.source.compression,
    },
    schema: {
      columns: f.schema.columns.map((c) => {
        const col = { name: c.name, type: c.type, required: c.required };
        if (orNull(c.source) !== null) col.source = c.source;
        if (numberOrNull(c.maxLength) !== null) col.maxLength = Number(c.maxLength);
        if (orNull(c.pattern) !== null) col.pattern = c.pattern;
        if (list(c.allowedValues).length) col.allowedValues = list(c.allowedValues);
        return col;
      }),
    },
    destination: { table: f.destination.table, keyColumns: list(f.destination.keyColumns) },
    loadStrategy: f.loadStrategy,
    schemaDrift: f.schemaDrift,
    partitions: numberOrNull(f.partitions) ?? 4,
    maxErrors: numberOrNull(f.maxErrors),
    polling: {
      enabled: f.polling.enabled,
      intervalMinutes: numberOrNull(f.polling.intervalMinutes) ?? 15,
      touchFile: f.polling.touchFile,
      prefix: orNull(f.polling.prefix),
      deleteAfterProcess: f.polling.deleteAfterProcess,
    },
  };
}

/** Drops null members (a create has nothing to clear). */
function withoutNulls(v) {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
  }
  return v;
}

/** `schema.columns[2].type` → ['schema', 'columns', 2, 'type']. */
const steps = (path) => path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '')
  .map((s) => (/^\d+$/.test(s) ? Number(s) : s));

function getIn(obj, path) {
  return steps(path).reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
}

function setSteps(obj, [head, ...rest], value) {
  const copy = Array.isArray(obj) ? [...obj] : { ...obj };
  copy[head] = rest.length ? setSteps(obj[head], rest, value) : value;
  return copy;
}

const setIn = (obj, path, value) => setSteps(obj, steps(path), value);

const idOf = (path) => `f-${path.replace(/[.[\]]+/g, '-').replace(/-$/, '')}`;

export function PipelineForm({ id, who }) {
  const editing = !!id;
  const existing = useLoad(() => (editing ? api.get(`/pipelines/${seg(id)}`) : Promise.resolve(null)), [id]);
  const connectors = useLoad(() => api.get('/connectors?limit=200'), []);
  const [form, setForm] = useState(editing ? null : blank());
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (existing.data) setForm(fromPipeline(existing.data));
  }, [existing.data]);
  useEffect(() => {
    const items = connectors.data ? connectors.data.items : [];
    if (form && !form.connectorId && items.length) setForm((f) => ({ ...f, connectorId: items[0].id }));
  }, [connectors.data, form && form.connectorId]);
  const crumbs = [{ href: links.pipelines(), label: 'Pipelines' }];
  if (editing && existing.data) crumbs.push({ href: links.pipeline(id), label: existing.data.name });
  const title = editing ? 'Edit pipeline' : 'New pipeline';
  if (!can(who, 'write')) {
    return html`<${PageHead} crumbs=${crumbs} title=${title} />
      <${Notice} error=${{ message: `A ${who.role} key cannot change pipelines.` }} />`;
  }
  if (existing.error) return html`<${PageHead} crumbs=${crumbs} title=${title} /><${Notice} error=${existing.error} />`;
  if (!form) return html`<${Loading} what="Loading the pipeline" />`;

  const set = (path, value) => setForm((f) => setIn(f, path, value));
  const input = (path, props = {}) => {
    const err = errors[path];
    return html`<input id=${idOf(path)} name=${path} value=${getIn(form, path)}
      aria-invalid=${err ? 'true' : undefined} aria-describedby=${err ? `${idOf(path)}-error` : undefined}
      onInput=${(e) => set(path, e.currentTarget.value)} ...${props} />`;
  };
  const check = (path) => html`<input type="checkbox" id=${idOf(path)} name=${path} checked=${getIn(form, path)}
    onChange=${(e) => set(path, e.currentTarget.checked)} />`;
  const select = (path, options) => html`<select id=${idOf(path)} name=${path} value=${getIn(form, path)}
      aria-invalid=${errors[path] ? 'true' : undefined}
      onChange=${(e) => set(path, e.currentTarget.value)}>
    ${options.map(([v, label]) => html`<option value=${v}>${label || v}</option>`)}
  </select>`;
  const field = (label, path, control, hint) => html`<${Field} label=${label} id=${idOf(path)} error=${errors[path]} hint=${hint}>${control}<//>`;

  const columns = form.schema.columns;
  const columnPaths = columns.flatMap((_, i) => ['name', 'source', 'type', 'required', 'maxLength', 'pattern', 'allowedValues']
    .map((k) => `schema.columns[${i}].${k}`).concat([`schema.columns[${i}]`]));
  const shown = new Set(['name', 'connectorId', 'status', 'source', 'source.prefix', 'source.pattern', 'source.format',
    'source.csv', 'source.csv.delimiter', 'source.csv.quote', 'source.csv.header', 'source.compression', 'schema.columns',
    'destination.table', 'destination.keyColumns', 'loadStrategy', 'schemaDrift', 'partitions', 'maxErrors', 'polling',
    'polling.enabled', 'polling.intervalMinutes', 'polling.touchFile', 'polling.prefix', 'polling.deleteAfterProcess',
    ...columnPaths]);

  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setErrors({});
    setFailure(null);
    try {
      const spec = toSpec(form);
      const saved = editing
        ? await api.patch(`/pipelines/${seg(id)}`, spec)
        : await api.post('/pipelines', withoutNulls(spec));
      go(links.pipeline(saved.id));
    } catch (e) {
      if (e.field) {
        setErrors({ [e.field]: e.message });
        setFailure(shown.has(e.field)
          ? { message: 'The pipeline was not saved: see the field marked below.' }
          : { message: `The pipeline was not saved: ${e.field}: ${e.message}` });
        const el = document.getElementById(idOf(e.field));
        if (el) el.focus();
      } else {
        setFailure(e);
      }
    } finally {
      setBusy(false);
    }
  };

  const connectorItems = connectors.data ? connectors.data.items : [];
  const moveColumn = (i, by) => {
    const next = [...columns];
    const [c] = next.splice(i, 1);
    next.splice(i + by, 0, c);
    set('schema.columns', next);
  };

  return html`<${PageHead} crumbs=${crumbs} title=${title} />
    <form class="form" method="post" onSubmit=${submit} novalidate>
      <${Notice} error=${failure} />
      ${connectors.data && !connectorItems.length ? html`<${Notice} kind="info">There is no connector yet:
        <a href=${links.connectors()}>create one</a> first.<//>` : null}
      <section class="card">
        <h2>Pipeline</h2>
        <div class="grid">
          ${field('Name', 'name', input('name', { required: true, autocomplete: 'off' }))}
          ${field('Connector', 'connectorId', select('connectorId', connectorItems.map((c) => [c.id, `${c.name} (${c.type})`])))}
          ${editing ? field('Status', 'status', select('status', [['active', 'active'], ['paused', 'paused (no runs start)']])) : null}
        </div>
      </section>
      <section class="card">
        <h2>Source</h2>
        <div class="grid">
          ${field('Prefix', 'source.prefix', input('source.prefix', { placeholder: 'data/customers/' }), 'The folder holding the files.')}
          ${field('Pattern', 'source.pattern', input('source.pattern', { placeholder: '*.csv' }), 'A glob relative to the prefix; empty for every file.')}
          ${field('Format', 'source.format', select('source.format', [['csv', 'CSV'], ['jsonl', 'JSON Lines']]))}
          ${field('Compression', 'source.compression', select('source.compression', [['auto', 'auto (.gz is gunzipped)'], ['none', 'none'], ['gzip', 'gzip']]))}
          ${form.source.format === 'csv' ? html`
            ${field('Delimiter', 'source.csv.delimiter', input('source.csv.delimiter', { maxlength: 1, class: 'narrow' }))}
            ${field('Quote', 'source.csv.quote', input('source.csv.quote', { maxlength: 1, class: 'narrow' }))}
            <div class="field field-check">${check('source.csv.header')}<label for=${idOf('source.csv.header')}>The first line names the columns</label></div>` : null}
        </div>
      </section>
      <section class="card">
        <div class="section-head"><h2>Columns</h2>
          <button type="button" onClick=${() => set('schema.columns', [...columns, blankColumn()])}>Add column</button></div>
        ${errors['schema.columns'] ? html`<p class="field-error" role="alert">${errors['schema.columns']}</p>` : null}
        <ol class="columns">
          ${columns.map((c, i) => {
            const p = (k) => `schema.columns[${i}].${k}`;
            return html`<li class=${`column${errors[`schema.columns[${i}]`] ? ' field-invalid' : ''}`} aria-label=${`Column ${i + 1}`}>
              ${errors[`schema.columns[${i}]`] ? html`<p class="field-error" role="alert">${errors[`schema.columns[${i}]`]}</p>` : null}
              <div class="column-fields">
                ${field(`Column ${i + 1} name`, p('name'), input(p('name'), { autocomplete: 'off', spellcheck: false }))}
                ${field('Header name', p('source'), input(p('source'), { autocomplete: 'off', spellcheck: false, placeholder: 'as the name' }), 'When the file names it otherwise.')}
                ${field('Type', p('type'), select(p('type'), TYPES.map((t) => [t, t])))}
                <div class="field field-check">${check(p('required'))}<label for=${idOf(p('required'))}>Required</label></div>
                ${field('Max length', p('maxLength'), input(p('maxLength'), { type: 'number', min: 1, inputmode: 'numeric', class: 'narrow' }))}
                ${field('Pattern (regex)', p('pattern'), input(p('pattern'), { spellcheck: false }))}
                ${field('Allowed values (comma-separated)', p('allowedValues'), input(p('allowedValues'), { spellcheck: false }))}
              </div>
              <div class="column-tools">
                <button type="button" disabled=${i === 0} aria-label=${`Move column ${i + 1} up`} onClick=${() => moveColumn(i, -1)}>↑</button>
                <button type="button" disabled=${i === columns.length - 1} aria-label=${`Move column ${i + 1} down`} onClick=${() => moveColumn(i, 1)}>↓</button>
                <button type="button" class="danger" disabled=${columns.length === 1} aria-label=${`Remove column ${i + 1}`}
                  onClick=${() => set('schema.columns', columns.filter((_, j) => j !== i))}>Remove</button>
              </div>
            </li>`;
          })}
        </ol>
      </section>
      <section class="card">
        <h2>Destination and loading</h2>
        <div class="grid">
          ${field('Table', 'destination.table', input('destination.table', { autocomplete: 'off', spellcheck: false }), 'Created from the columns if missing.')}
          ${field('Key columns', 'destination.keyColumns', input('destination.keyColumns', { placeholder: 'id' }), 'Comma-separated; needed for upsert.')}
          ${field('Load strategy', 'loadStrategy', select('loadStrategy', STRATEGIES))}
          ${field('Schema drift', 'schemaDrift', select('schemaDrift', DRIFT), 'What a run does with columns the schema does not name.')}
          ${field('Partitions', 'partitions', input('partitions', { type: 'number', min: 1, max: 64, inputmode: 'numeric', class: 'narrow' }), 'Parts of the source loaded in parallel.')}
          ${field('Error threshold', 'maxErrors', input('maxErrors', { type: 'number', min: 0, inputmode: 'numeric', class: 'narrow' }), 'More failed rows fail the run; empty for no limit.')}
        </div>
      </section>
      <section class="card">
        <h2>Touch-file polling</h2>
        <div class="field field-check">${check('polling.enabled')}<label for=${idOf('polling.enabled')}>Start a run when a touch file appears</label></div>
        ${form.polling.enabled ? html`<div class="grid">
          ${field('Touch file', 'polling.touchFile', input('polling.touchFile'))}
          ${field('Check every (minutes)', 'polling.intervalMinutes', input('polling.intervalMinutes', { type: 'number', min: 1, inputmode: 'numeric', class: 'narrow' }))}
          ${field('Touch file folder', 'polling.prefix', input('polling.prefix', { placeholder: form.source.prefix || 'the source prefix' }), 'Empty: the source prefix.')}
          <div class="field field-check">${check('polling.deleteAfterProcess')}<label for=${idOf('polling.deleteAfterProcess')}>Delete the touch file after a successful run</label></div>
        </div>` : null}
      </section>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : (editing ? 'Save changes' : 'Create pipeline')}</button>
        <a class="button" href=${editing ? links.pipeline(id) : links.pipelines()}>Cancel</a>
      </div>
    </form>`;
}
