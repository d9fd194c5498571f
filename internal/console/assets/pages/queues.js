// SQS queues: the list with their message counts, and one queue with its
// attributes, redrive, mappings; sending, receiving on demand and purging.

import { html, useState } from '../vendor/htm-preact.module.js';
import { sqs } from '../api.js';
import { Confirm, ErrorBox, Field, KeyValues, useAsync, useInterval } from '../ui.js';
import { useSubmit } from './code.js';
import { MappingsTable, mappingsOf } from './mappings.js';

/** queueName is the last part of a queue's URL or ARN. */
export const queueName = (urlOrArn) => urlOrArn.split(/[/:]/).pop();

async function listQueues() {
  const urls = [];
  let token;
  for (let page = 0; page < 10; page++) {
    const res = await sqs('ListQueues', { MaxResults: 1000, NextToken: token });
    urls.push(...(res.QueueUrls || []));
    if (!(token = res.NextToken)) break;
  }
  return Promise.all(urls.map(async (url) => ({ url, attributes: (await sqs('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] })).Attributes || {} })));
}

export function QueuesPage() {
  const [queues, error, reload] = useAsync(listQueues, []);
  useInterval(reload, 5000);
  const sorted = (queues || []).slice().sort((a, b) => queueName(a.url).localeCompare(queueName(b.url)));
  return html`<h1>Queues</h1>
    <${ErrorBox} error=${error} />
    <p class="muted" aria-live="polite">${queues ? `${queues.length} queue${queues.length === 1 ? '' : 's'} · counts read every 5 s` : 'Loading…'}</p>
    <div class="table-wrap"><table class="list" data-testid="queues">
      <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Available</th><th scope="col">In flight</th><th scope="col">Delayed</th><th scope="col">Created</th></tr></thead>
      <tbody>
        ${sorted.map((q) => html`<tr>
          <td><a href=${'#/queues/' + encodeURIComponent(queueName(q.url))}>${queueName(q.url)}</a></td>
          <td>${q.attributes.FifoQueue === 'true' ? 'FIFO' : 'Standard'}</td>
          <td>${q.attributes.ApproximateNumberOfMessages}</td><td>${q.attributes.ApproximateNumberOfMessagesNotVisible}</td>
          <td>${q.attributes.ApproximateNumberOfMessagesDelayed}</td>
          <td>${new Date(Number(q.attributes.CreatedTimestamp) * 1000).toLocaleString()}</td>
        </tr>`)}
        ${queues && sorted.length === 0 && html`<tr><td colspan="6" class="muted">No queues yet.</td></tr>`}
      </tbody>
    </table></div>`;
}

async function loadQueue(name) {
  const { QueueUrl: url } = await sqs('GetQueueUrl', { QueueName: name });
  const [attrs, tags, sources] = await Promise.all([
    sqs('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] }),
    sqs('ListQueueTags', { QueueUrl: url }),
    sqs('ListDeadLetterSourceQueues', { QueueUrl: url, MaxResults: 1000 }),
  ]);
  return { url, attributes: attrs.Attributes || {}, tags: tags.Tags || {}, sources: sources.queueUrls || [] };
}

/** counted are the attributes shown as the queue's message counts. */
const counted = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'];

export function QueuePage({ name }) {
  const [q, error, reload] = useAsync(() => loadQueue(name), [name]);
  useInterval(reload, 5000);
  const a = q?.attributes || {};
  const redrive = parseJSON(a.RedrivePolicy);
  const allow = parseJSON(a.RedriveAllowPolicy);
  return html`<p class="crumbs"><a href="#/queues">Queues</a> / ${name}</p>
    <h1>${name}</h1>
    <${ErrorBox} error=${error} />
    ${q && html`
      <section><h2>Messages</h2>
        <${KeyValues} items=${[['Available', a.ApproximateNumberOfMessages], ['In flight', a.ApproximateNumberOfMessagesNotVisible],
          ['Delayed', a.ApproximateNumberOfMessagesDelayed]]} />
        <p class="muted">Approximate counts, read every 5 s.</p>
      </section>
      <${SendMessage} url=${q.url} fifo=${a.FifoQueue === 'true'} onSent=${reload} />
      <${ReceiveMessages} url=${q.url} visibility=${a.VisibilityTimeout} redrive=${redrive} onChange=${reload} />
      <${Purge} url=${q.url} name=${name} onPurged=${reload} />
      <section><h2>Configuration</h2>
        <${KeyValues} items=${[['URL', html`<span class="mono">${q.url}</span>`], ['ARN', html`<span class="mono">${a.QueueArn}</span>`],
          ...Object.entries(a).filter(([k]) => !counted.includes(k) && k !== 'QueueArn' && k !== 'RedrivePolicy' && k !== 'RedriveAllowPolicy' && k !== 'Policy')
            .sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => [k, k.endsWith('Timestamp') ? new Date(Number(v) * 1000).toLocaleString() : v])]} />
      </section>
      <section><h2>Redrive</h2>
        <${KeyValues} items=${[
          ['Dead-letter queue', redrive ? html`<a href=${'#/queues/' + encodeURIComponent(queueName(redrive.deadLetterTargetArn))}>${queueName(redrive.deadLetterTargetArn)}</a>` : 'none'],
          ['Maximum receives', redrive?.maxReceiveCount],
          ['Redrive allow policy', allow ? allow.redrivePermission + (allow.sourceQueueArns ? ': ' + allow.sourceQueueArns.map(queueName).join(', ') : '') : undefined],
          ['Dead-letter queue of', q.sources.length ? html`<ul class="plain">${q.sources.map((u) => html`<li><a href=${'#/queues/' + encodeURIComponent(queueName(u))}>${queueName(u)}</a></li>`)}</ul>` : undefined],
        ]} />
      </section>
      ${a.Policy && html`<section><h2>Access policy</h2><pre class="output">${JSON.stringify(parseJSON(a.Policy), null, 2)}</pre></section>`}
      <section><h2>Tags</h2>${Object.keys(q.tags).length ? html`<${KeyValues} items=${Object.entries(q.tags)} />` : html`<p class="muted">No tags.</p>`}</section>
      <${SourceMappings} arn=${a.QueueArn} />`}`;
}

function parseJSON(text) {
  try { return text ? JSON.parse(text) : null; } catch { return null; }
}

/** SourceMappings lists the event source mappings that read a source. */
export function SourceMappings({ arn }) {
  const [list, error] = useAsync(() => mappingsOf({ EventSourceArn: arn }), [arn]);
  return html`<section><h2>Lambda triggers</h2><${ErrorBox} error=${error} />
    ${list && (list.length ? html`<${MappingsTable} mappings=${list} />` : html`<p class="muted">No event source mapping reads it.</p>`)}</section>`;
}

function SendMessage({ url, fifo, onSent }) {
  const [busy, error, run] = useSubmit();
  const [sent, setSent] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const input = { QueueUrl: url, MessageBody: form.get('body') };
    if (fifo) {
      input.MessageGroupId = form.get('group');
      if (form.get('dedup')) input.MessageDeduplicationId = form.get('dedup');
    } else if (form.get('delay')) {
      input.DelaySeconds = Number(form.get('delay'));
    }
    run(async () => {
      setSent(await sqs('SendMessage', input));
      onSent();
    });
  };
  return html`<section><h2>Send a message</h2>
    <form onSubmit=${submit} class="stack" data-testid="send-message">
      <${Field} label="Body"><textarea name="body" rows="4" required class="editor"></textarea><//>
      ${fifo ? html`<${Field} label="Message group ID"><input name="group" required /><//>
        <${Field} label="Deduplication ID" hint="Needed unless the queue deduplicates by content."><input name="dedup" /><//>`
        : html`<${Field} label="Delay (seconds)"><input name="delay" type="number" min="0" max="900" /><//>`}
      <${ErrorBox} error=${error} />
      <div class="actions"><button type="submit" disabled=${busy}>Send message</button></div>
      ${sent && html`<p role="status">Sent message <code>${sent.MessageId}</code> (body MD5 <code>${sent.MD5OfMessageBody}</code>).</p>`}
    </form></section>`;
}

/**
 * ReceiveMessages receives on demand, as the AWS console's "Poll for
 * messages" does: what it receives is invisible to the queue's consumers
 * for the visibility timeout and counts toward the redrive's maximum.
 */
function ReceiveMessages({ url, visibility, redrive, onChange }) {
  const [busy, error, run] = useSubmit();
  const [messages, setMessages] = useState(null);
  const receive = () => run(async () => {
    const res = await sqs('ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] });
    setMessages(res.Messages || []);
    onChange();
  });
  const remove = (m) => run(async () => {
    await sqs('DeleteMessage', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle });
    setMessages((ms) => ms.filter((x) => x !== m));
    onChange();
  });
  return html`<section><h2>Receive messages</h2>
    <p class="muted">Receiving is not a peek: the messages received here are hidden from the queue's consumers for its visibility
      timeout (${visibility} s) and count as a receive${redrive ? ` toward the ${redrive.maxReceiveCount} after which they move to the dead-letter queue` : ''}.</p>
    <button class="secondary" onClick=${receive} disabled=${busy}>Receive up to 10 messages</button>
    <${ErrorBox} error=${error} />
    ${messages && (messages.length === 0 ? html`<p role="status">No message was available.</p>` : html`<div class="table-wrap"><table class="list" data-testid="received">
      <thead><tr><th scope="col">Message ID</th><th scope="col">Body</th><th scope="col">Sent</th><th scope="col">Receives</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
      <tbody>${messages.map((m) => html`<tr>
        <td class="mono">${m.MessageId}</td><td><pre class="output">${m.Body}</pre></td>
        <td>${new Date(Number(m.Attributes?.SentTimestamp)).toLocaleString()}</td><td>${m.Attributes?.ApproximateReceiveCount}</td>
        <td><button class="secondary" onClick=${() => remove(m)} disabled=${busy}>Delete</button></td></tr>`)}</tbody></table></div>`)}
  </section>`;
}

/** Purge deletes every message of the queue, once confirmed. */
function Purge({ url, name, onPurged }) {
  const [confirming, setConfirming] = useState(false);
  const [done, setDone] = useState(false);
  const [busy, error, run] = useSubmit();
  const purge = () => run(async () => {
    await sqs('PurgeQueue', { QueueUrl: url });
    setConfirming(false);
    setDone(true);
    onPurged();
  });
  return html`<section><h2>Purge</h2>
    ${!confirming && html`<button class="secondary" onClick=${() => { setConfirming(true); setDone(false); }}>Purge messages…</button>`}
    ${confirming && html`<${Confirm} label="Confirm purge" action="Purge" busy=${busy} onConfirm=${purge} onCancel=${() => setConfirming(false)}>
      Delete every message of <strong>${name}</strong>? This cannot be undone.<//>`}
    <${ErrorBox} error=${error} />
    ${done && html`<p role="status">The queue was purged.</p>`}
  </section>`;
}
