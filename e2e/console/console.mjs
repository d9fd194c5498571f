// Drives the Lamina console in headless Chromium as a person would: sign
// in, create a function in the inline editor, invoke it with a test event,
// follow its logs, see a chart, use the keyboard only, and a 400 px window.
// e2e/console_test.go starts a real server and runs this with:
//   LAMINA_ENDPOINT, LAMINA_ACCESS_KEY_ID, LAMINA_SECRET_ACCESS_KEY,
//   CHROMIUM (the browser's path), SCREENSHOTS (a directory).
// Every step prints a line; the first failure exits 1.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const endpoint = process.env.LAMINA_ENDPOINT;
const keyID = process.env.LAMINA_ACCESS_KEY_ID;
const secret = process.env.LAMINA_SECRET_ACCESS_KEY;
const shots = process.env.SCREENSHOTS;
const console_ = endpoint + '/console/';
// A string that would run script if the console inserted function output
// as HTML.
const xss = '<img src=x onerror="window.__xss=1">';
const marker = 'marker-' + Date.now();
// Waits are deadlines for a broken console, not expectations of speed.
const long = Number(process.env.STEP_TIMEOUT_MS || 120_000);

function step(name) { console.log('step:', name); }

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + '.png') });
}

async function signIn(page, id = keyID, key = secret) {
  await page.goto(console_);
  await page.getByLabel('Access key ID').fill(id);
  await page.getByLabel('Secret access key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** consoleCall calls the console's API from the page, as the app does. */
async function consoleCall(page, method, apiPath, body, headers = {}) {
  return page.evaluate(async ([method, apiPath, body, headers]) => {
    const session = await (await fetch('/console/api/session')).json();
    const res = await fetch('/console/api' + apiPath, {
      method, body, headers: { 'Content-Type': 'application/json', 'X-Csrf-Token': session.csrfToken, ...headers },
    });
    return { status: res.status, text: await res.text() };
  }, [method, apiPath, body, headers]);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const cspViolations = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const watch = (p) => {
    p.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
    p.on('pageerror', (e) => console.log('page error:', e.message));
  };
  context.on('page', watch);
  const page = await context.newPage();
  page.setDefaultTimeout(long);

  step('a wrong secret is refused with the API error shape');
  await signIn(page, keyID, 'not-the-secret');
  await page.getByRole('alert').filter({ hasText: 'UnrecognizedClientException' }).waitFor();
  await shot(page, 'signin');

  step('sign in');
  await signIn(page);
  await page.getByRole('heading', { name: 'Functions' }).waitFor();

  step('the page is served with a strict CSP and may not be framed');
  const res = await page.request.get(console_);
  assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
  assert.match(res.headers()['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(res.headers()['x-frame-options'], 'DENY');

  step('create a function in the inline editor');
  await page.getByRole('link', { name: 'Create function' }).click();
  await page.getByLabel('Function name').fill('hello-console');
  await page.getByLabel('Runtime').selectOption('python3.12');
  await page.getByTestId('inline-editor').fill(
    'import json\n\ndef lambda_handler(event, context):\n' +
    '    print("got", event.get("marker", "none"), ' + JSON.stringify(xss) + ')\n' +
    '    return {"statusCode": 200, "body": ' + JSON.stringify(xss) + ', "records": len(event.get("Records", []))}\n');
  await page.getByRole('button', { name: 'Create function' }).click();
  await page.getByRole('heading', { name: 'hello-console' }).waitFor();
  await page.getByTestId('invoke').waitFor();

  step('invoke with the S3 put template and see result, duration, memory and log tail');
  await page.getByTestId('event-select').selectOption('template:s3-put');
  await page.getByTestId('invoke').click();
  const result = page.getByTestId('result');
  await result.getByRole('heading', { name: 'Succeeded' }).waitFor();
  const response = await page.getByTestId('response').textContent();
  assert.ok(response.includes('"records": 1') || response.includes('"records":1'), response);
  assert.ok(response.includes('<img src=x onerror='), 'the response is shown as text');
  await result.getByText(/Duration/).first().waitFor();
  assert.match(await result.textContent(), /MB used of 128 MB/);
  assert.match(await page.getByTestId('log-tail').textContent(), /REPORT RequestId:/);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'function output never runs as HTML');
  assert.equal(await page.locator('main img').count(), 0);

  step('save the test event and find it again');
  await page.getByLabel('Save as').fill('my-s3-put');
  await page.getByRole('button', { name: 'Save event' }).click();
  await page.reload();
  await page.getByTestId('event-select').selectOption('saved:my-s3-put');
  assert.match(await page.getByTestId('event-json').inputValue(), /aws:s3/);
  await page.getByTestId('event-json').fill(JSON.stringify({ marker: 'invoke-' + marker }, null, 2));
  await page.getByTestId('invoke').click();
  await page.getByTestId('result').getByRole('heading', { name: 'Succeeded' }).waitFor();
  await page.waitForFunction((m) => document.querySelector('[data-testid=log-tail]')?.textContent.includes(m), 'invoke-' + marker);
  await shot(page, 'test');

  step("jump from the invocation to its log lines");
  await page.getByTestId('invocation-logs').click();
  const lines = page.getByTestId('log-lines');
  await lines.getByText('REPORT RequestId:').waitFor();
  const text = await lines.textContent();
  assert.ok(text.includes('got invoke-' + marker), text);
  assert.ok(text.includes(xss), 'log lines are text');
  assert.equal(text.match(/START RequestId:/g).length, 1, 'only this invocation');
  assert.equal(await lines.locator('img').count(), 0);

  step('follow the logs live while another tab invokes');
  await page.goto(console_ + '#/logs/hello-console');
  await page.getByLabel('Follow').check();
  await page.getByTestId('log-lines').getByText('got invoke-' + marker).waitFor();
  const other = await context.newPage();
  await other.goto(console_);
  const invoked = await consoleCall(other, 'POST', '/aws/lambda/2015-03-31/functions/hello-console/invocations', JSON.stringify({ marker: 'live-' + marker }));
  assert.equal(invoked.status, 200, invoked.text);
  await page.getByTestId('log-lines').getByText('got live-' + marker).waitFor();
  step('filter the logs');
  await page.getByLabel('Filter').fill('live-' + marker);
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForFunction((m) => {
    const t = document.querySelector('[data-testid=log-lines]')?.textContent || '';
    return t.includes('got live-' + m) && !t.includes('got invoke-' + m);
  }, marker);
  await page.getByLabel('Filter').fill('');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('log-lines').getByText('got invoke-' + marker).waitFor();
  await shot(page, 'logs');

  step('the functions list updates live when the store changes');
  await page.goto(console_ + '#/functions');
  await page.getByRole('link', { name: 'hello-console' }).waitFor();
  const created = await consoleCall(other, 'POST', '/aws/lambda/2015-03-31/functions', JSON.stringify({
    FunctionName: 'made-elsewhere', Runtime: 'python3.12', Handler: 'lambda_function.lambda_handler',
    Role: 'arn:aws:iam::000000000000:role/x', Code: { ZipFile: await page.evaluate(async () => {
      const { makeZip, base64 } = await import('/console/zip.js');
      return base64(makeZip([{ name: 'lambda_function.py', data: 'def lambda_handler(e, c):\n    return 1\n' }]));
    }) },
  }));
  assert.equal(created.status, 201, created.text);
  await page.getByRole('link', { name: 'made-elsewhere' }).waitFor();
  await shot(page, 'functions');

  step('change the configuration');
  await page.goto(console_ + '#/functions/hello-console/configuration');
  await page.getByTestId('memory').fill('256');
  await page.getByRole('button', { name: 'Save configuration' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  await page.goto(console_ + '#/functions/hello-console/overview');
  await page.getByText('256 MB').first().waitFor();

  step('a chart shows the invocations');
  await page.goto(console_ + '#/functions/hello-console/monitor');
  for (const deadline = Date.now() + long; ; await new Promise((r) => setTimeout(r, 1000))) {
    // page.waitForFunction would take the Promise of an async check for true.
    const m = await page.evaluate(async () => {
      const session = await (await fetch('/console/api/session')).json();
      return (await fetch('/console/api/metrics?function=hello-console', { headers: { 'X-Csrf-Token': session.csrfToken } })).json();
    });
    if ((m.invocations || []).reduce((a, b) => a + (b || 0), 0) >= 3) break;
    assert.ok(Date.now() < deadline, 'the samples never counted 3 invocations');
  }
  await page.reload(); // the chart reads the samples just seen
  const chart = page.locator('figure[data-chart="Invocations"]');
  await chart.locator('canvas').waitFor();
  await page.waitForFunction(() => {
    const u = document.querySelector('figure[data-chart="Invocations"] .u-legend');
    return !!u;
  });
  await shot(page, 'monitor');
  await page.goto(console_ + '#/metrics');
  await page.locator('figure[data-chart="Environments"] canvas').waitFor();
  await shot(page, 'node-metrics');

  step('keyboard only: sign in, reach a function, invoke it');
  const kb = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const kp = await kb.newPage();
  kp.setDefaultTimeout(long);
  await kp.goto(console_);
  await kp.getByLabel('Access key ID').waitFor();
  await kp.keyboard.type(keyID); // the field has autofocus
  await kp.keyboard.press('Tab');
  await kp.keyboard.type(secret);
  await kp.keyboard.press('Enter');
  await kp.getByRole('heading', { name: 'Functions' }).waitFor();
  const focusUntil = async (predicate, what) => {
    for (let i = 0; i < 60; i++) {
      await kp.keyboard.press('Tab');
      if (await kp.evaluate(predicate)) return;
    }
    throw new Error('Tab never reached ' + what);
  };
  await focusUntil(() => document.activeElement?.textContent === 'hello-console', 'the function link');
  await kp.keyboard.press('Enter');
  await kp.getByRole('heading', { name: 'hello-console' }).waitFor();
  await focusUntil(() => document.activeElement?.textContent === 'Test', 'the Test tab');
  await kp.keyboard.press('Enter');
  await focusUntil(() => document.activeElement?.dataset.testid === 'invoke', 'the Invoke button');
  const outline = await kp.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'the focused control shows its focus');
  await kp.keyboard.press('Enter');
  await kp.getByTestId('result').getByRole('heading', { name: 'Succeeded' }).waitFor();
  await kb.close();

  step('a 400 px window: menu instead of the sidebar, nothing wider than the window');
  const narrow = await browser.newContext({ viewport: { width: 400, height: 860 } });
  const np = await narrow.newPage();
  np.setDefaultTimeout(long);
  await signIn(np);
  await np.getByRole('heading', { name: 'Functions' }).waitFor();
  assert.equal(await np.locator('nav#nav').isVisible(), false);
  await np.getByRole('button', { name: 'Menu' }).focus();
  await np.keyboard.press('Enter');
  await np.locator('nav#nav').getByRole('link', { name: 'Logs' }).waitFor();
  await shot(np, 'narrow-menu');
  await np.locator('nav#nav').getByRole('link', { name: 'Functions' }).click();
  await np.goto(console_ + '#/functions/hello-console/test');
  await np.getByTestId('invoke').click();
  await np.getByTestId('result').getByRole('heading', { name: 'Succeeded' }).waitFor();
  const overflow = await np.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 400, `page is ${overflow} px wide in a 400 px window`);
  await shot(np, 'narrow');
  await narrow.close();

  step('signing out ends the session');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Access key ID').waitFor();
  const after = await consoleCall(page, 'GET', '/aws/lambda/2015-03-31/functions');
  assert.equal(after.status, 401);

  assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');
  console.log('console e2e: all steps passed');
} catch (err) {
  console.error('console e2e failed:', err);
  let n = 0;
  for (const ctx of browser.contexts()) {
    for (const p of ctx.pages()) {
      await p.screenshot({ path: path.join(shots, `failure-${++n}.png`) }).catch(() => {});
      console.error(`page ${n} at ${p.url()}:`, (await p.locator('body').innerText().catch(() => '')).slice(0, 2000));
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
