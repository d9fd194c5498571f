// One function: its configuration, versions, aliases, URL, schedules and
// layers; testing it with saved events; its charts; changing its
// configuration and code.

import { html, useEffect, useState } from '../vendor/htm-preact.module.js';
import { ApiError, call, events, fn, invoke, lambda, listAll, parseReport, watchChanges } from '../api.js';
import { Charts, ErrorBox, Field, KeyValues, formatBytes, useAsync, useInterval } from '../ui.js';
import { templates, savedEvents, saveEvent, deleteEvent } from '../testevents.js';
import { CodeSource, useSubmit, zipOf } from './code.js';

const tabs = [['overview', 'Overview'], ['test', 'Test'], ['monitor', 'Monitor'], ['configuration', 'Configuration'], ['code', 'Code']];

const orNull = (p) => p.catch((err) => { if (err instanceof ApiError && err.status === 404) return null; throw err; });

async function loadFunction(name) {
  const [fnc, versions, aliases, url, concurrency] = await Promise.all([
    lambda('GET', fn(name)),
    listAll(fn(name) + '/versions?MaxItems=50', 'Versions'),
    listAll(fn(name) + '/aliases?MaxItems=50', 'Aliases'),
    orNull(lambda('GET', '/2021-10-31/functions/' + encodeURIComponent(name) + '/url')),
    orNull(lambda('GET', '/2019-09-30/functions/' + encodeURIComponent(name) + '/concurrency')),
  ]);
  return { ...fnc, versions, aliases, url, concurrency };
}

/** schedulesOf finds the rules whose targets invoke the function. */
async function schedulesOf(arn) {
  const rules = (await events('ListRules', { Limit: 100 })).Rules || [];
  const out = [];
  for (const rule of rules) {
    const targets = (await events('ListTargetsByRule', { Rule: rule.Name })).Targets || [];
    const mine = targets.filter((t) => t.Arn === arn || t.Arn.startsWith(arn + ':'));
    if (mine.length) out.push({ ...rule, targets: mine });
  }
  return out;
}

export function FunctionPage({ name, tab = 'overview', info }) {
  const [data, error, reload] = useAsync(() => loadFunction(name), [name]);
  useEffect(() => watchChanges((c) => { if (!c || c.function === name) reload(); }), [name]);
  const base = '#/functions/' + encodeURIComponent(name);
  return html`<p class="crumbs"><a href="#/functions">Functions</a> / ${name}</p>
    <h1>${name}</h1>
    <${ErrorBox} error=${error} />
    <nav class="tabs" aria-label="Function">
      ${tabs.map(([id, label]) => html`<a href=${base + '/' + id} aria-current=${tab === id ? 'page' : undefined}>${label}</a>`)}
      <a href=${'#/logs/' + encodeURIComponent(name)}>Logs</a>
      <a href=${'#/mappings?function=' + encodeURIComponent(name)}>Triggers</a>
    </nav>
    ${data && tab === 'overview' && html`<${Overview} f=${data} />`}
    ${data && tab === 'test' && html`<${TestTab} name=${name} />`}
    ${tab === 'monitor' && html`<${Monitor} name=${name} info=${info} />`}
    ${data && tab === 'configuration' && html`<${ConfigurationTab} f=${data} onSaved=${reload} />`}
    ${data && tab === 'code' && html`<${CodeTab} f=${data} onSaved=${reload} />`}`;
}

function Overview({ f }) {
  const c = f.Configuration;
  const [schedules, schedErr] = useAsync(() => schedulesOf(c.FunctionArn), [c.FunctionArn]);
  const [busy, err, run] = useSubmit();
  const publish = () => run(() => lambda('POST', fn(c.FunctionName) + '/versions', {}));
  const createURL = () => run(() => lambda('POST', '/2021-10-31/functions/' + encodeURIComponent(c.FunctionName) + '/url', { AuthType: 'NONE' }));
  const env = Object.entries(c.Environment?.Variables || {});
  return html`<section><h2>Configuration</h2>
      <${KeyValues} items=${[
        ['ARN', html`<span class="mono">${c.FunctionArn}</span>`], ['Description', c.Description], ['Runtime', c.Runtime],
        ['Handler', c.Handler], ['Architecture', (c.Architectures || []).join(', ')], ['Memory', c.MemorySize + ' MB'],
        ['Timeout', c.Timeout + ' s'], ['Ephemeral storage', (c.EphemeralStorage?.Size || 512) + ' MB'],
        ['Code size', formatBytes(c.CodeSize)], ['Code SHA-256', html`<span class="mono">${c.CodeSha256}</span>`],
        ['State', `${c.State || ''} ${c.LastUpdateStatus ? '· last update ' + c.LastUpdateStatus : ''}`],
        ['Last modified', new Date(c.LastModified).toLocaleString()],
        ['Reserved concurrency', f.concurrency?.ReservedConcurrentExecutions ?? 'none (unreserved pool)'],
        ['Environment', env.length ? html`<ul class="plain">${env.map(([k, v]) => html`<li><code>${k}</code> = <code>${v}</code></li>`)}</ul>` : 'none'],
      ]} /></section>
    <section><h2>Layers</h2>
      ${(c.Layers || []).length ? html`<ul class="plain">${c.Layers.map((l) => html`<li class="mono">${l.Arn} (${formatBytes(l.CodeSize)})</li>`)}</ul>` : html`<p class="muted">No layers.</p>`}</section>
    <section><h2>Versions</h2>
      <div class="table-wrap"><table class="list"><thead><tr><th scope="col">Version</th><th scope="col">Description</th><th scope="col">Code SHA-256</th><th scope="col">Last modified</th></tr></thead>
      <tbody>${f.versions.map((v) => html`<tr><td>${v.Version}</td><td>${v.Description}</td><td class="mono">${v.CodeSha256.slice(0, 12)}…</td><td>${new Date(v.LastModified).toLocaleString()}</td></tr>`)}</tbody></table></div>
      <button onClick=${publish} disabled=${busy}>Publish new version</button></section>
    <section><h2>Aliases</h2>
      ${f.aliases.length ? html`<div class="table-wrap"><table class="list"><thead><tr><th scope="col">Alias</th><th scope="col">Version</th><th scope="col">Routing</th><th scope="col">Description</th></tr></thead>
      <tbody>${f.aliases.map((a) => html`<tr><td>${a.Name}</td><td>${a.FunctionVersion}</td>
        <td>${Object.entries(a.RoutingConfig?.AdditionalVersionWeights || {}).map(([v, w]) => `${Math.round(w * 100)}% to ${v}`).join(', ')}</td><td>${a.Description}</td></tr>`)}</tbody></table></div>`
        : html`<p class="muted">No aliases.</p>`}
      <${AliasForm} name=${c.FunctionName} versions=${f.versions} /></section>
    <section><h2>Function URL</h2>
      ${f.url ? html`<${KeyValues} items=${[['URL', html`<span class="mono">${f.url.FunctionUrl}</span>`], ['Auth type', f.url.AuthType],
        ['CORS', f.url.Cors ? JSON.stringify(f.url.Cors) : 'none']]} />`
        : html`<p class="muted">No function URL.</p><button onClick=${createURL} disabled=${busy}>Create a URL (auth NONE)</button>`}</section>
    <section><h2>Schedules and rules</h2>
      <${ErrorBox} error=${schedErr} />
      ${schedules && (schedules.length ? html`<ul class="plain">${schedules.map((r) => html`<li><strong>${r.Name}</strong> <code>${r.ScheduleExpression}</code> · ${r.State}
          ${r.targets.map((t) => html` · target ${t.Id}${t.Input ? ' with input ' + t.Input : ''}`)}</li>`)}</ul>`
        : html`<p class="muted">No rule targets this function.</p>`)}</section>
    <${ErrorBox} error=${err} />`;
}

function AliasForm({ name, versions }) {
  const [busy, err, run] = useSubmit();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(() => lambda('POST', fn(name) + '/aliases', { Name: form.get('alias'), FunctionVersion: form.get('version') }));
  };
  return html`<form class="inline-form" onSubmit=${submit}>
    <label class="inline">New alias <input name="alias" required pattern="(?!^[0-9]+$)[a-zA-Z0-9-_]+" /></label>
    <label class="inline">to version <select name="version">${versions.map((v) => html`<option>${v.Version}</option>`)}</select></label>
    <button type="submit" disabled=${busy}>Create alias</button><${ErrorBox} error=${err} /></form>`;
}

function TestTab({ name }) {
  const [saved, setSaved] = useState(() => savedEvents(name));
  const [choice, setChoice] = useState('template:hello-world');
  const [eventName, setEventName] = useState('');
  const [payload, setPayload] = useState(() => JSON.stringify(templates['hello-world'](), null, 2));
  const [result, setResult] = useState(null);
  const [busy, error, run] = useSubmit();
  const pick = (value) => {
    setChoice(value);
    const [kind, key] = value.split(/:(.*)/s);
    if (kind === 'template') { setPayload(JSON.stringify(templates[key](), null, 2)); setEventName(''); }
    if (kind === 'saved') { setPayload(saved[key]); setEventName(key); }
  };
  const save = () => {
    if (!eventName) return;
    saveEvent(name, eventName, payload);
    setSaved(savedEvents(name));
    setChoice('saved:' + eventName);
  };
  const remove = () => {
    deleteEvent(name, eventName);
    setSaved(savedEvents(name));
    pick('template:hello-world');
  };
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      JSON.parse(payload); // a clear error before the call
      const started = performance.now();
      const res = await invoke(name, '', payload);
      setResult({ ...res, report: parseReport(res.log, res.requestId), roundTrip: performance.now() - started });
    });
  };
  const r = result?.report;
  return html`<form class="stack" onSubmit=${submit}>
      <div class="row">
        <${Field} label="Event"><select value=${choice} onChange=${(e) => pick(e.target.value)} data-testid="event-select">
          <optgroup label="Templates">${Object.keys(templates).map((t) => html`<option value=${'template:' + t}>${t}</option>`)}</optgroup>
          ${Object.keys(saved).length > 0 && html`<optgroup label="Saved">${Object.keys(saved).map((s) => html`<option value=${'saved:' + s}>${s}</option>`)}</optgroup>`}
        </select><//>
        <${Field} label="Save as"><input value=${eventName} onInput=${(e) => setEventName(e.target.value)} placeholder="event name" /><//>
      </div>
      <div class="actions"><button type="button" onClick=${save} disabled=${!eventName}>Save event</button>
        ${choice.startsWith('saved:') && html`<button type="button" class="secondary" onClick=${remove}>Delete saved event</button>`}</div>
      <${Field} label="Event JSON"><textarea class="editor" rows="12" spellcheck="false" value=${payload} onInput=${(e) => setPayload(e.target.value)} data-testid="event-json"></textarea><//>
      <div class="actions"><button type="submit" disabled=${busy} data-testid="invoke">${busy ? 'Invoking…' : 'Invoke'}</button></div>
    </form>
    <${ErrorBox} error=${error} />
    ${result && html`<section class=${'result ' + (result.functionError ? 'failed' : 'succeeded')} data-testid="result" aria-live="polite">
      <h2>${result.functionError ? `Failed (${result.functionError})` : 'Succeeded'}</h2>
      <${KeyValues} items=${[
        ['Request ID', html`<span class="mono">${result.requestId}</span>`], ['Executed version', result.version],
        ['Duration', r?.duration != null ? r.duration + ' ms' : ''], ['Billed duration', r?.billed != null ? r.billed + ' ms' : ''],
        ['Memory', r ? `${r.maxMemory ?? '?'} MB used of ${r.memorySize} MB` : ''], ['Init duration', r?.init != null ? r.init + ' ms (cold start)' : 'warm start'],
      ]} />
      <h3>Response</h3><pre class="output" data-testid="response">${result.payload}</pre>
      <h3>Log tail</h3><pre class="output" data-testid="log-tail">${result.log}</pre>
      <p><a href=${`#/logs/${encodeURIComponent(name)}?request=${encodeURIComponent(r?.requestId || result.requestId)}`} data-testid="invocation-logs">Show this invocation's log lines</a></p>
    </section>`}`;
}

function Monitor({ name, info }) {
  const [data, error, reload] = useAsync(() => call('GET', '/metrics?function=' + encodeURIComponent(name)), [name]);
  const [status, statusErr, reloadStatus] = useAsync(() => lambda('GET', '/_lamina/async/' + encodeURIComponent(name)), [name]);
  useInterval(() => { reload(); reloadStatus(); }, Math.max(1000, (info.sampleSeconds || 5) * 1000));
  return html`<p class="muted">This node's figures, one sample every ${info.sampleSeconds} s over the last hour.</p>
    <${ErrorBox} error=${error || statusErr} />
    <${Charts} data=${data} />
    ${status && html`<section><h2>Asynchronous invocations</h2><${KeyValues} items=${[
      ['Waiting or running', status.Depth], ['In retry', status.InRetry], ['Oldest', status.OldestAge ? `${(status.OldestAge / 1e9).toFixed(1)} s` : '–'],
      ['Received', status.Counts?.Received], ['Succeeded', status.Counts?.Succeeded], ['Dropped', status.Counts?.Dropped],
    ]} /></section>`}`;
}

const envText = (vars) => Object.entries(vars || {}).map(([k, v]) => `${k}=${v}`).join('\n');

function ConfigurationTab({ f, onSaved }) {
  const c = f.Configuration;
  const [form, setForm] = useState({
    Description: c.Description || '', Handler: c.Handler || '', MemorySize: c.MemorySize, Timeout: c.Timeout,
    Ephemeral: c.EphemeralStorage?.Size || 512, Env: envText(c.Environment?.Variables), Layers: (c.Layers || []).map((l) => l.Arn).join('\n'),
  });
  const [busy, error, run] = useSubmit();
  const [saved, setSaved] = useState(false);
  const set = (k) => (e) => { setSaved(false); setForm({ ...form, [k]: e.target.value }); };
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const vars = {};
      for (const line of form.Env.split('\n').map((l) => l.trim()).filter(Boolean)) {
        const i = line.indexOf('=');
        if (i <= 0) throw new Error(`Environment line "${line}" is not KEY=VALUE.`);
        vars[line.slice(0, i)] = line.slice(i + 1);
      }
      await lambda('PUT', fn(c.FunctionName) + '/configuration', {
        Description: form.Description, Handler: form.Handler, MemorySize: Number(form.MemorySize), Timeout: Number(form.Timeout),
        EphemeralStorage: { Size: Number(form.Ephemeral) }, Environment: { Variables: vars },
        Layers: form.Layers.split('\n').map((l) => l.trim()).filter(Boolean),
      });
      setSaved(true);
      onSaved();
    });
  };
  return html`<form class="stack" onSubmit=${submit}>
    <${Field} label="Description"><input value=${form.Description} onInput=${set('Description')} /><//>
    <${Field} label="Handler"><input value=${form.Handler} onInput=${set('Handler')} /><//>
    <div class="row">
      <${Field} label="Memory (MB)"><input type="number" min="128" max="10240" value=${form.MemorySize} onInput=${set('MemorySize')} data-testid="memory" /><//>
      <${Field} label="Timeout (s)"><input type="number" min="1" max="900" value=${form.Timeout} onInput=${set('Timeout')} /><//>
      <${Field} label="Ephemeral storage (MB)"><input type="number" min="512" max="10240" value=${form.Ephemeral} onInput=${set('Ephemeral')} /><//>
    </div>
    <${Field} label="Environment variables" hint="One KEY=VALUE a line."><textarea rows="4" class="editor" value=${form.Env} onInput=${set('Env')}></textarea><//>
    <${Field} label="Layers" hint="One layer version ARN a line, in order."><textarea rows="3" class="editor" value=${form.Layers} onInput=${set('Layers')}></textarea><//>
    <${ErrorBox} error=${error} />
    <div class="actions"><button type="submit" disabled=${busy}>Save configuration</button>${saved && html`<span role="status">Saved.</span>`}</div>
  </form>`;
}

function CodeTab({ f, onSaved }) {
  const c = f.Configuration;
  const [code, setCode] = useState({});
  const [busy, error, run] = useSubmit();
  const [saved, setSaved] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await lambda('PUT', fn(c.FunctionName) + '/code', { ZipFile: await zipOf(c.Runtime, code) });
      setSaved(true);
      onSaved();
    });
  };
  return html`<p class="muted">Replace the code of $LATEST (${formatBytes(c.CodeSize)}, SHA-256 <span class="mono">${c.CodeSha256}</span>). The inline editor starts from a template, not from the current code.</p>
    <form class="stack" onSubmit=${submit}>
      <${CodeSource} runtime=${c.Runtime} value=${code} onChange=${(v) => { setSaved(false); setCode(v); }} />
      <${ErrorBox} error=${error} />
      <div class="actions"><button type="submit" disabled=${busy}>Deploy</button>${saved && html`<span role="status">Deployed.</span>`}</div>
    </form>`;
}
