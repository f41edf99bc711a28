// Connectors: list, create (credentials are write-only), test, delete.
import { html, useState } from './html.js';
import { api, can, seg } from './api.js';
import { duration } from './format.js';
import {
  ConfirmButton, Field, Loading, Notice, PageHead, Pager, Table, Time, useCursorPages, useLoad,
} from './ui.js';

/** What each type needs: config fields and the names of its secrets. */
const TYPES = {
  s3: {
    config: [['bucket', 'Bucket'], ['region', 'Region', 'us-east-1 when empty'], ['endpoint', 'Endpoint', 'For S3-compatible servers (MinIO…)'], ['pathStyle', 'Path-style requests', null, 'check']],
    secrets: [['accessKeyId', 'Access key id'], ['secretAccessKey', 'Secret access key'], ['sessionToken', 'Session token (optional)']],
  },
  gcs: { config: [['bucket', 'Bucket']], secrets: [['serviceAccountKey', 'Service account key (JSON)']] },
  azure: {
    config: [['account', 'Storage account'], ['container', 'Container'], ['endpoint', 'Endpoint', 'For emulators']],
    secrets: [['accessKey', 'Access key'], ['sasToken', 'SAS token'], ['bearerToken', 'Bearer token'], ['tenantId', 'Tenant id'], ['clientId', 'Client id'], ['clientSecret', 'Client secret']],
  },
  local: { config: [['root', 'Root directory', 'One of the directories the server allows (SLUICE_LOCAL_ROOTS)']], secrets: [] },
  http: { config: [['url', 'Base URL']], secrets: [['bearerToken', 'Bearer token'], ['username', 'User name'], ['password', 'Password']] },
};

function describe(c) {
  const k = c.config || {};
  switch (c.type) {
    case 's3': return `s3://${k.bucket || ''}${k.endpoint ? ` at ${k.endpoint}` : ''}${k.region ? ` (${k.region})` : ''}`;
    case 'gcs': return `gs://${k.bucket || ''}`;
    case 'azure': return `${k.account || ''}/${k.container || ''}`;
    case 'local': return k.root || '';
    case 'http': return k.url || '';
    default: return '';
  }
}

function NewConnector({ onCreated, onCancel }) {
  const [type, setType] = useState('s3');
  const [name, setName] = useState('');
  const [config, setConfig] = useState({});
  const [secrets, setSecrets] = useState({});
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const spec = TYPES[type];
  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setErrors({});
    setFailure(null);
    const cfg = {};
    for (const [k, , , kind] of spec.config) {
      if (kind === 'check') {
        if (config[k] !== undefined) cfg[k] = !!config[k];
      } else if ((config[k] || '').trim()) {
        cfg[k] = config[k].trim();
      }
    }
    const credentials = {};
    for (const [k] of spec.secrets) if (secrets[k]) credentials[k] = secrets[k];
    try {
      const created = await api.post('/connectors', { name, type, config: cfg, credentials });
      setSecrets({});
      onCreated(created);
    } catch (e) {
      if (e.field) setErrors({ [e.field]: e.message });
      setFailure(e.field ? { message: 'The connector was not created: see the field marked below.' } : e);
    } finally {
      setBusy(false);
    }
  };
  const err = (path) => errors[path];
  return html`<form class="card form" method="post" onSubmit=${submit} novalidate aria-labelledby="new-conn-title">
    <h2 id="new-conn-title">New connector</h2>
    <${Notice} error=${failure} />
    <div class="grid">
      <${Field} label="Name" id="c-name" error=${err('name')}>
        <input id="c-name" value=${name} required autocomplete="off" onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} label="Type" id="c-type" error=${err('type')}>
        <select id="c-type" value=${type} onChange=${(e) => { setType(e.currentTarget.value); setConfig({}); setSecrets({}); }}>
          ${Object.keys(TYPES).map((t) => html`<option value=${t}>${t}</option>`)}
        </select>
      <//>
      ${spec.config.map(([k, label, hint, kind]) => (kind === 'check'
        ? html`<div class="field field-check"><input type="checkbox" id=${`c-config-${k}`} checked=${!!config[k]}
            onChange=${(e) => setConfig({ ...config, [k]: e.currentTarget.checked })} />
            <label for=${`c-config-${k}`}>${label}</label></div>`
        : html`<${Field} label=${label} id=${`c-config-${k}`} error=${err(`config.${k}`)} hint=${hint}>
            <input id=${`c-config-${k}`} value=${config[k] || ''} autocomplete="off" spellcheck="false"
              onInput=${(e) => setConfig({ ...config, [k]: e.currentTarget.value })} />
          <//>`))}
    </div>
    ${spec.secrets.length ? html`<fieldset>
      <legend>Credentials</legend>
      <p class="hint">Write-only: stored for the server, never shown again, not even to admins.</p>
      <div class="grid">
        ${spec.secrets.map(([k, label]) => html`<${Field} label=${label} id=${`c-secret-${k}`} error=${err(`credentials.${k}`)}>
          <input id=${`c-secret-${k}`} type="password" autocomplete="new-password" spellcheck="false" value=${secrets[k] || ''}
            onInput=${(e) => setSecrets({ ...secrets, [k]: e.currentTarget.value })} />
        <//>`)}
      </div>
    </fieldset>` : null}
    ${err('credentials') ? html`<p class="field-error" role="alert">${err('credentials')}</p>` : null}
    ${err('config') ? html`<p class="field-error" role="alert">${err('config')}</p>` : null}
    <div class="form-actions">
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Creating…' : 'Create connector'}</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

function TestResult({ result }) {
  if (!result) return null;
  if (result.error) return html`<div class="test-result bad" role="status">${result.error.message}</div>`;
  return html`<div class=${`test-result ${result.ok ? 'ok' : 'bad'}`} role="status">
    ${result.ok ? '✓ ' : '✗ '}${result.message} <span class="muted">(${duration(result.durationMs)})</span>
  </div>`;
}

export function ConnectorsPage({ who }) {
  const pages = useCursorPages();
  const list = useLoad(() => api.get(`/connectors?limit=50${pages.cursor ? `&cursor=${seg(pages.cursor)}` : ''}`), [pages.cursor]);
  const [creating, setCreating] = useState(false);
  const [tests, setTests] = useState({});
  const [error, setError] = useState(null);
  const admin = can(who, 'admin');
  const test = async (id) => {
    setTests((t) => ({ ...t, [id]: { pending: true } }));
    try {
      const r = await api.post(`/connectors/${seg(id)}/test`);
      setTests((t) => ({ ...t, [id]: r }));
    } catch (e) {
      setTests((t) => ({ ...t, [id]: { error: e } }));
    }
  };
  const items = list.data ? list.data.items : [];
  return html`<${PageHead} title="Connectors">
      ${admin && !creating ? html`<button type="button" class="primary" onClick=${() => setCreating(true)}>New connector</button>` : null}
    <//>
    ${creating ? html`<${NewConnector} onCancel=${() => setCreating(false)}
      onCreated=${() => { setCreating(false); list.reload(); }} />` : null}
    <${Notice} error=${list.error || error} />
    ${list.data === undefined ? html`<${Loading} what="Loading connectors" />` : null}
    ${list.data && !items.length ? html`<section class="card empty"><p>No connectors yet.${admin ? ' Create one to read files from.' : ''}</p></section>` : null}
    ${items.length ? html`<section class="card flush">
      <${Table} label="Connectors" head=${['Name', 'Type', 'Where', 'Credentials', 'Created', ...(admin ? ['Actions'] : [])]}>
        ${items.map((c) => html`<tr>
          <th scope="row">${c.name}</th>
          <td>${c.type}</td>
          <td><code>${describe(c)}</code></td>
          <td>${c.credentialKeys.length ? html`${c.credentialKeys.join(', ')} <span class="muted small">(never shown)</span>` : html`<span class="muted">none</span>`}</td>
          <td><${Time} at=${c.createdAt} compact /></td>
          ${admin ? html`<td class="row-actions">
            <button type="button" disabled=${tests[c.id] && tests[c.id].pending} onClick=${() => test(c.id)}
              aria-label=${`Test ${c.name}`}>${tests[c.id] && tests[c.id].pending ? 'Testing…' : 'Test'}</button>
            <${ConfirmButton} label="Delete" question=${`Delete ${c.name}?`} onConfirm=${async () => {
              setError(null);
              try {
                await api.del(`/connectors/${seg(c.id)}`);
                await list.reload();
              } catch (e) {
                setError(e);
              }
            }} />
            ${tests[c.id] && !tests[c.id].pending ? html`<${TestResult} result=${tests[c.id]} />` : null}
          </td>` : null}
        </tr>`)}
      <//>
    </section>` : null}
    <${Pager} pages=${pages} nextCursor=${list.data && list.data.nextCursor} label="Connector pages" />`;
}
