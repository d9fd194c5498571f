// Templates of Lambda's standard events, as AWS's console offers them, and
// the test events a user saved (in this browser's local storage, per
// function).

const now = () => new Date().toISOString();

/** templates are the standard events by name; each call makes a fresh one. */
export const templates = {
  'hello-world': () => ({ key1: 'value1', key2: 'value2', key3: 'value3' }),
  's3-put': () => ({
    Records: [{
      eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventTime: now(), eventName: 'ObjectCreated:Put',
      userIdentity: { principalId: 'EXAMPLE' }, requestParameters: { sourceIPAddress: '127.0.0.1' },
      responseElements: { 'x-amz-request-id': 'EXAMPLE123456789', 'x-amz-id-2': 'EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH' },
      s3: {
        s3SchemaVersion: '1.0', configurationId: 'testConfigRule',
        bucket: { name: 'example-bucket', ownerIdentity: { principalId: 'EXAMPLE' }, arn: 'arn:aws:s3:::example-bucket' },
        object: { key: 'test/key', size: 1024, eTag: '0123456789abcdef0123456789abcdef', sequencer: '0A1B2C3D4E5F678901' },
      },
    }],
  }),
  'sns': () => ({
    Records: [{
      EventSource: 'aws:sns', EventVersion: '1.0',
      EventSubscriptionArn: 'arn:aws:sns:us-east-1:000000000000:example-topic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55',
      Sns: {
        Type: 'Notification', MessageId: '95df01b4-ee98-5cb9-9903-4c221d41eb5e', TopicArn: 'arn:aws:sns:us-east-1:000000000000:example-topic',
        Subject: 'example subject', Message: 'example message', Timestamp: now(), SignatureVersion: '1',
        Signature: 'EXAMPLE', SigningCertUrl: 'EXAMPLE', UnsubscribeUrl: 'EXAMPLE',
        MessageAttributes: { Test: { Type: 'String', Value: 'TestString' } },
      },
    }],
  }),
  'sqs': () => ({
    Records: [{
      messageId: '19dd0b57-b21e-4ac1-bd88-01bbb068cb78', receiptHandle: 'MessageReceiptHandle', body: 'Hello from SQS!',
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: '000000000000', ApproximateFirstReceiveTimestamp: String(Date.now()) },
      messageAttributes: {}, md5OfBody: '7b270e59b47ff90a553787216d55d91d', eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:example-queue', awsRegion: 'us-east-1',
    }],
  }),
  'apigateway-http-api-v2': () => ({
    version: '2.0', routeKey: '$default', rawPath: '/path/to/resource', rawQueryString: 'parameter1=value1',
    cookies: ['cookie1=value1'], headers: { 'content-type': 'application/json', host: 'example.execute-api.us-east-1.localhost' },
    queryStringParameters: { parameter1: 'value1' },
    requestContext: {
      accountId: '000000000000', apiId: 'api-id', domainName: 'example.execute-api.us-east-1.localhost', domainPrefix: 'example',
      http: { method: 'POST', path: '/path/to/resource', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'agent' },
      requestId: 'id', routeKey: '$default', stage: '$default', time: '12/Mar/2020:19:03:58 +0000', timeEpoch: Date.now(),
    },
    body: '{"hello":"world"}', isBase64Encoded: false,
  }),
  'eventbridge-schedule': () => ({
    version: '0', id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa', 'detail-type': 'Scheduled Event', source: 'aws.events',
    account: '000000000000', time: now(), region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:rule/my-schedule'], detail: {},
  }),
};

const key = (fn) => 'lamina.testEvents.' + fn;

/** savedEvents returns the events saved for function fn, {name: json}. */
export function savedEvents(fn) {
  try { return JSON.parse(localStorage.getItem(key(fn)) || '{}'); } catch { return {}; }
}

/** saveEvent keeps an event for function fn under name. */
export function saveEvent(fn, name, json) {
  const all = savedEvents(fn);
  all[name] = json;
  localStorage.setItem(key(fn), JSON.stringify(all));
}

/** deleteEvent forgets a saved event. */
export function deleteEvent(fn, name) {
  const all = savedEvents(fn);
  delete all[name];
  localStorage.setItem(key(fn), JSON.stringify(all));
}
