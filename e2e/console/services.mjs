// Drives the Lamina console's pages of the services beside Lambda in
// headless Chromium: queues, buckets, streams, event source mappings and
// the cluster's nodes. e2e/console_services_test.go makes the resources
// and runs this with the environment of console.mjs, plus MAPPING_UUID and
// XSS (the markup in an object key). Every step prints a line; the first
// failure exits 1.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const endpoint = process.env.LAMINA_ENDPOINT;
const keyID = process.env.LAMINA_ACCESS_KEY_ID;
const secret = process.env.LAMINA_SECRET_ACCESS_KEY;
const shots = process.env.SCREENSHOTS;
const uuid = process.env.MAPPING_UUID;
const xss = process.env.XSS;
const console_ = endpoint + '/console/';
const long = Number(process.env.STEP_TIMEOUT_MS || 120_000);

function step(name) { console.log('step:', name); }
const shot = (page, name) => page.screenshot({ path: path.join(shots, name + '.png') });

async function signIn(page) {
  await page.goto(console_);
  await page.getByLabel('Access key ID').fill(keyID);
  await page.getByLabel('Secret access key').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Functions' }).waitFor();
}

/** metrics reads the console's samples from the page. */
const metrics = (page, q) => page.evaluate(async (q) => {
  const session = await (await fetch('/console/api/session')).json();
  return (await fetch('/console/api/metrics?' + q, { headers: { 'X-Csrf-Token': session.csrfToken } })).json();
}, q);

/** until polls check every second until it holds (page.waitForFunction takes a Promise for true). */
async function until(check, what) {
  for (const deadline = Date.now() + long; Date.now() < deadline; await new Promise((r) => setTimeout(r, 1000))) {
    if (await check()) return;
  }
  throw new Error('timed out waiting for ' + what);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const cspViolations = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  context.on('page', (p) => {
    p.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
    p.on('pageerror', (e) => console.log('page error:', e.message));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(long);
  await signIn(page);

  step('the queues list shows the queues with their counts');
  await page.locator('nav#nav').getByRole('link', { name: 'Queues' }).click();
  const queues = page.getByTestId('queues');
  const srcRow = queues.getByRole('row').filter({ has: page.getByRole('link', { name: 'console-src', exact: true }) });
  await srcRow.waitFor();
  await queues.getByRole('link', { name: 'console-dlq', exact: true }).waitFor();
  await shot(page, 'queues');

  step('a queue: its redrive, send a message and see the count');
  await queues.getByRole('link', { name: 'console-queue', exact: true }).click();
  await page.getByRole('heading', { name: 'console-queue' }).waitFor();
  await page.getByRole('link', { name: 'console-dlq' }).first().waitFor();
  const body = 'hello from the console ' + xss;
  await page.getByLabel('Body').fill(body);
  await page.getByRole('button', { name: 'Send message' }).click();
  await page.getByRole('status').filter({ hasText: 'Sent message' }).waitFor();
  const available = page.locator('dl.kv dt:text-is("Available") + dd');
  await page.waitForFunction(() => document.querySelector('dl.kv dd')?.textContent === '1');
  assert.equal(await available.first().textContent(), '1');

  step('receive it: the body is shown as text, and the counts move to in flight');
  await page.getByRole('button', { name: 'Receive up to 10 messages' }).click();
  const received = page.getByTestId('received');
  await received.getByText(body).waitFor();
  assert.equal(await received.locator('img').count(), 0, 'a message body is text');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  await page.waitForFunction(() => [...document.querySelectorAll('dl.kv dt')].find((d) => d.textContent === 'In flight')?.nextElementSibling.textContent === '1');
  await shot(page, 'queue');

  step('purge asks first, and Cancel keeps the messages');
  await page.getByRole('button', { name: 'Purge messages…' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Confirm purge' });
  await page.waitForFunction(() => document.activeElement?.textContent === 'Purge'); // the confirmation takes the focus
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await dialog.count(), 0);
  await page.getByRole('button', { name: 'Purge messages…' }).click();
  await dialog.getByRole('button', { name: 'Purge' }).click();
  await page.getByRole('status').filter({ hasText: 'The queue was purged.' }).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('dl.kv dt')].find((d) => d.textContent === 'In flight')?.nextElementSibling.textContent === '0');

  step('buckets: browse by prefix; a key that is markup is text');
  await page.locator('nav#nav').getByRole('link', { name: 'Buckets' }).click();
  await page.getByTestId('buckets').getByRole('link', { name: 'console-bucket' }).click();
  const objects = page.getByTestId('objects');
  await objects.getByRole('link', { name: 'top.txt' }).waitFor();
  await objects.getByRole('link', { name: 'dir/' }).click();
  await objects.getByRole('link', { name: xss + '.txt' }).waitFor();
  await objects.getByRole('link', { name: 'sub/' }).waitFor();
  assert.equal(await objects.getByRole('link', { name: 'top.txt' }).count(), 0, 'only what is under dir/');
  await objects.getByRole('link', { name: xss + '.txt' }).click();
  await page.getByTestId('object-key').filter({ hasText: 'dir/' + xss + '.txt' }).waitFor();
  await page.locator('dl.kv').getByText('text/plain').waitFor();
  await page.locator('dl.kv').getByText('origin').waitFor();
  assert.equal(await page.locator('main img').count(), 0, 'object keys are text');
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  step('the bucket shows its notification configuration');
  const notes = page.getByTestId('notifications');
  await notes.getByText('uploads-to-consumer').waitFor();
  assert.match(await notes.textContent(), /s3:ObjectCreated:Put/);
  assert.match(await notes.textContent(), /suffix = \.never/i);

  step('upload a small file under the prefix, see it listed, download it');
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'console-'));
  const file = path.join(tmp, 'uploaded & <b>.txt');
  const content = 'uploaded through the console ' + Date.now();
  await fs.writeFile(file, content);
  await page.getByLabel(/^File/).setInputFiles(file);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByRole('status').filter({ hasText: 'Uploaded dir/uploaded & <b>.txt' }).waitFor();
  await objects.getByRole('link', { name: 'uploaded & <b>.txt' }).click();
  await page.getByTestId('object-key').filter({ hasText: 'dir/uploaded & <b>.txt' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(download.suggestedFilename(), 'uploaded & _b_.txt'.replace('_b_', '<b>').replace(/[<>]/g, '_'));
  assert.equal(await fs.readFile(await download.path(), 'utf8'), content);
  await shot(page, 'bucket');

  step('streams: the list, a stream with its retention and shards');
  await page.locator('nav#nav').getByRole('link', { name: 'Streams' }).click();
  await page.getByTestId('streams').getByRole('link', { name: 'console-stream' }).click();
  await page.locator('dl.kv').getByText('24 hours').waitFor();
  await page.getByTestId('shards').getByText('shardId-000000000001').waitFor();
  await shot(page, 'stream');

  step('topics: the list, a topic with its attributes and subscriptions');
  await page.locator('nav#nav').getByRole('link', { name: 'Topics' }).click();
  await page.getByTestId('topics').getByRole('link', { name: 'console-topic' }).click();
  await page.getByTestId('subscriptions').getByText('function:console-consumer').waitFor();
  await page.locator('dl.kv').getByText('SubscriptionsConfirmed').waitFor();
  await shot(page, 'topic');

  step('mappings: the list with state, batch size and source');
  await page.locator('nav#nav').getByRole('link', { name: 'Event source mappings' }).click();
  const row = page.getByTestId('mappings').getByRole('row').filter({ hasText: uuid });
  await row.getByRole('link', { name: 'queue console-src' }).waitFor();
  assert.match(await row.textContent(), /Enabled/);
  await page.goto(console_ + '#/mappings?function=console-consumer');
  await page.getByTestId('mappings').getByText(uuid).waitFor();

  step('a mapping: its lag chart shows what the pollers saw');
  await page.goto(console_ + '#/mappings/' + uuid);
  await page.getByTestId('mapping-state').filter({ hasText: 'Enabled' }).waitFor();
  // A backlog of 30 at two a second: a few samples with a lag.
  await until(async () => {
    const lag = (await metrics(page, 'mapping=' + uuid)).lag || [];
    return lag.some((v) => v > 0) && lag.filter((v) => v != null).length >= 3;
  }, 'lag samples of the mapping');
  const lag = await metrics(page, 'mapping=' + uuid);
  assert.ok(lag.lag.some((v) => v >= 1), `a backlog of 30 at one per second lags by seconds: ${JSON.stringify(lag.lag)}`);
  await page.reload(); // the chart reads the samples the wait saw
  await page.locator('figure[data-chart="Mapping lag"] canvas').waitFor();
  await page.waitForFunction(() => /lag: \d/.test(document.querySelector('figure[data-chart="Mapping lag"] .latest')?.textContent || ''));
  await page.locator('figure[data-chart="Queue depth"] canvas').waitFor();
  await shot(page, 'mapping');

  step('disable the mapping, and enable it again');
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByTestId('mapping-state').filter({ hasText: /Disabl/ }).waitFor();
  await page.getByTestId('mapping-state').filter({ hasText: 'Disabled' }).waitFor();
  await page.getByRole('button', { name: 'Enable' }).click();
  await page.getByTestId('mapping-state').filter({ hasText: 'Enabled' }).waitFor();

  step('the cluster page shows this node with its memory and health');
  await page.locator('nav#nav').getByRole('link', { name: 'Nodes' }).click();
  const nodes = page.getByTestId('nodes');
  await nodes.getByText('(this node)').waitFor();
  assert.match(await nodes.textContent(), /heartbeat \d+ s ago/);
  assert.match(await nodes.textContent(), /of \d+ MB/);
  await shot(page, 'nodes');

  step('keyboard only: reach a queue and send a message');
  const kb = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const kp = await kb.newPage();
  kp.setDefaultTimeout(long);
  await signIn(kp);
  const focusUntil = async (predicate, what) => {
    for (let i = 0; i < 80; i++) {
      await kp.keyboard.press('Tab');
      if (await kp.evaluate(predicate)) return;
    }
    throw new Error('Tab never reached ' + what);
  };
  await focusUntil(() => document.activeElement?.textContent === 'Queues', 'the Queues link');
  await kp.keyboard.press('Enter');
  await kp.getByTestId('queues').getByRole('link', { name: 'console-queue', exact: true }).waitFor();
  await focusUntil(() => document.activeElement?.textContent === 'console-queue', 'the queue link');
  await kp.keyboard.press('Enter');
  await kp.getByRole('heading', { name: 'console-queue' }).waitFor();
  await focusUntil(() => document.activeElement?.name === 'body', 'the Body field');
  await kp.keyboard.type('typed without a mouse');
  await focusUntil(() => document.activeElement?.textContent === 'Send message', 'the Send button');
  assert.notEqual(await kp.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none', 'the focus shows');
  await kp.keyboard.press('Enter');
  await kp.getByRole('status').filter({ hasText: 'Sent message' }).waitFor();
  await kp.waitForFunction(() => document.querySelector('dl.kv dd')?.textContent === '1');
  await kb.close();

  step('a 400 px window: the bucket page fits');
  const narrow = await browser.newContext({ viewport: { width: 400, height: 860 } });
  const np = await narrow.newPage();
  np.setDefaultTimeout(long);
  await signIn(np);
  await np.goto(console_ + '#/buckets/console-bucket?prefix=dir%2F');
  await np.getByTestId('objects').getByRole('link', { name: 'sub/' }).waitFor();
  await np.getByRole('button', { name: 'Menu' }).click();
  await np.locator('nav#nav').getByRole('link', { name: 'Buckets' }).waitFor();
  await np.getByRole('button', { name: 'Menu' }).click();
  const width = await np.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `page is ${width} px wide in a 400 px window`);
  await shot(np, 'narrow-bucket');
  await narrow.close();

  assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');
  console.log('console services e2e: all steps passed');
} catch (err) {
  console.error('console services e2e failed:', err);
  let n = 0;
  for (const ctx of browser.contexts()) {
    for (const p of ctx.pages()) {
      await p.screenshot({ path: path.join(shots, `failure-services-${++n}.png`) }).catch(() => {});
      console.error(`page ${n} at ${p.url()}:`, (await p.locator('body').innerText().catch(() => '')).slice(0, 2000));
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
