// The Lamina console: sign-in, the page shell and the router.

import { html, render, useEffect, useState } from './vendor/htm-preact.module.js';
import { call, setCsrfToken, ApiError } from './api.js';
import { ErrorBox, Field } from './ui.js';
import { sections } from './nav.js';
import { FunctionsPage } from './pages/functions.js';
import { FunctionPage } from './pages/function.js';
import { CreatePage } from './pages/create.js';
import { LogsPage } from './pages/logs.js';
import { MetricsPage } from './pages/metrics.js';
import { LayersPage } from './pages/layers.js';
import { QueuePage, QueuesPage } from './pages/queues.js';
import { TopicPage, TopicsPage } from './pages/topics.js';
import { BucketPage, BucketsPage } from './pages/buckets.js';
import { StreamPage, StreamsPage } from './pages/streams.js';
import { MappingPage, MappingsPage } from './pages/mappings.js';
import { NodesPage } from './pages/nodes.js';

/** routes map a hash path to its page; :name parts are parameters. */
const routes = [
  ['/functions', FunctionsPage],
  ['/create', CreatePage],
  ['/functions/:name', FunctionPage],
  ['/functions/:name/:tab', FunctionPage],
  ['/logs', LogsPage],
  ['/logs/:name', LogsPage],
  ['/layers', LayersPage],
  ['/metrics', MetricsPage],
  ['/mappings', MappingsPage],
  ['/mappings/:uuid', MappingPage],
  ['/queues', QueuesPage],
  ['/queues/:name', QueuePage],
  ['/topics', TopicsPage],
  ['/topics/:arn', TopicPage],
  ['/buckets', BucketsPage],
  ['/buckets/:bucket', BucketPage],
  ['/streams', StreamsPage],
  ['/streams/:name', StreamPage],
  ['/nodes', NodesPage],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/functions';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page] of routes) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(':') ? (params[w.slice(1)] = decodeURIComponent(parts[i]), true) : w === parts[i]))) {
      return { page, params };
    }
  }
  return null;
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    setBusy(true);
    try {
      const info = await call('POST', '/session', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ accessKeyId: form.get('accessKeyId').trim(), secretAccessKey: form.get('secretAccessKey').trim() }),
      });
      onSignedIn(info);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <h1>Lamina console</h1>
    <p>Sign in with an access key pair: the one <code>lamina server</code> printed, or another key the API accepts.</p>
    <form onSubmit=${submit}>
      <${Field} label="Access key ID"><input name="accessKeyId" autocomplete="username" required autofocus /><//>
      <${Field} label="Secret access key"><input name="secretAccessKey" type="password" autocomplete="current-password" required /><//>
      <${ErrorBox} error=${error} />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}

function Shell({ info, onSignOut, route }) {
  const found = match(route.path);
  const [menu, setMenu] = useState(false);
  useEffect(() => {
    setMenu(false);
    const h = document.querySelector('main h1');
    if (h) document.title = h.textContent + ' – Lamina console';
  }, [route.path]);
  const signOut = async () => {
    try { await call('DELETE', '/session'); } catch { /* ended already */ }
    onSignOut();
  };
  const active = (href) => route.path === href.slice(1) || route.path.startsWith(href.slice(1) + '/');
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="top">
      <button class="menu" aria-expanded=${menu} aria-controls="nav" onClick=${() => setMenu(!menu)}>Menu</button>
      <a class="brand" href="#/functions">Lamina</a>
      <span class="who">${info.accessKeyId} · ${info.region} · node ${info.node}</span>
      <button class="link" onClick=${signOut}>Sign out</button>
    </header>
    <nav id="nav" class=${menu ? 'open' : ''} aria-label="Console">
      ${sections.map((s) => html`<div class="section"><h2>${s.title}</h2><ul>
        ${s.items.map((i) => html`<li><a href=${i.href} aria-current=${active(i.href) ? 'page' : undefined}>${i.label}</a></li>`)}
      </ul></div>`)}
    </nav>
    <main id="main" tabindex="-1">
      ${found ? html`<${found.page} ...${found.params} query=${route.query} info=${info} />` : html`<h1>Not found</h1><p>No page at ${route.path}.</p>`}
    </main>
  </div>`;
}

function App() {
  const [info, setInfo] = useState(undefined);
  const route = useRoute();
  const signedIn = (i) => { setCsrfToken(i.csrfToken); setInfo(i); };
  useEffect(() => {
    call('GET', '/session').then(signedIn, () => setInfo(null));
    // A call that finds the session ended brings the sign-in back.
    const onRejection = (e) => {
      if (e.reason instanceof ApiError && e.reason.status === 401) setInfo(null);
    };
    addEventListener('unhandledrejection', onRejection);
    return () => removeEventListener('unhandledrejection', onRejection);
  }, []);
  if (info === undefined) return html`<p class="loading">Loading…</p>`;
  if (info === null) return html`<${SignIn} onSignedIn=${signedIn} />`;
  return html`<${Shell} info=${info} route=${route} onSignOut=${() => setInfo(null)} />`;
}

render(html`<${App} />`, document.getElementById('app'));
