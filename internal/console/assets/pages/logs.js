// Function logs: follow them live (a FilterLogEvents poll every 2 s, the
// way `lamina logs --follow` does), filter them, or show the lines of one
// invocation (?request=ID: from its START line to its REPORT line in its
// environment's log stream).

import { html, useEffect, useRef, useState } from '../vendor/htm-preact.module.js';
import { listAll, logs } from '../api.js';
import { ErrorBox, useAsync, useInterval } from '../ui.js';

/** maxLines bounds the lines a page keeps; older ones are dropped. */
const maxLines = 2000;
const followMs = 2000;
const group = (name) => '/aws/lambda/' + name;

function LogLines({ lines }) {
  const end = useRef(null);
  useEffect(() => { end.current?.scrollIntoView({ block: 'nearest' }); }, [lines.length]);
  return html`<div class="log" role="log" aria-live="polite" tabindex="0" data-testid="log-lines">
    ${lines.map((e) => html`<div class=${'line' + (/^(START|END|REPORT|INIT_START) /.test(e.message) ? ' meta' : '')}>
      <time>${new Date(e.timestamp).toISOString().slice(11, 23)}</time> <span class="msg">${e.message}</span></div>`)}
    ${lines.length === 0 && html`<div class="muted">No log lines yet.</div>`}
    <div ref=${end}></div>
  </div>`;
}

async function invocationLines(name, requestId) {
  const found = await logs('FilterLogEvents', { logGroupName: group(name), filterPattern: `"START RequestId: ${requestId}"`, limit: 1 });
  const start = found.events?.[0];
  if (!start) return [];
  const out = [];
  let token;
  for (let page = 0; page < 20; page++) {
    const res = await logs('GetLogEvents', { logGroupName: group(name), logStreamName: start.logStreamName, startTime: start.timestamp, startFromHead: true, limit: 500, nextToken: token });
    let started = false;
    for (const e of res.events || []) {
      if (!started && !(out.length || e.message.startsWith(`START RequestId: ${requestId}`))) continue;
      started = true;
      out.push(e);
      if (e.message.startsWith(`REPORT RequestId: ${requestId}`)) return out;
    }
    if (!res.nextForwardToken || res.nextForwardToken === token) break;
    token = res.nextForwardToken;
  }
  return out;
}

export function LogsPage({ name, query }) {
  const requestId = query.get('request') || '';
  const [functions] = useAsync(() => listAll('/2015-03-31/functions?MaxItems=50', 'Functions'), []);
  const [filter, setFilter] = useState(query.get('filter') || '');
  const [applied, setApplied] = useState(filter);
  const [follow, setFollow] = useState(!requestId);
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  const state = useRef({ since: 0, seen: new Set(), busy: false });

  const poll = async () => {
    const st = state.current;
    if (!name || st.busy) return;
    st.busy = true;
    try {
      const got = [];
      let token;
      for (let page = 0; page < 10; page++) {
        const res = await logs('FilterLogEvents', { logGroupName: group(name), startTime: st.since, filterPattern: applied || undefined, limit: 500, nextToken: token });
        for (const e of res.events || []) {
          if (st.seen.has(e.eventId)) continue;
          st.seen.add(e.eventId);
          got.push(e);
          st.since = Math.max(st.since, e.timestamp);
        }
        if (!res.nextToken) break;
        token = res.nextToken;
      }
      if (st.seen.size > maxLines * 2) st.seen = new Set([...st.seen].slice(-maxLines));
      if (got.length) setLines((old) => [...old, ...got].slice(-maxLines));
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      st.busy = false;
    }
  };

  useEffect(() => {
    state.current = { since: Date.now() - 3600 * 1000, seen: new Set(), busy: false };
    setLines([]);
    if (!name) return;
    if (requestId) invocationLines(name, requestId).then(setLines, setError);
    else poll();
  }, [name, applied, requestId]);
  useInterval(poll, followMs, follow && !!name && !requestId);

  const choose = (e) => { location.hash = '#/logs/' + encodeURIComponent(e.target.value); };
  return html`<h1>Logs${name ? ` of ${name}` : ''}</h1>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); setApplied(filter); }}>
      <label class="inline">Function
        <select value=${name || ''} onChange=${choose}>
          <option value="" disabled>choose…</option>
          ${(functions || []).map((f) => html`<option value=${f.FunctionName}>${f.FunctionName}</option>`)}
        </select></label>
      ${!requestId && html`
        <label class="inline">Filter <input type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)} placeholder='terms or "a phrase"' /></label>
        <button type="submit">Apply</button>
        <label class="inline check"><input type="checkbox" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> Follow</label>`}
      ${requestId && html`<span>Invocation <code>${requestId}</code> · <a href=${'#/logs/' + encodeURIComponent(name)}>all lines</a></span>`}
    </form>
    <${ErrorBox} error=${error} />
    ${name ? html`<${LogLines} lines=${lines} />` : html`<p class="muted">Choose a function to see its log group /aws/lambda/NAME.</p>`}`;
}
