// The dashboard's client of the JSON API. The API key lives in this tab's
// sessionStorage only: it is sent as an Authorization header, never put in a
// URL, a cookie or a log, and it is gone when the tab closes.

const KEY = 'sluice.key';
const WHO = 'sluice.who';
const BASE = '/api/v1';

/** An answer of the API that is not a success, or no answer at all. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  who() {
    try {
      return JSON.parse(sessionStorage.getItem(WHO) || 'null');
    } catch {
      return null;
    }
  },
  save(key, who) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(WHO, JSON.stringify(who));
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WHO);
  },
};

/** What the role may do; the server checks every request anyway. */
export function can(who, what) {
  const role = who && who.role;
  switch (what) {
    case 'write': return role === 'admin' || role === 'editor';
    case 'admin': return role === 'admin';
    default: return false;
  }
}

let unauthorized = () => {};
/** Called when a request answers 401 (key revoked or unknown). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(String(s));

async function send(method, path, { body, accept, key } = {}) {
  const secret = key || session.key();
  const headers = { Accept: accept || 'application/json' };
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, 'network', 'Sluice did not answer. Is the server running?');
  }
}

async function failure(resp) {
  let err = {};
  try {
    err = (await resp.json()).error || {};
  } catch {
    // Not the API's JSON error (a proxy, say): say what we know.
  }
  return new ApiError(
    resp.status,
    err.code || `http_${resp.status}`,
    err.message || `The server answered ${resp.status} ${resp.statusText}`.trim(),
    err.field,
  );
}

/** Calls the API; resolves to the JSON body (null for 204), rejects with ApiError. */
export async function call(method, path, body, opts = {}) {
  const resp = await send(method, path, { ...opts, body });
  if (!resp.ok) {
    const e = await failure(resp);
    if (resp.status === 401 && !opts.key) unauthorized(e);
    throw e;
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body),
  patch: (path, body) => call('PATCH', path, body),
  del: (path) => call('DELETE', path),
};

/** Checks a key with GET /me and keeps it for this tab. */
export async function signIn(key) {
  const who = await call('GET', '/me', undefined, { key });
  session.save(key, who);
  return who;
}

/**
 * Downloads an API answer as a file. The key cannot ride on a plain link, so
 * the body is fetched with it and handed to the browser as a blob (which
 * Chromium spills to disk when it is large).
 */
export async function download(path, accept, fallbackName) {
  const resp = await send('GET', path, { accept });
  if (!resp.ok) {
    const e = await failure(resp);
    if (resp.status === 401) unauthorized(e);
    throw e;
  }
  const disposition = resp.headers.get('Content-Disposition') || '';
  const named = /filename="([^"]+)"/.exec(disposition);
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = named ? named[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
