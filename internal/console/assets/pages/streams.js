// Kinesis streams: the list, and one stream with its retention, mode and
// shards, and the mappings that read it.

import { html } from '../vendor/htm-preact.module.js';
import { kinesis } from '../api.js';
import { ErrorBox, KeyValues, useAsync } from '../ui.js';
import { SourceMappings } from './queues.js';

async function listStreams() {
  const out = [];
  let token;
  for (let page = 0; page < 20; page++) {
    const res = await kinesis('ListStreams', token ? { NextToken: token } : { Limit: 1000 });
    out.push(...(res.StreamSummaries || []));
    if (!res.HasMoreStreams || !(token = res.NextToken)) break;
  }
  return Promise.all(out.map(async (s) => (await kinesis('DescribeStreamSummary', { StreamARN: s.StreamARN })).StreamDescriptionSummary));
}

export function StreamsPage() {
  const [streams, error] = useAsync(listStreams, []);
  const sorted = (streams || []).slice().sort((a, b) => a.StreamName.localeCompare(b.StreamName));
  return html`<h1>Streams</h1>
    <${ErrorBox} error=${error} />
    <div class="table-wrap"><table class="list" data-testid="streams">
      <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Mode</th><th scope="col">Open shards</th><th scope="col">Retention</th><th scope="col">Created</th></tr></thead>
      <tbody>
        ${sorted.map((s) => html`<tr><td><a href=${'#/streams/' + encodeURIComponent(s.StreamName)}>${s.StreamName}</a></td>
          <td>${s.StreamStatus}</td><td>${s.StreamModeDetails?.StreamMode}</td><td>${s.OpenShardCount}</td>
          <td>${s.RetentionPeriodHours} h</td><td>${new Date(s.StreamCreationTimestamp * 1000).toLocaleString()}</td></tr>`)}
        ${streams && sorted.length === 0 && html`<tr><td colspan="6" class="muted">No streams yet.</td></tr>`}
      </tbody>
    </table></div>`;
}

async function loadStream(name) {
  const [summary, shards] = await Promise.all([
    kinesis('DescribeStreamSummary', { StreamName: name }),
    (async () => {
      const out = [];
      let token;
      for (let page = 0; page < 20; page++) {
        const res = await kinesis('ListShards', token ? { NextToken: token } : { StreamName: name });
        out.push(...(res.Shards || []));
        if (!(token = res.NextToken)) break;
      }
      return out;
    })(),
  ]);
  return { ...summary.StreamDescriptionSummary, shards };
}

export function StreamPage({ name }) {
  const [s, error] = useAsync(() => loadStream(name), [name]);
  return html`<p class="crumbs"><a href="#/streams">Streams</a> / ${name}</p>
    <h1>${name}</h1>
    <${ErrorBox} error=${error} />
    ${s && html`<section><h2>Configuration</h2>
      <${KeyValues} items=${[['ARN', html`<span class="mono">${s.StreamARN}</span>`], ['Status', s.StreamStatus],
        ['Capacity mode', s.StreamModeDetails?.StreamMode], ['Retention', `${s.RetentionPeriodHours} hours`],
        ['Open shards', s.OpenShardCount], ['Consumers', s.ConsumerCount], ['Encryption', s.EncryptionType],
        ['Created', new Date(s.StreamCreationTimestamp * 1000).toLocaleString()]]} />
    </section>
    <section><h2>Shards</h2>
      <div class="table-wrap"><table class="list" data-testid="shards">
        <thead><tr><th scope="col">Shard</th><th scope="col">Hash keys from</th><th scope="col">to</th><th scope="col">Starting sequence number</th></tr></thead>
        <tbody>${s.shards.map((sh) => html`<tr><td class="mono">${sh.ShardId}</td><td class="mono">${sh.HashKeyRange?.StartingHashKey}</td>
          <td class="mono">${sh.HashKeyRange?.EndingHashKey}</td><td class="mono">${sh.SequenceNumberRange?.StartingSequenceNumber}</td></tr>`)}</tbody>
      </table></div>
    </section>
    <${SourceMappings} arn=${s.StreamARN} />`}`;
}
