// API keys (admin only): list, create (shown once, with a copy button), revoke.
import { html, useState } from './html.js';
import { api, can, seg } from './api.js';
import {
  ConfirmButton, Field, Loading, Notice, PageHead, Pager, Table, Time, useCursorPages, useLoad,
} from './ui.js';

function CreatedKey({ created, onDone }) {
  const [copied, setCopied] = useState(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('Copied to the clipboard.');
    } catch {
      setCopied('The browser refused the clipboard: select the key and copy it.');
    }
  };
  return html`<section class="card created-key" aria-labelledby="created-title">
    <h2 id="created-title">Key “${created.name}” (${created.role}) created</h2>
    <p><strong>Copy it now: it is not shown again.</strong> Sluice keeps only its hash.</p>
    <div class="secret-line">
      <code class="secret" data-testid="new-key">${created.key}</code>
      <button type="button" class="primary" onClick=${copy}>Copy</button>
    </div>
    ${copied ? html`<p class="muted" role="status">${copied}</p>` : null}
    <button type="button" onClick=${onDone}>Done</button>
  </section>`;
}

export function ApiKeysPage({ who }) {
  const pages = useCursorPages();
  const admin = can(who, 'admin');
  const list = useLoad(() => (admin ? api.get(`/api-keys?limit=50${pages.cursor ? `&cursor=${seg(pages.cursor)}` : ''}`) : Promise.resolve(null)), [pages.cursor, admin]);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [created, setCreated] = useState(null);
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  if (!admin) {
    return html`<${PageHead} title="API keys" /><${Notice} error=${{ message: 'Only admin keys manage API keys.' }} />`;
  }
  const submit = async (ev) => {
    ev.preventDefault();
    setErrors({});
    setFailure(null);
    try {
      setCreated(await api.post('/api-keys', { name, role }));
      setName('');
      list.reload();
    } catch (e) {
      if (e.field) setErrors({ [e.field]: e.message });
      else setFailure(e);
    }
  };
  const items = list.data ? list.data.items : [];
  return html`<${PageHead} title="API keys" />
    ${created ? html`<${CreatedKey} created=${created} onDone=${() => setCreated(null)} />` : null}
    <form class="card form" method="post" onSubmit=${submit} novalidate aria-labelledby="new-key-title">
      <h2 id="new-key-title">New key</h2>
      <${Notice} error=${failure} />
      <div class="grid">
        <${Field} label="Name" id="k-name" error=${errors.name} hint="Who or what uses it, such as “ci” or “Ana”.">
          <input id="k-name" value=${name} autocomplete="off" onInput=${(e) => setName(e.currentTarget.value)} />
        <//>
        <${Field} label="Role" id="k-role" error=${errors.role}>
          <select id="k-role" value=${role} onChange=${(e) => setRole(e.currentTarget.value)}>
            <option value="viewer">viewer: reads everything</option>
            <option value="editor">editor: also pipelines and runs</option>
            <option value="admin">admin: also connectors and keys</option>
          </select>
        <//>
      </div>
      <div class="form-actions"><button type="submit" class="primary">Create key</button></div>
    </form>
    <${Notice} error=${list.error} />
    ${list.data === undefined ? html`<${Loading} what="Loading keys" />` : null}
    ${items.length ? html`<section class="card flush">
      <${Table} label="API keys" head=${['Name', 'Role', 'Key', 'Created', 'State', 'Actions']}>
        ${items.map((k) => html`<tr class=${k.revokedAt ? 'revoked' : ''}>
          <th scope="row">${k.name}${k.id === who.keyId ? html` <span class="muted small">(this session)</span>` : null}</th>
          <td><span class="role role-${k.role}">${k.role}</span></td>
          <td><code>${k.prefix}…</code></td>
          <td><${Time} at=${k.createdAt} compact /></td>
          <td>${k.revokedAt ? html`revoked <${Time} at=${k.revokedAt} compact />` : 'active'}</td>
          <td>${k.revokedAt ? null : html`<${ConfirmButton} label="Revoke" question=${`Revoke ${k.name}? It stops working at once.`}
            onConfirm=${async () => {
              try {
                await api.del(`/api-keys/${seg(k.id)}`);
              } catch (e) {
                setFailure(e);
              }
              await list.reload();
            }} />`}</td>
        </tr>`)}
      <//>
    </section>` : null}
    <${Pager} pages=${pages} nextCursor=${list.data && list.data.nextCursor} label="Key pages" />`;
}
