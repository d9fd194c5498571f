// Lamina's managed Node.js runtime (nodejs18.x, nodejs20.x, nodejs22.x): a
// Runtime API (2018-06-01) client that loads the function's handler and
// serves its invocations with the semantics of AWS's own Node.js runtime,
// aws-lambda-nodejs-runtime-interface-client (RIC). Node built-ins only.
//
// Lamina's worker starts it as `node $LAMBDA_RUNTIME_DIR/index.mjs` with the
// working directory LAMBDA_TASK_ROOT, the handler in _HANDLER and the
// Runtime API at AWS_LAMBDA_RUNTIME_API. Everything it and the function log
// goes to stdout, and is flushed before each result is posted.
//
// Start-up (at the end of this file): patch the console, load the handler
// (a failure is posted to /init/error and the process exits with 129), then
// serve invocations one after another.
//
// It is one file on purpose: Node.js loads each ES module file for about
// half a millisecond, and this is on every cold start's path. The sections
// follow the RIC's files, named in each section's comment.

import fs from 'node:fs';
import http from 'node:http';
import nodeModule, { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { format, types } from 'node:util';

// ---------------------------------------------------------------------------
// Errors (src/Errors.js): the runtime's error types, and the shapes errors
// take on the Runtime API and in the log.
// ---------------------------------------------------------------------------

// The runtime's own errors. Their name (errorType) is "Runtime.<Class>".
class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}

// Reported when the event loop empties while an async handler's promise is
// still pending: nothing is left that could ever settle it.
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}

// A promise rejected with nobody to handle it. The message is the reason
// as a string; reason and promise stay enumerable, so the log shows them.
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}

for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

// intoError wraps anything thrown that is not an Error.
function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// An object from another realm (or a hand-made one) that looks like an Error.
function isErrorLike(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    obj.name &&
    typeof obj.message === 'string' &&
    obj.message &&
    typeof obj.stack === 'string' &&
    obj.stack
  );
}

// toRapidResponse is the body posted to /invocation/{id}/error and
// /init/error: {errorType, errorMessage, trace}. A thrown non-Error value
// becomes {errorType: typeof value, errorMessage: String(value), trace: []}.
// DEL characters are escaped because errorType also goes into an HTTP header.
function toRapidResponse(error) {
  try {
    if (types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return {
      errorType: typeof error,
      errorMessage: error.toString(),
      trace: [],
    };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// Errors (at any depth) are logged with their name, message, code, own
// enumerable properties and stack lines, which JSON.stringify would skip.
function withEnumerableProperties(value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const ret = Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code },
    value,
  );
  if (typeof value.stack === 'string') {
    ret.stack = value.stack.split('\n');
  }
  return ret;
}

// toFormatted is an error as the text log shows it: a tab, then JSON.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_key, value) => withEnumerableProperties(value));
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Logging (src/LogPatch.js)
// ---------------------------------------------------------------------------

// The console of a function: every console.trace/debug/info/log/warn/error
// (and console.fatal) call becomes one log line on stdout, as AWS's runtime
// writes it:
//
//   text: <ISO time>\t<request id>\t<LEVEL>\t<util.format(args)>
//   JSON: {"timestamp","level","requestId"[,"tenantId"],"message"[,"errorType","errorMessage","stackTrace"]}
//
// Newlines inside a line become \r, so a multi-line message stays one log
// event. AWS_LAMBDA_LOG_FORMAT=JSON selects JSON; AWS_LAMBDA_LOG_LEVEL drops
// lines below that level. Before the first invocation the request ID is
// "undefined" (text) or absent (JSON).

// The current request and tenant IDs live on the global object under the
// same symbols as in AWS's runtime, where tools may look for them.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');

function setCurrentRequestId(id) {
  globalThis[REQUEST_ID] = id;
}

function setCurrentTenantId(id) {
  globalThis[TENANT_ID] = id;
}

const LEVELS = {
  TRACE: 1,
  DEBUG: 2,
  INFO: 3,
  WARN: 4,
  ERROR: 5,
  FATAL: 6,
};

function writeLine(line) {
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function logText(level, message, ...params) {
  const time = new Date().toISOString();
  writeLine(`${time}\t${globalThis[REQUEST_ID]}\t${level}\t${format(message, ...params)}`);
}

// In JSON records an Error shows its type, message and stack lines.
function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function logJSON(level, ...messageParams) {
  const record = {
    timestamp: new Date().toISOString(),
    level,
    requestId: globalThis[REQUEST_ID],
  };
  const tenantId = globalThis[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) {
    record.tenantId = tenantId;
  }
  // A single argument is kept as a value (an object stays an object) unless
  // it cannot be serialised; several arguments are formatted into a string,
  // and the first Error among them is described at the top level.
  if (messageParams.length === 1) {
    record.message = messageParams[0];
    try {
      writeLine(JSON.stringify(record, jsonErrorReplacer));
      return;
    } catch {
      record.message = format(record.message);
      writeLine(JSON.stringify(record));
      return;
    }
  }
  record.message = format(...messageParams);
  const error = messageParams.find((param) => param instanceof Error);
  if (error) {
    record.errorType = error?.constructor?.name ?? 'UnknownError';
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  writeLine(JSON.stringify(record));
}

let jsonFormat = false;

// patchConsole replaces the console's logging methods. It runs once, before
// any user code.
function patchConsole() {
  jsonFormat = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const log = jsonFormat ? logJSON : logText;
  const minimum = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const method = (level) =>
    LEVELS[level] >= minimum ? (message, ...params) => log(level, message, ...params) : () => {};

  console.trace = method('TRACE');
  console.debug = method('DEBUG');
  console.info = method('INFO');
  console.log = console.info;
  console.warn = method('WARN');
  console.error = method('ERROR');
  console.fatal = method('FATAL');
}

// logError logs an error the runtime reports (an invocation's error, an
// uncaught exception), at level ERROR: in text as "<title> \t<JSON>", in JSON
// as the error itself.
function logError(title, err) {
  if (jsonFormat) {
    console.error(intoError(err));
  } else {
    console.error(title, toFormatted(intoError(err)));
  }
}

// flushOutput resolves once everything written to stdout and stderr so far
// has reached the pipes. A write to a full pipe is queued rather than
// written at once, and the worker attributes output to an invocation only
// until the runtime posts its result, so the runtime awaits this first.
function flushOutput() {
  return Promise.all(
    [process.stdout, process.stderr]
      .filter((stream) => stream.writableLength > 0 && !stream.destroyed)
      .map((stream) => new Promise((resolve) => stream.write('', resolve))),
  );
}

// ---------------------------------------------------------------------------
// Runtime API client (src/RAPIDClient.js)
// ---------------------------------------------------------------------------

// The client keeps its connections alive between requests. Node's agent
// unrefs an idle pooled socket, so the client never keeps the event loop
// alive by itself: the loop empties ('beforeExit') exactly when the function
// has no pending work, which callbackWaitsForEmptyEventLoop depends on. A
// request in flight (the long-poll for the next event) does keep the
// process alive.

const BASE = '/2018-06-01/runtime';

// errorTypeHeader is the Lambda-Runtime-Function-Error-Type header (or
// trailer) for an error type, or none if the type cannot be a header value
// (say, a user's error class with a non-Latin name): the error body says it
// anyway, and a header Node.js refuses would lose the whole post.
function errorTypeHeader(errorType) {
  try {
    http.validateHeaderValue('Lambda-Runtime-Function-Error-Type', errorType);
    return { 'Lambda-Runtime-Function-Error-Type': errorType };
  } catch {
    return {};
  }
}

// serialize is a result as JSON; undefined becomes null.
function serialize(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch {
    throw new Error('Unable to stringify response body');
  }
}

class RuntimeApiClient {
  constructor(hostPort) {
    const colon = hostPort.lastIndexOf(':');
    // An IPv6 address comes in brackets, which http.request does not take.
    this.hostname = hostPort.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(hostPort.slice(colon + 1));
    this.agent = new http.Agent({ keepAlive: true });
  }

  // nextInvocation waits for the next event: {bodyJson, headers}, with the
  // headers' names in lower case.
  async nextInvocation() {
    const res = await this.request('GET', `${BASE}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`Failed to get next invocation: HTTP ${res.status}: ${res.body}`);
    }
    return { bodyJson: res.body, headers: res.headers };
  }

  // postInvocationResponse posts a handler's result. Serialisation happens
  // before it returns, so an unserialisable result throws to the caller.
  postInvocationResponse(result, id) {
    return this.post(`${BASE}/invocation/${encodeURIComponent(id)}/response`, serialize(result));
  }

  postInvocationError(error, id) {
    return this.post(
      `${BASE}/invocation/${encodeURIComponent(id)}/error`,
      serialize(toRapidResponse(error)),
    );
  }

  // postInitError reports a failed initialisation; the runtime exits next.
  postInitError(error) {
    const body = toRapidResponse(error);
    return this.post(`${BASE}/init/error`, serialize(body), errorTypeHeader(body.errorType));
  }

  // post sends a result once the invocation's output has been flushed. Like
  // AWS's runtime it ignores the answer and any failure: a rejected result
  // (413, or a stale request ID) is the platform's to report, and a Runtime
  // API that has gone away shows at the next nextInvocation.
  async post(urlPath, body, headers = {}) {
    await flushOutput();
    await this.request('POST', urlPath, body, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    }).catch(() => {});
  }

  // request makes one HTTP request and reads the whole answer as text. A
  // request sent on a pooled connection that the server had just closed is
  // sent once more on a new one.
  request(method, urlPath, body, headers, retried = false) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { hostname: this.hostname, port: this.port, method, path: urlPath, headers, agent: this.agent },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', (err) => {
        if (req.reusedSocket && err.code === 'ECONNRESET' && !retried) {
          this.request(method, urlPath, body, headers, true).then(resolve, reject);
        } else {
          reject(err);
        }
      });
      req.end(body);
    });
  }
}

// ---------------------------------------------------------------------------
// Handler loading (src/UserFunction.js)
// ---------------------------------------------------------------------------

// The handler comes from a handler string such as "index.handler",
// "src/app.handler" or "lib/mod.nested.fn", resolved as AWS's runtime does:
//
// 1. A handler containing ".." is malformed.
// 2. The directory part is the module root; the rest splits at its first
//    dot into the module name and the property path of the function.
// 3. The module is, in the module root under the task root, the first of:
//    the file named exactly so (required); <module>.js, required unless the
//    nearest package.json says "type": "module"; <module>.js imported as an
//    ES module (only in that case); <module>.mjs (imported); <module>.cjs
//    (required); and last require.resolve(module) from the task root and
//    the module root, which also finds packages in node_modules and NODE_PATH.

// User modules are required from this file, which "Require stack" in a
// "Cannot find module" message names, as AWS's names its /var/runtime/index.mjs.
const require = createRequire(import.meta.url);

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  if (!fs.existsSync(file)) {
    return undefined;
  }
  searchNodePathForImports();
  return await import(pathToFileURL(file).href);
}

// ES modules, unlike require(), do not look in NODE_PATH, where layers
// (/opt/nodejs/node_modules) and the AWS SDK the node offers are: Lambda's
// runtime finds them for `import` too. So before the first ES module of
// the function is imported, when a NODE_PATH directory exists, resolve
// hooks are registered that look a bare specifier up in NODE_PATH's
// directories, in order, once Node's own resolution (the module's
// node_modules and those above it) has not found it. Registering starts
// Node's loader thread, about 25 ms of a cold start, so it is done only
// for ES modules and only when there is somewhere to look.
const nodePathHooks = `
import { pathToFileURL } from 'node:url';
let parents = [];
export function initialize(dirs) {
  // A parent URL inside each directory: resolution looks in its
  // node_modules, then in the directory itself.
  parents = dirs.map((dir) => pathToFileURL(dir + '/').href);
}
const relativeOrURL = /^(\\.{0,2}\\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/;
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || relativeOrURL.test(specifier)) {
      throw err;
    }
    for (const parentURL of parents) {
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {}
    }
    throw err;
  }
}
`;

let nodePathSearched = false;

function searchNodePathForImports() {
  if (nodePathSearched) {
    return;
  }
  nodePathSearched = true;
  const dirs = (process.env.NODE_PATH ?? '').split(':').filter((dir) => dir && fs.existsSync(dir));
  // module.register is in Node.js 18.19 and later.
  if (dirs.length > 0 && typeof nodeModule.register === 'function') {
    nodeModule.register('data:text/javascript,' + encodeURIComponent(nodePathHooks), { data: dirs });
  }
}

// The "type" of the package.json nearest to folder is "module". The search
// stops at a node_modules directory, and at an unreadable package.json.
function isInModulePackage(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) {
      return false;
    }
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (folder === '/') {
      return false;
    }
    folder = path.dirname(folder);
  }
}

async function loadModule(appRoot, moduleRoot, module) {
  const base = path.resolve(appRoot, moduleRoot, module);

  const extensionless = requireIfExists(base);
  if (extensionless) {
    return extensionless;
  }

  const esm = fs.existsSync(base + '.js') && isInModulePackage(path.dirname(base + '.js'));
  if (!esm) {
    const loaded = requireIfExists(base + '.js');
    if (loaded) {
      return loaded;
    }
  }

  const loaded =
    (esm && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (loaded) {
    return loaded;
  }

  // require() alone would resolve from the runtime's directory.
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

// loadHandler returns the handler function named by fullHandler, relative
// to appRoot. Its errors are Runtime.MalformedHandlerName,
// Runtime.ImportModuleError (a module not found, by the handler or by the
// modules it loads), Runtime.UserCodeSyntaxError, Runtime.HandlerNotFound,
// or whatever the module's own code throws.
async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(FUNCTION_EXPR);
  if (!match) {
    throw new MalformedHandlerName('Bad handler');
  }
  const [, module, functionPath] = match;

  let userModule;
  try {
    userModule = await loadModule(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new UserCodeSyntaxError(e);
    }
    if (e?.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(e);
    }
    throw e;
  }

  const handler = functionPath.split('.').reduce((object, key) => object && object[key], userModule);
  if (!handler) {
    throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new HandlerNotFound(`${fullHandler} is not a function`);
  }
  return handler;
}

// handlerIsAsync tells whether handler is an async function.
function handlerIsAsync(handler) {
  return handler.constructor?.name === 'AsyncFunction';
}

// ---------------------------------------------------------------------------
// Response streaming (src/ResponseStream.js, StreamingContext.js,
// HttpResponseStream.js)
// ---------------------------------------------------------------------------

// The global `awslambda` (streamifyResponse, HttpResponseStream) and the
// stream a streaming handler writes its response to, sent to the Runtime API
// as it is written.
//
// The response is one chunked POST to /invocation/{id}/response with
// Lambda-Runtime-Function-Response-Mode: streaming. An error after it has
// started goes into the trailers Lambda-Runtime-Function-Error-Type and
// Lambda-Runtime-Function-Error-Body (base64 of the error JSON).

// What streamifyResponse marks a handler with (symbols shared with AWS's
// runtime, so handlers wrapped by other tools are recognised too).
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

// HttpResponseStream.from(stream, {statusCode, headers, cookies}) makes a
// function URL response: the JSON prelude and 8 NUL bytes go before the body.
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadata = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

// installAwsLambdaGlobal defines globalThis.awslambda before user code
// loads, unless AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA is 1 or true.
function installAwsLambdaGlobal() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') {
    return;
  }
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

// streamingMetadata tells whether a handler streams its response, and the
// stream's highWaterMark if it was given one.
function streamingMetadata(handler) {
  const mark = handler[HANDLER_STREAMING];
  if (mark === undefined || mark === null || mark === false) {
    return { streaming: false, highWaterMark: undefined };
  }
  if (mark !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const highWaterMark = parseInt(handler[HANDLER_HIGHWATERMARK]);
  return { streaming: true, highWaterMark: isNaN(highWaterMark) ? undefined : highWaterMark };
}

// createResponseStream starts the streamed response of invocation id. It
// returns the stream handed to the handler, a promise that settles when the
// Runtime API has answered the POST, and fail(err), which ends the response
// with err in its trailers.
function createResponseStream(client, id, highWaterMark) {
  // A connection of its own: the socket's highWaterMark sets how much the
  // response may buffer before write() asks the handler to wait.
  const req = http.request({
    method: 'POST',
    path: `${BASE}/invocation/${encodeURIComponent(id)}/response`,
    headers: {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      Trailer: ['Lambda-Runtime-Function-Error-Type', 'Lambda-Runtime-Function-Error-Body'],
      'Content-Type': 'application/octet-stream',
    },
    createConnection: () => net.createConnection({ host: client.hostname, port: client.port, highWaterMark }),
  });

  const responseDone = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', (err) => {
      reject(err);
      stream.destroy();
    });
  });
  // The runtime awaits it only once the handler is done; a failure before
  // that must not count as unhandled.
  responseDone.catch(() => {});

  let started = false; // something was written; the headers are fixed
  let trailers;

  // The handler's stream forwards to the request. Write callbacks and
  // backpressure come from the request's socket.
  const stream = new Writable({
    highWaterMark,
    write: (chunk, encoding, callback) => req.write(chunk, encoding, callback),
    final: (callback) => {
      flushOutput().then(() => {
        if (trailers) {
          req.addTrailers(trailers);
        }
        req.end(callback);
      });
    },
  });
  // A broken connection shows as a rejected responseDone; writes after it
  // fail through their callbacks, and need not also crash the process.
  stream.on('error', () => {});

  // The function URL prelude goes first, before the first chunk or the end.
  const start = () => {
    if (!started) {
      started = true;
      stream._onBeforeFirstWrite?.((chunk) => Writable.prototype.write.call(stream, chunk));
    }
  };
  stream.write = (chunk, encoding, callback) => {
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      chunk = JSON.stringify(chunk);
    }
    start();
    return Writable.prototype.write.call(stream, chunk, encoding, callback);
  };
  stream.end = (...args) => {
    start();
    return Writable.prototype.end.apply(stream, args);
  };
  stream.setContentType = (contentType) => {
    if (started) {
      throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    }
    req.setHeader('Content-Type', contentType);
  };

  const fail = (err) => {
    const error = toRapidResponse(err);
    trailers = {
      ...errorTypeHeader(error.errorType),
      'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(error)).toString('base64'),
    };
    if (!stream.writableEnded && !stream.destroyed) {
      stream.end();
    }
    return new Promise((resolve) => {
      if (stream.writableFinished || stream.destroyed) {
        resolve();
      } else {
        stream.once('finish', resolve);
        stream.once('close', resolve);
      }
    });
  };

  return { responseStream: stream, responseDone, fail };
}

// ---------------------------------------------------------------------------
// Invoke loop (src/Runtime.js, CallbackContext.js, InvokeContext.js,
// BeforeExitListener.js)
// ---------------------------------------------------------------------------

// Fetch an event, call the handler with the event, a context and a
// callback, post what it produces, repeat. As in AWS's runtime:
//
// - An async handler, or one returning a promise, is done when the promise
//   settles; the result is posted at once.
// - Otherwise the handler is done when it calls callback(err, result) or
//   context.succeed/fail/done. After callback() the result is posted when
//   the event loop is empty, unless context.callbackWaitsForEmptyEventLoop
//   was set to false; succeed/fail/done post at once. Only the first of
//   these calls counts.
// - If the event loop empties before any of that, a non-async handler's
//   result is null, and an async handler (whose promise can no longer
//   settle) fails with Runtime.NodeJsExit.
// - An uncaught exception or unhandled rejection fails the invocation and
//   ends the process.

// The one 'beforeExit' listener, kept on the global object under the same
// symbol as in AWS's runtime. process.on('beforeExit') calls it each time
// the event loop empties; the invoke in progress sets what it does.
const BEFORE_EXIT = Symbol.for('aws.lambda.beforeExit');
const noop = () => {};

const beforeExit = {
  invoke: () => globalThis[BEFORE_EXIT](),
  reset: () => (globalThis[BEFORE_EXIT] = noop),
  set: (listener) => (globalThis[BEFORE_EXIT] = listener),
};

// Invocation headers of GET /next (lower case, as Node gives them).
const HEADER = {
  clientContext: 'lambda-runtime-client-context',
  cognitoIdentity: 'lambda-runtime-cognito-identity',
  arn: 'lambda-runtime-invoked-function-arn',
  requestId: 'lambda-runtime-aws-request-id',
  deadlineMs: 'lambda-runtime-deadline-ms',
  traceId: 'lambda-runtime-trace-id',
  tenantId: 'lambda-runtime-aws-tenant-id',
};

function parseJSONHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

// InvokeContext holds what one invocation's headers say.
class InvokeContext {
  constructor(headers) {
    this.headers = headers;
    this.invokeId = headers[HEADER.requestId];
    if (!this.invokeId) {
      throw new Error('invocation id is missing or invalid');
    }
  }

  // updateLoggingContext makes log lines carry this invocation's IDs.
  updateLoggingContext() {
    setCurrentRequestId(this.invokeId);
    setCurrentTenantId(this.headers[HEADER.tenantId]);
  }

  // attachEnvironmentData completes the context object given to the
  // handler, and sets _X_AMZN_TRACE_ID for this invocation. It throws if the
  // client context or identity is not JSON.
  attachEnvironmentData(context) {
    const headers = this.headers;
    if (headers[HEADER.traceId]) {
      process.env._X_AMZN_TRACE_ID = headers[HEADER.traceId];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    const deadline = Number(headers[HEADER.deadlineMs]);
    return Object.assign(context, {
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parseJSONHeader(headers[HEADER.clientContext], 'ClientContext'),
      identity: parseJSONHeader(headers[HEADER.cognitoIdentity], 'CognitoIdentity'),
      invokedFunctionArn: headers[HEADER.arn],
      awsRequestId: this.invokeId,
      tenantId: headers[HEADER.tenantId],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    });
  }
}

// buildCallbackContext makes the handler's callback and the part of the
// context with callbackWaitsForEmptyEventLoop and succeed/fail/done. It
// returns [callback, context, markCompleted]; markCompleted makes any later
// result be ignored.
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, id).then(scheduleNext);
  };

  let completed = false;
  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    client.postInvocationResponse(result, id).then(scheduleNext);
  };

  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      beforeExit.set(() => setImmediate(() => complete(result)));
    }
  };

  const done = (err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err);
    } else {
      complete(result);
    }
  };

  // Only the first call of callback, succeed, fail or done counts. A call
  // that throws (an unserialisable result) does not count.
  let finished = false;
  const firstCallOnly =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };

  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: firstCallOnly((result) => done(null, result)),
    // fail() without an error still fails, with the string 'handled'.
    fail: firstCallOnly((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: firstCallOnly(done),
  };
  return [firstCallOnly(callback), context, () => (completed = true)];
}

function isPromise(value) {
  return value && typeof value.then === 'function';
}

class Runtime {
  // errorCallbacks.{uncaughtException,unhandledRejection}(error) report an
  // error that escaped the handler; they change with each invocation.
  constructor(client, handler, metadata, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.metadata = metadata;
    this.errorCallbacks = errorCallbacks;
  }

  // scheduleIteration starts the next iteration on the next turn of the
  // event loop. Failures of the loop itself (the Runtime API gone) are
  // reported as an uncaught exception, which ends the process.
  scheduleIteration() {
    setImmediate(() => {
      const once = this.metadata.streaming ? this.handleOnceStreaming() : this.handleOnceNonStreaming();
      once.catch((err) => {
        console.log(`Unexpected Top Level Error: ${err.toString()}`);
        this.errorCallbacks.uncaughtException(err);
      });
    });
  }

  async handleOnceNonStreaming() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();

    const [callback, context, markCompleted] = buildCallbackContext(
      this.client,
      invokeContext.invokeId,
      () => this.scheduleIteration(),
    );

    try {
      this.setErrorCallbacks(invokeContext.invokeId);
      this.setDefaultExitListener(invokeContext.invokeId, markCompleted);
      const result = this.handler(JSON.parse(bodyJson), invokeContext.attachEnvironmentData(context), callback);
      if (isPromise(result)) {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  // A streaming handler is called as handler(event, responseStream,
  // context) and must return a promise. The invocation ends with the stream;
  // the next event is fetched once the event loop is empty, unless
  // context.callbackWaitsForEmptyEventLoop was set to false.
  async handleOnceStreaming() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();
    const id = invokeContext.invokeId;

    let waitForEmptyEventLoop = true;
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
    };
    const { responseStream, responseDone, fail } = createResponseStream(this.client, id, this.metadata.highWaterMark);
    const scheduleNext = () => {
      beforeExit.reset();
      if (!waitForEmptyEventLoop) {
        this.scheduleIteration();
      } else {
        beforeExit.set(() => setImmediate(() => this.scheduleIteration()));
      }
    };
    const failInvocation = (err) => {
      logError('Invoke Error', err);
      fail(err).then(scheduleNext);
    };

    try {
      this.setErrorCallbacks(id);
      beforeExit.set(() => this.scheduleIteration());
      const ctx = invokeContext.attachEnvironmentData(context);
      const result = this.handler(JSON.parse(bodyJson), responseStream, ctx);
      if (!isPromise(result)) {
        failInvocation('Streaming does not support non-async handlers.');
        return;
      }
      if ((await result) !== undefined) {
        console.warn('Streaming handlers ignore return values.');
      }
      await responseDone;
      if (!responseStream.writableFinished) {
        failInvocation('Response stream is not finished.');
        return;
      }
      scheduleNext();
    } catch (err) {
      failInvocation(err);
    }
  }

  // From now on, an uncaught exception or unhandled rejection fails this
  // invocation, then ends the process.
  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) => {
      this.client.postInvocationError(error, id).then(() => process.exit(129));
    };
    this.errorCallbacks.unhandledRejection = (error) => {
      this.client.postInvocationError(error, id).then(() => process.exit(128));
    };
  }

  // The event loop emptied before the handler produced a result: see the
  // section comment.
  setDefaultExitListener(id, markCompleted) {
    beforeExit.set(() => {
      beforeExit.reset();
      markCompleted();
      if (this.metadata.isAsync) {
        const error = new NodeJsExit();
        logError('Invoke Error', error);
        this.client.postInvocationError(error, id).then(() => this.scheduleIteration());
      } else {
        this.client.postInvocationResponse(null, id).then(() => this.scheduleIteration());
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Start-up (src/index.mjs)
// ---------------------------------------------------------------------------

// AWS's runtime warns at start-up about handlers that take a callback
// (three parameters, not async), whose support ends with Node.js 24.
function warnIfCallbackHandler(metadata) {
  if (
    process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined &&
    metadata.argsNum === 3 &&
    !metadata.isAsync &&
    !metadata.streaming
  ) {
    console.warn(
      'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will need to update this function to use an async handler to use Node.js 24 or later. For more information and to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
    );
  }
}

// A runtime started ahead of its function (_LAMINA_ASSIGNMENT_FD set, see
// internal/sandbox/prestart.go) waits here, Node and this module loaded,
// until the worker hands it a function: one JSON object {"env": [...],
// "cwd": ...} on that descriptor, then its end. The environment is replaced
// as a whole, so the function sees exactly what a fresh start would have
// given it.
function awaitAssignment() {
  const fd = process.env._LAMINA_ASSIGNMENT_FD;
  if (fd === undefined) {
    return;
  }
  const assignment = JSON.parse(fs.readFileSync(Number(fd), 'utf8'));
  fs.closeSync(Number(fd));
  for (const name of Object.keys(process.env)) {
    delete process.env[name];
  }
  for (const v of assignment.env) {
    const i = v.indexOf('=');
    process.env[v.slice(0, i)] = v.slice(i + 1);
  }
  process.chdir(assignment.cwd);
}

awaitAssignment();
patchConsole();
const client = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API);

// What happens to an error that escapes user code: until the first
// invocation it fails the initialisation; Runtime replaces these so that it
// then fails the invocation in progress. Either way the process exits.
const errorCallbacks = {
  uncaughtException: (error) => client.postInitError(error).then(() => process.exit(129)),
  unhandledRejection: (error) => client.postInitError(error).then(() => process.exit(128)),
};

process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  errorCallbacks.uncaughtException(error);
});

process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  errorCallbacks.unhandledRejection(error);
});

beforeExit.reset();
process.on('beforeExit', beforeExit.invoke);

try {
  installAwsLambdaGlobal();
  const handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(), process.env._HANDLER ?? '');
  const metadata = {
    ...streamingMetadata(handler),
    isAsync: handlerIsAsync(handler),
    argsNum: handler.length,
  };
  warnIfCallbackHandler(metadata);
  new Runtime(client, handler, metadata, errorCallbacks).scheduleIteration();
} catch (err) {
  // Reported as AWS's runtime reports it: as an uncaught exception.
  logError('Uncaught Exception', err);
  errorCallbacks.uncaughtException(err);
}
