// Drives Lamina's SQS with @aws-sdk/client-sqs (which speaks SQS's JSON
// protocol): queues, attributes, send/receive/delete, batches, visibility,
// FIFO ordering and deduplication; prints "ok" when every check passed.
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, GetQueueAttributesCommand, SetQueueAttributesCommand,
  SendMessageCommand, SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand, DeleteMessageBatchCommand,
  ChangeMessageVisibilityCommand, PurgeQueueCommand, DeleteQueueCommand, QueueDoesNotExist,
} from "@aws-sdk/client-sqs";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

const sqs = new SQSClient({ endpoint: process.argv[2], region: "us-east-1", maxAttempts: 1 });
const md5 = (s) => createHash("md5").update(s).digest("hex");

// A standard queue and its attributes.
const { QueueUrl: url } = await sqs.send(new CreateQueueCommand({ QueueName: "js-queue", Attributes: { VisibilityTimeout: "5", DelaySeconds: "0" } }));
assert.match(url, /\/000000000000\/js-queue$/);
assert.equal((await sqs.send(new GetQueueUrlCommand({ QueueName: "js-queue" }))).QueueUrl, url);
assert.ok((await sqs.send(new ListQueuesCommand({ QueueNamePrefix: "js-" }))).QueueUrls.includes(url));
await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { MessageRetentionPeriod: "3600", ReceiveMessageWaitTimeSeconds: "1" } }));
const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }))).Attributes;
assert.equal(attrs.VisibilityTimeout, "5");
assert.equal(attrs.MessageRetentionPeriod, "3600");
assert.equal(attrs.ReceiveMessageWaitTimeSeconds, "1");
assert.equal(attrs.QueueArn, "arn:aws:sqs:us-east-1:000000000000:js-queue");

// Send with message attributes, receive, check, change visibility, delete.
const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "hello js",
  MessageAttributes: { kind: { DataType: "String", StringValue: "greeting" }, blob: { DataType: "Binary", BinaryValue: new Uint8Array([1, 2, 3]) } } }));
assert.equal(sent.MD5OfMessageBody, md5("hello js"));
let r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 2,
  MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["All"] }));
assert.equal(r.Messages.length, 1);
let m = r.Messages[0];
assert.equal(m.MessageId, sent.MessageId);
assert.equal(m.Body, "hello js");
assert.equal(m.MD5OfBody, md5("hello js"));
assert.equal(m.MessageAttributes.kind.StringValue, "greeting");
assert.deepEqual([...m.MessageAttributes.blob.BinaryValue], [1, 2, 3]);
assert.equal(m.Attributes.ApproximateReceiveCount, "1");
await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 2, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }));
assert.equal(r.Messages[0].Attributes.ApproximateReceiveCount, "2");
await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: r.Messages[0].ReceiptHandle }));
assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }))).Messages, undefined);

// Batches, and a delayed message that is not visible at once.
const batch = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [
  { Id: "a", MessageBody: "one" }, { Id: "b", MessageBody: "two" }, { Id: "c", MessageBody: "later", DelaySeconds: 60 }] }));
assert.equal(batch.Successful.length, 3);
assert.deepEqual(batch.Failed ?? [], []);
const got = [];
for (let i = 0; i < 5 && got.length < 2; i++) {
  const rr = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  got.push(...(rr.Messages ?? []));
}
assert.deepEqual(got.map((x) => x.Body).sort(), ["one", "two"]);
const del = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url,
  Entries: got.map((x, i) => ({ Id: String(i), ReceiptHandle: x.ReceiptHandle })).concat([{ Id: "bad", ReceiptHandle: "nonsense" }]) }));
assert.equal(del.Successful.length, 2);
assert.equal(del.Failed.length, 1);
assert.equal(del.Failed[0].Id, "bad");
const counts = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessagesDelayed"] }))).Attributes;
assert.equal(counts.ApproximateNumberOfMessagesDelayed, "1");
await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));

// A FIFO queue: order within a group, deduplication by id and by content.
const { QueueUrl: fifo } = await sqs.send(new CreateQueueCommand({ QueueName: "js-queue.fifo", Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" } }));
for (let i = 0; i < 5; i++) {
  await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: `m${i}`, MessageGroupId: "g" }));
}
const dup = await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "m0", MessageGroupId: "g" }));
const dupByID1 = await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "x", MessageGroupId: "g", MessageDeduplicationId: "d" }));
const dupByID2 = await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "y", MessageGroupId: "g", MessageDeduplicationId: "d" }));
assert.equal(dupByID2.MessageId, dupByID1.MessageId);
assert.ok(dup.MessageId);
const order = [];
for (let i = 0; i < 10 && order.length < 6; i++) {
  const rr = await sqs.send(new ReceiveMessageCommand({ QueueUrl: fifo, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
    MessageSystemAttributeNames: ["MessageGroupId", "SequenceNumber"] }));
  for (const x of rr.Messages ?? []) {
    assert.equal(x.Attributes.MessageGroupId, "g");
    order.push(x.Body);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: fifo, ReceiptHandle: x.ReceiptHandle }));
  }
}
assert.deepEqual(order, ["m0", "m1", "m2", "m3", "m4", "x"]);
await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "no group" })), (e) => e.name === "MissingParameter" || e.name === "InvalidParameterValue");

// Deleted queues are gone, with SQS's error.
await sqs.send(new DeleteQueueCommand({ QueueUrl: fifo }));
await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: "js-queue" })), (e) => e instanceof QueueDoesNotExist);
console.log("ok");
