// The console's calls: its own operations under /console/api, and the
// Lambda, Logs, EventBridge, SQS, S3 and Kinesis APIs through
// /console/api/aws/SERVICE, which the server signs for the session's key.
// Every failure is an ApiError with the API's error code and message.

let csrfToken = '';

/** setCsrfToken sets the token every call carries. */
export function setCsrfToken(token) { csrfToken = token; }

/** ApiError is a failed call: its HTTP status, AWS error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let message = res.statusText;
  let code = res.headers.get('X-Amzn-ErrorType') || 'Error';
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    message = body.message || body.Message || message;
    if (body.__type) code = body.__type.split('#').pop();
  } catch {
    // S3 and the query protocol answer errors in XML.
    const doc = text && parseXML(text);
    const xmlCode = doc && first(doc, 'Code');
    if (xmlCode) {
      code = xmlCode;
      message = first(doc, 'Message') || message;
    }
  }
  return new ApiError(res.status, code, message);
}

/** parseXML parses an API's XML answer (S3's, the query protocol's). */
export function parseXML(text) {
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  return doc.querySelector('parsererror') ? null : doc;
}

/** first is the text of the first element named name under node, or ''. */
export function first(node, name) {
  const el = node.getElementsByTagName(name)[0];
  return el ? el.textContent : '';
}

/** children are the direct child elements of node named name. */
export function children(node, name) {
  return [...node.children].filter((c) => c.localName === name);
}

/** call sends a request to the console's API; raw returns the Response. */
export async function call(method, path, { body, headers = {}, raw = false, signal } = {}) {
  const res = await fetch('/console/api' + path, {
    method, body, signal, credentials: 'same-origin', cache: 'no-store',
    headers: { ...headers, 'X-Csrf-Token': csrfToken },
  });
  if (!res.ok) throw await failure(res);
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** lambda calls an operation of the Lambda REST API. */
export function lambda(method, path, body, headers = {}) {
  return call(method, '/aws/lambda' + path, {
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

function json11(service, target) {
  return (op, body = {}) => call('POST', `/aws/${service}/`, {
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target + op },
  });
}

/** logs calls an operation of the CloudWatch Logs API. */
export const logs = json11('logs', 'Logs_20140328.');
/** events calls an operation of the EventBridge API. */
export const events = json11('events', 'AWSEvents.');
/** kinesis calls an operation of the Kinesis API. */
export const kinesis = json11('kinesis', 'Kinesis_20131202.');

/** sqs calls an operation of the SQS API (its JSON protocol). */
export function sqs(op, body = {}) {
  return call('POST', '/aws/sqs/', {
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.' + op },
  });
}

/**
 * query calls an operation of a query-protocol API (SNS) with its
 * parameters in the URL, and returns the answer's XML document.
 */
export async function query(service, version, action, params = {}) {
  const q = new URLSearchParams({ Action: action, Version: version, ...params });
  const res = await call('GET', `/aws/${service}/?${q}`, { raw: true });
  return parseXML(await res.text());
}

/** s3Path is the path of a bucket, or of an object (its key escaped per segment). */
export const s3Path = (bucket, key) => '/' + encodeURIComponent(bucket) + (key === undefined ? '' : '/' + key.split('/').map(encodeURIComponent).join('/'));

/** s3 makes an S3 REST call; it returns the Response. */
export function s3(method, path, { body, headers } = {}) {
  return call(method, '/aws/s3' + path, { body, headers, raw: true });
}

/** s3XML makes an S3 REST call and returns its XML document. */
export async function s3XML(path) {
  const res = await s3('GET', path);
  return parseXML(await res.text());
}

/** fn is the path of a function's resource. */
export const fn = (name) => '/2015-03-31/functions/' + encodeURIComponent(name);

/** listAll follows a Lambda list's NextMarker. */
export async function listAll(path, key) {
  const out = [];
  let marker = '';
  for (let page = 0; page < 100; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await lambda('GET', path + (marker ? `${sep}Marker=${encodeURIComponent(marker)}` : ''));
    out.push(...(res[key] || []));
    marker = res.NextMarker;
    if (!marker) break;
  }
  return out;
}

/**
 * invoke runs a function synchronously with its log tail, and returns the
 * payload (text), the function error, the executed version, the request id
 * and the decoded log tail.
 */
export async function invoke(name, qualifier, payload) {
  const q = qualifier ? `?Qualifier=${encodeURIComponent(qualifier)}` : '';
  const res = await call('POST', '/aws/lambda' + fn(name) + '/invocations' + q, {
    body: payload, raw: true, headers: { 'Content-Type': 'application/json', 'X-Amz-Log-Type': 'Tail' },
  });
  const tail = res.headers.get('X-Amz-Log-Result');
  let log = '';
  if (tail) {
    const bytes = Uint8Array.from(atob(tail), (c) => c.charCodeAt(0));
    log = new TextDecoder().decode(bytes);
  }
  return {
    payload: await res.text(),
    functionError: res.headers.get('X-Amz-Function-Error') || '',
    version: res.headers.get('X-Amz-Executed-Version') || '',
    requestId: res.headers.get('x-amzn-RequestId') || '',
    log,
  };
}

/** parseReport reads the figures of a REPORT log line, or null. */
export function parseReport(log, requestId) {
  const lines = log.split('\n').filter((l) => l.startsWith('REPORT RequestId:'));
  const line = lines.find((l) => !requestId || l.includes(requestId)) || lines[lines.length - 1];
  if (!line) return null;
  const figure = (name) => {
    const m = line.match(new RegExp(name + ':\\s*([0-9.]+)\\s*(ms|MB)'));
    return m ? Number(m[1]) : null;
  };
  const id = line.match(/RequestId:\s*([0-9a-f-]+)/i);
  return {
    requestId: id ? id[1] : '',
    duration: figure('Duration'), billed: figure('Billed Duration'), memorySize: figure('Memory Size'),
    maxMemory: figure('Max Memory Used'), init: figure('Init Duration'),
  };
}

/**
 * watchChanges calls onChange({function, version}) for every change of a
 * function record, and onChange(null) when changes were missed, until the
 * returned function is called. It reconnects after a failure, waiting
 * longer each time (up to 30 s).
 */
export function watchChanges(onChange) {
  const ctl = new AbortController();
  let wait = 1000;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const res = await call('GET', '/changes', { raw: true, signal: ctl.signal });
        wait = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: (.*)$/m.exec(block);
            const data = /^data: (.*)$/m.exec(block);
            if (!event) continue;
            if (event[1] === 'resync') onChange(null);
            else if (event[1] === 'function' && data) onChange(JSON.parse(data[1]));
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return;
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 30000);
      onChange(null); // the stream was down: read everything again
    }
  })();
  return () => ctl.abort();
}
