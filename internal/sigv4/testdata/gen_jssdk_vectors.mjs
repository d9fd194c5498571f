// Regenerates jssdk_vectors.json, the AWS SDK for JavaScript v3 test vectors
// of sigv4_test.go.
//
// Run from this directory with Node.js, after installing the SDK somewhere
// on NODE_PATH or in a node_modules folder above this one:
//
//     npm install @aws-sdk/client-lambda @smithy/signature-v4 @aws-crypto/sha256-js
//     node gen_jssdk_vectors.mjs > jssdk_vectors.json
//
// Each vector is a request as the SDK would put it on the wire (request
// line, headers, body), signed by the SDK at a fixed clock. Nothing is sent:
// a request handler captures the signed request and answers 200 {}.
// The User-Agent header, which the SDK does not sign, is left out. The Go tests
// replay the requests over TCP, so Node.js is not needed to run them.

import { createRequire } from "node:module";
import { Readable } from "node:stream";

const require = createRequire(import.meta.url);
const { LambdaClient, InvokeCommand, ListFunctionsCommand, GetFunctionCommand } = require("@aws-sdk/client-lambda");
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");

const SIGNING_TIME = Date.UTC(2026, 2, 4, 5, 6, 7);
const ACCESS_KEY = "AKIDJSSDKEXAMPLE";
const SECRET_KEY = "jssdk/Secret+Key/EXAMPLEKEY0123456789";
const SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLE//jssdk+token==";

// Every date the SDK creates without arguments is the signing time.
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length === 0 ? [SIGNING_TIME] : args));
  }
  static now() {
    return SIGNING_TIME;
  }
};

const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");

function escapeQuery(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function vector(name, service, request) {
  const query = Object.entries(request.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => escapeQuery(k) + "=" + escapeQuery(x)))
    .join("&");
  const headers = Object.entries(request.headers).filter(([k]) => k.toLowerCase() !== "user-agent");
  let body = request.body ?? "";
  if (typeof body === "string") body = Buffer.from(body);
  return {
    name,
    service,
    region: "us-east-1",
    accessKeyID: ACCESS_KEY,
    secretKey: SECRET_KEY,
    signingTime: amzDate,
    method: request.method,
    target: request.path + (query ? "?" + query : ""),
    headers,
    bodyBase64: Buffer.from(body).toString("base64"),
  };
}

function client(sessionToken) {
  const captured = [];
  const lambda = new LambdaClient({
    region: "us-east-1",
    endpoint: "http://localhost:9000",
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, sessionToken },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request) => {
        captured.push(request);
        return { response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.from("{}")]) } };
      },
    },
  });
  return { lambda, captured };
}

const vectors = [];

let { lambda, captured } = client();
await lambda.send(
  new InvokeCommand({
    FunctionName: "arn:aws:lambda:us-east-1:000000000000:function:foo",
    Qualifier: "live",
    InvocationType: "RequestResponse",
    ClientContext: Buffer.from('{"custom": {"k": "v"}}').toString("base64"),
    Payload: Buffer.from('{"hello": "world  with  spaces"}'),
  }),
);
vectors.push(vector("lambda Invoke full ARN", "lambda", captured.at(-1)));

await lambda.send(
  new ListFunctionsCommand({ Marker: "next page+token/with:special$chars", MaxItems: 5, FunctionVersion: "ALL" }),
);
vectors.push(vector("lambda ListFunctions special characters", "lambda", captured.at(-1)));

({ lambda, captured } = client(SESSION_TOKEN));
await lambda.send(new GetFunctionCommand({ FunctionName: "arn:aws:lambda:us-east-1:000000000000:function:foo:1" }));
vectors.push(vector("lambda GetFunction session token", "lambda", captured.at(-1)));

// The SDK's signer removes empty, "." and ".." path segments before signing,
// unlike aws-sdk-go-v2; this request exercises that.
const signer = new SignatureV4({
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  region: "us-east-1",
  service: "lambda",
  sha256: Sha256,
});
const raw = await signer.sign({
  method: "GET",
  protocol: "http:",
  hostname: "localhost",
  port: 9000,
  path: "/2015-03-31/functions/./foo//configuration/../policy/",
  query: { "a b": ["2", "1"], tilde: "~x" },
  headers: { host: "localhost:9000", "x-custom": "  padded   value  " },
});
vectors.push(vector("raw SignatureV4 dot segments", "lambda", raw));

process.stdout.write(JSON.stringify({ generator: "@aws-sdk/client-lambda " + require("@aws-sdk/client-lambda/package.json").version, vectors }, null, 2) + "\n");
