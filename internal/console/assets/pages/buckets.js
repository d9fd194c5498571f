// S3 buckets: the list, and one bucket's objects by prefix (folders are
// the common prefixes at "/"), an object's metadata, downloading and
// uploading, and the bucket's notification configuration. Every key and
// value is shown as text.

import { html, useState } from '../vendor/htm-preact.module.js';
import { children, first, s3, s3Path, s3XML } from '../api.js';
import { ErrorBox, Field, KeyValues, formatBytes, useAsync } from '../ui.js';
import { useSubmit } from './code.js';

export function BucketsPage() {
  const [doc, error] = useAsync(() => s3XML('/'), []);
  const buckets = doc ? [...doc.getElementsByTagName('Bucket')].map((b) => ({ name: first(b, 'Name'), created: first(b, 'CreationDate') })) : null;
  return html`<h1>Buckets</h1>
    <${ErrorBox} error=${error} />
    <div class="table-wrap"><table class="list" data-testid="buckets">
      <thead><tr><th scope="col">Name</th><th scope="col">Created</th></tr></thead>
      <tbody>
        ${(buckets || []).map((b) => html`<tr><td><a href=${'#/buckets/' + encodeURIComponent(b.name)}>${b.name}</a></td><td>${new Date(b.created).toLocaleString()}</td></tr>`)}
        ${buckets && buckets.length === 0 && html`<tr><td colspan="2" class="muted">No buckets yet.</td></tr>`}
      </tbody>
    </table></div>`;
}

/** listPage lists a bucket's objects and folders under prefix. */
async function listPage(bucket, prefix, token) {
  const q = new URLSearchParams({ 'list-type': '2', delimiter: '/', prefix, 'max-keys': '200' });
  if (token) q.set('continuation-token', token);
  const doc = await s3XML(s3Path(bucket) + '?' + q);
  const root = doc.documentElement;
  return {
    folders: children(root, 'CommonPrefixes').map((p) => first(p, 'Prefix')),
    objects: children(root, 'Contents').map((c) => ({ key: first(c, 'Key'), size: Number(first(c, 'Size')), modified: first(c, 'LastModified'), etag: first(c, 'ETag') })),
    next: first(root, 'NextContinuationToken'),
  };
}

/** bucketHref is the page of a bucket at a prefix, or of an object. */
const bucketHref = (bucket, params = {}) => '#/buckets/' + encodeURIComponent(bucket) + (Object.keys(params).length ? '?' + new URLSearchParams(params) : '');

export function BucketPage({ bucket, query }) {
  const prefix = query.get('prefix') || '';
  const key = query.get('key');
  const [pages, setPages] = useState([]);
  const [listing, error, reload] = useAsync(async () => { setPages([]); return listPage(bucket, prefix); }, [bucket, prefix]);
  const [moreErr, setMoreErr] = useState(null);
  const shown = listing ? [listing, ...pages] : [];
  const next = shown.length ? shown[shown.length - 1].next : '';
  const more = async () => {
    try { setPages([...pages, await listPage(bucket, prefix, next)]); } catch (err) { setMoreErr(err); }
  };
  const parts = prefix.split('/').filter(Boolean);
  return html`<p class="crumbs"><a href="#/buckets">Buckets</a> / <a href=${bucketHref(bucket)}>${bucket}</a>
      ${parts.map((p, i) => html` / <a href=${bucketHref(bucket, { prefix: parts.slice(0, i + 1).join('/') + '/' })}>${p}</a>`)}</p>
    <h1>${bucket}</h1>
    ${key != null && html`<${ObjectDetails} bucket=${bucket} objectKey=${key} />`}
    <section><h2>Objects${prefix ? html` under <code>${prefix}</code>` : ''}</h2>
      <${ErrorBox} error=${error || moreErr} />
      <div class="table-wrap"><table class="list" data-testid="objects">
        <thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Last modified</th><th scope="col">ETag</th></tr></thead>
        <tbody>
          ${shown.flatMap((p) => p.folders).map((f) => html`<tr><td><a href=${bucketHref(bucket, { prefix: f })}>${f.slice(prefix.length)}</a></td><td class="muted">folder</td><td></td><td></td></tr>`)}
          ${shown.flatMap((p) => p.objects).map((o) => html`<tr>
            <td><a href=${bucketHref(bucket, { prefix, key: o.key })}>${o.key.slice(prefix.length)}</a></td>
            <td>${formatBytes(o.size)}</td><td>${new Date(o.modified).toLocaleString()}</td><td class="mono">${o.etag}</td></tr>`)}
          ${listing && shown.every((p) => p.folders.length + p.objects.length === 0) && html`<tr><td colspan="4" class="muted">Nothing here yet.</td></tr>`}
        </tbody>
      </table></div>
      ${next && html`<button class="secondary" onClick=${more}>More objects</button>`}
    </section>
    <${Upload} bucket=${bucket} prefix=${prefix} onUploaded=${reload} />
    <${Notifications} bucket=${bucket} />`;
}

/** download saves a response's body as a file named name. */
async function download(res, name) {
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function ObjectDetails({ bucket, objectKey }) {
  const [head, error] = useAsync(async () => (await s3('HEAD', s3Path(bucket, objectKey))).headers, [bucket, objectKey]);
  const [busy, dlErr, run] = useSubmit();
  const meta = head ? [...head.entries()].filter(([k]) => k.startsWith('x-amz-meta-')) : [];
  return html`<section aria-labelledby="object-title"><h2 id="object-title">Object <code>${objectKey}</code></h2>
    <${ErrorBox} error=${error || dlErr} />
    ${head && html`<${KeyValues} items=${[
      ['Key', html`<code data-testid="object-key">${objectKey}</code>`], ['Size', formatBytes(Number(head.get('Content-Length')))],
      ['Content type', head.get('Content-Type')], ['ETag', html`<span class="mono">${head.get('ETag')}</span>`],
      ['Last modified', head.get('Last-Modified') && new Date(head.get('Last-Modified')).toLocaleString()],
      ['Storage class', head.get('x-amz-storage-class') || 'STANDARD'],
      ['Metadata', meta.length ? html`<ul class="plain">${meta.map(([k, v]) => html`<li><code>${k.slice('x-amz-meta-'.length)}</code> = <code>${v}</code></li>`)}</ul>` : 'none'],
    ]} />
    <button onClick=${() => run(async () => download(await s3('GET', s3Path(bucket, objectKey)), objectKey.split('/').pop()))} disabled=${busy}>Download</button>`}
  </section>`;
}

/** uploadLimit bounds what the console uploads: small files; the API takes larger ones. */
const uploadLimit = 10 << 20;

function Upload({ bucket, prefix, onUploaded }) {
  const [busy, error, run] = useSubmit();
  const [done, setDone] = useState('');
  const submit = (e) => {
    e.preventDefault();
    const file = new FormData(e.target).get('file');
    run(async () => {
      if (!file || !file.name) throw new Error('Choose a file.');
      if (file.size > uploadLimit) throw new Error(`The console uploads files up to ${formatBytes(uploadLimit)}; use the API for larger ones.`);
      await s3('PUT', s3Path(bucket, prefix + file.name), { body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
      setDone(prefix + file.name);
      e.target.reset();
      onUploaded();
    });
  };
  return html`<section><h2>Upload</h2>
    <form onSubmit=${submit} class="inline-form" data-testid="upload">
      <${Field} label=${`File (up to ${formatBytes(uploadLimit)}), stored under ${prefix || 'the bucket\'s top'}`}><input type="file" name="file" required /><//>
      <button type="submit" disabled=${busy}>Upload</button>
    </form>
    <${ErrorBox} error=${error} />
    ${done && html`<p role="status">Uploaded <code>${done}</code>.</p>`}
  </section>`;
}

/** notificationKinds are the configurations a bucket notifies, by element. */
const notificationKinds = [['CloudFunctionConfiguration', 'CloudFunction', 'Function'], ['LambdaFunctionConfiguration', 'Function', 'Function'],
  ['QueueConfiguration', 'Queue', 'Queue'], ['TopicConfiguration', 'Topic', 'Topic']];

function Notifications({ bucket }) {
  const [doc, error] = useAsync(() => s3XML(s3Path(bucket) + '?notification'), [bucket]);
  const rows = [];
  if (doc) {
    for (const [element, target, kind] of notificationKinds) {
      for (const c of children(doc.documentElement, element)) {
        rows.push({
          id: first(c, 'Id'), kind, target: first(c, target),
          events: children(c, 'Event').map((e) => e.textContent),
          rules: [...c.getElementsByTagName('FilterRule')].map((r) => `${first(r, 'Name')} = ${first(r, 'Value')}`),
        });
      }
    }
  }
  return html`<section><h2>Event notifications</h2>
    <${ErrorBox} error=${error} />
    ${doc && (rows.length ? html`<div class="table-wrap"><table class="list" data-testid="notifications">
      <thead><tr><th scope="col">ID</th><th scope="col">Destination</th><th scope="col">Events</th><th scope="col">Filter</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr><td>${r.id}</td><td>${r.kind}: ${r.kind === 'Function'
        ? html`<a href=${'#/functions/' + encodeURIComponent(r.target.split(':')[6] || r.target)}>${r.target}</a>` : html`<span class="mono">${r.target}</span>`}</td>
        <td>${r.events.join(', ')}</td><td>${r.rules.join(', ')}</td></tr>`)}</tbody></table></div>` : html`<p class="muted">The bucket notifies nothing.</p>`)}
  </section>`;
}
