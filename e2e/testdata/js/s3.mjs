// Drives Lamina's S3 with @aws-sdk/client-s3 (path-style) and
// @aws-sdk/lib-storage; prints "ok" when every check passed.
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, HeadObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import assert from "node:assert/strict";

const s3 = new S3Client({ endpoint: process.argv[2], region: "us-east-1", forcePathStyle: true, maxAttempts: 1 });
await s3.send(new CreateBucketCommand({ Bucket: "jsb" }));
await s3.send(new PutObjectCommand({ Bucket: "jsb", Key: "a.txt", Body: "hello js" }));
// A stream body goes aws-chunked with a CRC32 trailer, even over http.
await s3.send(new PutObjectCommand({ Bucket: "jsb", Key: "stream.txt", ContentLength: 13,
  Body: Readable.from([Buffer.from("streamed "), Buffer.from("body")]) }));
const big = Buffer.alloc(12 << 20, 7);
await new Upload({ client: s3, params: { Bucket: "jsb", Key: "big.bin", Body: Readable.from([big]) }, partSize: 5 << 20 }).done();
for (const [key, want] of [["a.txt", "hello js"], ["stream.txt", "streamed body"]]) {
  const o = await s3.send(new GetObjectCommand({ Bucket: "jsb", Key: key }));
  assert.equal(await o.Body.transformToString(), want);
}
const h = await s3.send(new HeadObjectCommand({ Bucket: "jsb", Key: "big.bin" }));
assert.equal(h.ContentLength, big.length);
assert.match(h.ETag, /-3"$/);
const l = await s3.send(new ListObjectsV2Command({ Bucket: "jsb" }));
assert.deepEqual(l.Contents.map((c) => c.Key), ["a.txt", "big.bin", "stream.txt"]);
console.log("ok");
