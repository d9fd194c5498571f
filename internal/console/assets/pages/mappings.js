// Event source mappings: all of them or a function's, one mapping with its
// configuration, enabling and disabling it, and its lag.

import { html, useEffect, useRef, useState } from '../vendor/htm-preact.module.js';
import { call, lambda, sqs } from '../api.js';
import { Chart, ErrorBox, KeyValues, useAsync, useInterval } from '../ui.js';
import { useSubmit } from './code.js';

const base = '/2015-03-31/event-source-mappings';

/** mappingsOf lists the mappings, filtered by FunctionName or EventSourceArn. */
export async function mappingsOf(filter = {}) {
  const out = [];
  let marker = '';
  for (let page = 0; page < 20; page++) {
    const q = new URLSearchParams({ ...filter, MaxItems: '100', ...(marker ? { Marker: marker } : {}) });
    const res = await lambda('GET', `${base}?${q}`);
    out.push(...(res.EventSourceMappings || []));
    if (!(marker = res.NextMarker)) break;
  }
  return out;
}

/** lastPart is the name in an ARN (a function's, queue's or stream's). */
const lastPart = (arn) => (arn || '').split(/[:/]/).pop();

/** sourceLink links a mapping's source to its page. */
export function sourceLink(arn) {
  const [, , service, , , resource] = (arn || '').split(':');
  if (service === 'sqs') return html`<a href=${'#/queues/' + encodeURIComponent(resource)}>queue ${resource}</a>`;
  if (service === 'kinesis') {
    const name = resource.replace(/^stream\//, '');
    return html`<a href=${'#/streams/' + encodeURIComponent(name)}>stream ${name}</a>`;
  }
  return html`<span class="mono">${arn}</span>`;
}

/** functionLink links a mapping's function (its name, maybe qualified). */
function functionLink(arn) {
  const [, , , , , , name, qualifier] = (arn || '').split(':');
  return html`<a href=${'#/functions/' + encodeURIComponent(name)}>${name}${qualifier ? ':' + qualifier : ''}</a>`;
}

const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : '');

/** MappingsTable lists mappings. */
export function MappingsTable({ mappings }) {
  return html`<div class="table-wrap"><table class="list" data-testid="mappings">
    <thead><tr><th scope="col">UUID</th><th scope="col">Source</th><th scope="col">Function</th><th scope="col">State</th><th scope="col">Batch size</th><th scope="col">Last modified</th></tr></thead>
    <tbody>${mappings.map((m) => html`<tr>
      <td class="mono"><a href=${'#/mappings/' + encodeURIComponent(m.UUID)}>${m.UUID}</a></td>
      <td>${sourceLink(m.EventSourceArn)}</td><td>${functionLink(m.FunctionArn)}</td>
      <td>${m.State}</td><td>${m.BatchSize}</td><td>${when(m.LastModified)}</td></tr>`)}
      ${mappings.length === 0 && html`<tr><td colspan="6" class="muted">No event source mappings.</td></tr>`}
    </tbody></table></div>`;
}

export function MappingsPage({ query }) {
  const fnName = query.get('function') || '';
  const [list, error, reload] = useAsync(() => mappingsOf(fnName ? { FunctionName: fnName } : {}), [fnName]);
  useInterval(reload, 5000);
  return html`<h1>Event source mappings${fnName ? ` of ${fnName}` : ''}</h1>
    ${fnName && html`<p><a href="#/mappings">All mappings</a></p>`}
    <${ErrorBox} error=${error} />
    <p class="muted" aria-live="polite">${list ? `${list.length} mapping${list.length === 1 ? '' : 's'} · read every 5 s` : 'Loading…'}</p>
    ${list && html`<${MappingsTable} mappings=${list} />`}`;
}

export function MappingPage({ uuid, info }) {
  const [m, error, reload] = useAsync(() => lambda('GET', `${base}/${encodeURIComponent(uuid)}`), [uuid]);
  useInterval(reload, 5000);
  const [busy, saveErr, run] = useSubmit();
  const setEnabled = (enabled) => run(async () => {
    await lambda('PUT', `${base}/${encodeURIComponent(uuid)}`, { Enabled: enabled });
    reload();
  });
  const enabled = m && (m.State === 'Enabled' || m.State === 'Enabling' || m.State === 'Creating' || m.State === 'Updating');
  const isQueue = m?.EventSourceArn?.startsWith('arn:aws:sqs:');
  return html`<p class="crumbs"><a href="#/mappings">Event source mappings</a> / ${uuid}</p>
    <h1>Mapping ${uuid}</h1>
    <${ErrorBox} error=${error} />
    ${m && html`<section><h2>Configuration</h2>
      <${KeyValues} items=${[
        ['Source', sourceLink(m.EventSourceArn)], ['Function', functionLink(m.FunctionArn)],
        ['State', html`<span data-testid="mapping-state">${m.State}</span>`], ['State reason', m.StateTransitionReason],
        ['Last processing result', m.LastProcessingResult], ['Batch size', m.BatchSize],
        ['Batching window', m.MaximumBatchingWindowInSeconds != null ? m.MaximumBatchingWindowInSeconds + ' s' : undefined],
        ['Starting position', m.StartingPosition], ['Parallelization factor', m.ParallelizationFactor],
        ['Bisect batch on error', m.BisectBatchOnFunctionError != null ? String(m.BisectBatchOnFunctionError) : undefined],
        ['Maximum retry attempts', m.MaximumRetryAttempts], ['Maximum record age', m.MaximumRecordAgeInSeconds != null ? m.MaximumRecordAgeInSeconds + ' s' : undefined],
        ['Tumbling window', m.TumblingWindowInSeconds ? m.TumblingWindowInSeconds + ' s' : undefined],
        ['On failure', m.DestinationConfig?.OnFailure?.Destination && sourceLink(m.DestinationConfig.OnFailure.Destination)],
        ['Response types', (m.FunctionResponseTypes || []).join(', ')],
        ['Maximum concurrency', m.ScalingConfig?.MaximumConcurrency],
        ['Filters', (m.FilterCriteria?.Filters || []).length ? html`<ul class="plain">${m.FilterCriteria.Filters.map((f) => html`<li><code>${f.Pattern}</code></li>`)}</ul>` : undefined],
        ['ARN', html`<span class="mono">${m.EventSourceMappingArn}</span>`], ['Last modified', when(m.LastModified)],
      ]} />
      <div class="actions">
        ${enabled ? html`<button onClick=${() => setEnabled(false)} disabled=${busy}>Disable</button>` : html`<button onClick=${() => setEnabled(true)} disabled=${busy}>Enable</button>`}
      </div>
      <${ErrorBox} error=${saveErr} />
    </section>
    <section><h2>Lag</h2>
      <${LagChart} uuid=${uuid} info=${info} />
      ${isQueue && html`<${QueueDepth} arn=${m.EventSourceArn} />`}
    </section>`}`;
}

/** LagChart shows the mapping's lag as this node's pollers saw it. */
function LagChart({ uuid, info }) {
  const [data, error, reload] = useAsync(() => call('GET', '/metrics?mapping=' + encodeURIComponent(uuid)), [uuid]);
  useInterval(reload, Math.max(1000, (info.sampleSeconds || 5) * 1000));
  return html`<${ErrorBox} error=${error} />
    <p class="muted">As this node's pollers saw it at their last batch (for a stream, the age of the batch's last record, Lambda's IteratorAge;
      for a queue, the age of its oldest message), sampled every ${info.sampleSeconds} s; gaps are intervals when node ${info.node} did not poll it.</p>
    <div class="charts"><${Chart} title="Mapping lag" unit=" s" gaps data=${data} lines=${[{ key: 'lag', label: 'lag' }]} /></div>`;
}

/** depthSamples bounds the queue depth the page keeps while open. */
const depthSamples = 720;

/** QueueDepth charts the source queue's counts while the page is open. */
function QueueDepth({ arn }) {
  const samples = useRef({ time: [], visible: [], inFlight: [] });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const read = async () => {
    try {
      const { QueueUrl } = await sqs('GetQueueUrl', { QueueName: lastPart(arn) });
      const a = (await sqs('GetQueueAttributes', { QueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] })).Attributes;
      const s = samples.current;
      s.time.push(Date.now() / 1000);
      s.visible.push(Number(a.ApproximateNumberOfMessages));
      s.inFlight.push(Number(a.ApproximateNumberOfMessagesNotVisible));
      for (const col of Object.values(s)) col.splice(0, Math.max(0, col.length - depthSamples));
      setData({ ...s });
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => { read(); }, [arn]);
  useInterval(read, 5000);
  return html`<${ErrorBox} error=${error} />
    <p class="muted">The queue's counts, read every 5 s since this page opened.</p>
    <div class="charts"><${Chart} title="Queue depth" data=${data} lines=${[{ key: 'visible', label: 'available' }, { key: 'inFlight', label: 'in flight' }]} /></div>`;
}
