import { html, useState } from './html.js';
import { signIn } from './api.js';
import { Notice } from './ui.js';

/** Sign-in with an API key; the key is checked with GET /me. */
export function SignIn({ onSignedIn, message }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await signIn(key.trim());
      setKey('');
      onSignedIn(who);
    } catch (e) {
      setError(e.status === 401
        ? { message: 'This key is not valid: it is unknown or has been revoked.' }
        : e);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="card signin-card" method="post" onSubmit=${submit} aria-labelledby="signin-title">
      <div class="brand brand-big"><span class="logo" aria-hidden="true"></span> Sluice</div>
      <h1 id="signin-title">Sign in</h1>
      ${message ? html`<${Notice} kind="info">${message}<//>` : null}
      <${Notice} error=${error} />
      <div class="field">
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" spellcheck="false"
          required value=${key} onInput=${(e) => setKey(e.currentTarget.value)}
          aria-describedby="api-key-hint" />
        <small id="api-key-hint" class="hint">From <code>sluice apikey create</code> or an admin.
          It stays in this browser tab only and is gone when you close it.</small>
      </div>
      <button type="submit" class="primary" disabled=${busy || !key.trim()}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}
