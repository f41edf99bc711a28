// The dashboard's shell: sign-in, the header, and one page per route.
import { html, render, useEffect, useState } from './html.js';
import { can, onUnauthorized, session } from './api.js';
import { go, links, useRoute } from './router.js';
import { SignIn } from './signin.js';
import { PipelinesPage } from './pipelines.js';
import { PipelinePage } from './pipeline.js';
import { PipelineForm } from './pipeline_form.js';
import { RunPage } from './run.js';
import { ConnectorsPage } from './connectors.js';
import { ApiKeysPage } from './api_keys.js';

function Header({ who, route, onSignOut }) {
  const current = (names) => (names.includes(route.name) ? 'page' : undefined);
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <a class="brand" href=${links.pipelines()}><span class="logo" aria-hidden="true"></span> Sluice</a>
    <nav aria-label="Main">
      <a href=${links.pipelines()} aria-current=${current(['pipelines', 'pipeline', 'pipelineNew', 'pipelineEdit', 'run'])}>Pipelines</a>
      <a href=${links.connectors()} aria-current=${current(['connectors'])}>Connectors</a>
      ${can(who, 'admin') ? html`<a href=${links.apiKeys()} aria-current=${current(['apiKeys'])}>API keys</a>` : null}
    </nav>
    <div class="who">
      <span class="role role-${who.role}" title=${`Signed in with ${who.keyId}`}>${who.role}</span>
      <button type="button" class="link" onClick=${onSignOut}>Sign out</button>
    </div>
  </header>`;
}

function Page({ route, who }) {
  const [a, b] = route.params;
  switch (route.name) {
    case 'pipelines': return html`<${PipelinesPage} who=${who} />`;
    case 'pipelineNew': return html`<${PipelineForm} who=${who} />`;
    case 'pipeline': return html`<${PipelinePage} key=${a} id=${a} who=${who} />`;
    case 'pipelineEdit': return html`<${PipelineForm} key=${a} id=${a} who=${who} />`;
    case 'run': return html`<${RunPage} key=${`${a}/${b}`} pipelineId=${a} runId=${b} who=${who} />`;
    case 'connectors': return html`<${ConnectorsPage} who=${who} />`;
    case 'apiKeys': return html`<${ApiKeysPage} who=${who} />`;
    default: return html`<section class="card"><h1>Not found</h1>
      <p>There is no such page. <a href=${links.pipelines()}>Go to the pipelines</a>.</p></section>`;
  }
}

function App() {
  const route = useRoute();
  const [who, setWho] = useState(session.key() ? session.who() : null);
  const [message, setMessage] = useState(null);
  useEffect(() => {
    onUnauthorized(() => {
      session.clear();
      setWho(null);
      setMessage('Your key is no longer accepted (revoked or unknown). Sign in again.');
    });
  }, []);
  useEffect(() => {
    document.title = route.name === 'signin' || !who ? 'Sign in · Sluice' : 'Sluice';
  }, [route.name, who]);
  if (!who) {
    return html`<${SignIn} message=${message} onSignedIn=${(w) => {
      setMessage(null);
      setWho(w);
      if (route.name === 'signin') go(links.pipelines());
    }} />`;
  }
  if (route.name === 'signin') {
    go(links.pipelines());
    return null;
  }
  const signOut = () => {
    session.clear();
    setWho(null);
    setMessage('You are signed out.');
  };
  return html`<${Header} who=${who} route=${route} onSignOut=${signOut} />
    <main id="main" tabindex="-1" class="page"><${Page} route=${route} who=${who} /></main>`;
}

render(html`<${App} />`, document.getElementById('app'));
