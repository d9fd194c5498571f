package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/lamina-project/lamina/internal/store"
)

// s3Client returns an aws-sdk-go-v2 S3 client for ts. With virtualHost it
// addresses buckets as the SDK does by default with a custom endpoint
// (http://bucket.localhost:port/key); its HTTP client dials ts whatever
// the host, as a resolver of *.localhost would.
func (ts *testServer) s3Client(t *testing.T, virtualHost bool, mods ...func(*s3.Options)) *s3.Client {
	t.Helper()
	id, secret := ts.Credentials()
	_, port, _ := net.SplitHostPort(ts.addr)
	endpoint := ts.Endpoint()
	if virtualHost {
		endpoint = "http://localhost:" + port
	}
	dialer := &net.Dialer{}
	httpClient := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ts.addr)
		},
	}}
	return s3.New(s3.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  staticCredentials(id, secret),
		UsePathStyle: !virtualHost,
		HTTPClient:   httpClient,
	}, mods...)
}

// awsCLIResult runs the AWS CLI v2 against ts in dir and returns what it
// printed and its exit code, without failing on an error.
func awsCLIResult(t *testing.T, ts *testServer, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	const bin = "/usr/bin/aws"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("the AWS CLI v2 is not installed at %s (apt-get install awscli)", bin)
	}
	id, secret := ts.Credentials()
	home := t.TempDir()
	cmd := exec.Command(bin, append(args, "--endpoint-url", ts.Endpoint(), "--region", testRegion, "--output", "json")...)
	cmd.Dir = dir
	cmd.Env = append(hermeticEnv(), "HOME="+home, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// mustCLI runs the AWS CLI in dir and fails the test when it fails.
func mustCLI(t *testing.T, ts *testServer, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := awsCLIResult(t, ts, dir, args...)
	if code != 0 {
		t.Fatalf("aws %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// randomFile writes n random bytes to dir/name and returns them.
func randomFile(t *testing.T, dir, name string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// multipartETag is the ETag S3 gives an object uploaded in parts of
// partSize bytes: the MD5 of the parts' MD5s, and their count.
func multipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		s := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, s[:]...)
		n++
	}
	s := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(s[:]), n)
}

func quotedMD5(data []byte) string {
	s := md5.Sum(data)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

// TestS3WithAWSCLI drives the S3 service with the unmodified AWS CLI v2:
// mb, cp (a 50 MB file goes in 8 MiB parts), ranged get-object, sync, ls,
// rm, presign, rb, and S3's errors as the CLI shows them.
func TestS3WithAWSCLI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	dir := t.TempDir()
	mustCLI(t, ts, dir, "s3", "mb", "s3://cli-bucket")
	small := randomFile(t, dir, "small.txt", 1000)
	mustCLI(t, ts, dir, "s3", "cp", "small.txt", "s3://cli-bucket/docs/small.txt", "--no-progress")

	// 50 MB: the CLI uploads it in 8 MiB parts, and downloads it in ranges.
	big := randomFile(t, dir, "big.bin", 50<<20)
	mustCLI(t, ts, dir, "s3", "cp", "big.bin", "s3://cli-bucket/big.bin", "--no-progress")
	var head struct {
		ContentLength int64
		ETag          string
	}
	if err := json.Unmarshal([]byte(mustCLI(t, ts, dir, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "big.bin")), &head); err != nil {
		t.Fatal(err)
	}
	if want := multipartETag(big, 8<<20); head.ContentLength != int64(len(big)) || head.ETag != want {
		t.Errorf("head-object big.bin: %d bytes, ETag %s; want %d, %s", head.ContentLength, head.ETag, len(big), want)
	}
	mustCLI(t, ts, dir, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "big.bin", "--range", "bytes=30000000-30999999", "part.bin")
	if got, _ := os.ReadFile(filepath.Join(dir, "part.bin")); !bytes.Equal(got, big[30000000:31000000]) {
		t.Errorf("get-object --range bytes=30000000-30999999 returned %d bytes that differ from the file's", len(got))
	}
	mustCLI(t, ts, dir, "s3", "cp", "s3://cli-bucket/big.bin", "back.bin", "--no-progress")
	if got, _ := os.ReadFile(filepath.Join(dir, "back.bin")); !bytes.Equal(got, big) {
		t.Errorf("downloaded big.bin (%d bytes) differs from what was uploaded", len(got))
	}

	// sync uploads a tree, and only what changed the second time.
	tree := filepath.Join(dir, "tree")
	randomFile(t, tree, "a.txt", 10)
	randomFile(t, tree, "sub/b.txt", 20)
	randomFile(t, tree, "sub/deeper/c with space.txt", 30)
	if out := mustCLI(t, ts, dir, "s3", "sync", "tree", "s3://cli-bucket/tree", "--no-progress"); strings.Count(out, "upload:") != 3 {
		t.Errorf("first sync uploaded:\n%s\nwant 3 files", out)
	}
	randomFile(t, tree, "sub/b.txt", 21)
	if out := mustCLI(t, ts, dir, "s3", "sync", "tree", "s3://cli-bucket/tree", "--no-progress"); strings.Count(out, "upload:") != 1 {
		t.Errorf("second sync uploaded:\n%s\nwant only sub/b.txt", out)
	}
	ls := mustCLI(t, ts, dir, "s3", "ls", "s3://cli-bucket", "--recursive")
	for _, key := range []string{"docs/small.txt", "big.bin", "tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c with space.txt"} {
		if !strings.Contains(ls, key) {
			t.Errorf("ls --recursive lacks %s:\n%s", key, ls)
		}
	}
	if top := mustCLI(t, ts, dir, "s3", "ls", "s3://cli-bucket/"); !strings.Contains(top, "PRE tree/") || !strings.Contains(top, "PRE docs/") {
		t.Errorf("ls of the bucket's top shows no common prefixes:\n%s", top)
	}

	// presign: a plain GET reads the object until the URL expires.
	url := strings.TrimSpace(mustCLI(t, ts, dir, "s3", "presign", "s3://cli-bucket/docs/small.txt"))
	if status, body := httpGet(t, url); status != http.StatusOK || !bytes.Equal(body, small) {
		t.Errorf("GET presigned URL: %d, %d bytes; want 200 and the object", status, len(body))
	}
	short := strings.TrimSpace(mustCLI(t, ts, dir, "s3", "presign", "s3://cli-bucket/docs/small.txt", "--expires-in", "1"))
	time.Sleep(2 * time.Second)
	if status, body := httpGet(t, short); status != http.StatusForbidden || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
		t.Errorf("GET expired presigned URL: %d %s; want 403 AccessDenied", status, body)
	}

	// Errors in S3's shapes, as the CLI shows them.
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3", "rb", "s3://cli-bucket"); code == 0 || !strings.Contains(errOut, "BucketNotEmpty") {
		t.Errorf("rb of a bucket with objects: exit %d, %s; want BucketNotEmpty", code, errOut)
	}
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "nope", "x"); code == 0 || !strings.Contains(errOut, "NoSuchKey") {
		t.Errorf("get-object of a missing key: exit %d, %s; want NoSuchKey", code, errOut)
	}
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3", "ls", "s3://no-such-bucket"); code == 0 || !strings.Contains(errOut, "NoSuchBucket") {
		t.Errorf("ls of a missing bucket: exit %d, %s; want NoSuchBucket", code, errOut)
	}
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "docs/small.txt", "--range", "bytes=5000-", "x"); code == 0 || !strings.Contains(errOut, "InvalidRange") {
		t.Errorf("get-object past the end: exit %d, %s; want InvalidRange", code, errOut)
	}

	mustCLI(t, ts, dir, "s3", "rm", "s3://cli-bucket/docs/small.txt")
	if ls := mustCLI(t, ts, dir, "s3", "ls", "s3://cli-bucket", "--recursive"); strings.Contains(ls, "docs/small.txt") {
		t.Errorf("docs/small.txt still listed after rm:\n%s", ls)
	}
	mustCLI(t, ts, dir, "s3", "rm", "s3://cli-bucket", "--recursive")
	mustCLI(t, ts, dir, "s3", "rb", "s3://cli-bucket")
	if out := mustCLI(t, ts, dir, "s3api", "list-buckets"); strings.Contains(out, "cli-bucket") {
		t.Errorf("list-buckets after rb: %s", out)
	}
}

// requireS3Error requires err to be S3's code with status.
func requireS3Error(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || httpStatus(err) != status {
		t.Errorf("%s: %v; want %s (%d)", what, err, code, status)
	}
}

// TestS3WithGoSDK drives the S3 service with aws-sdk-go-v2 in
// virtual-host addressing (its default with a custom endpoint): the upload
// manager, ranges, metadata, listings with prefix, delimiter,
// continuation, start-after and max-keys, copies, batch deletes,
// multipart listings and abort, presigned URLs and S3's errors.
func TestS3WithGoSDK(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := t.Context()
	c := ts.s3Client(t, true)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("go-bucket")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	// us-east-1 answers the owner's re-creation with 200, as S3 does.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("go-bucket")}); err != nil {
		t.Errorf("CreateBucket again in us-east-1: %v", err)
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Not_Valid")})
	requireS3Error(t, "CreateBucket Not_Valid", err, "InvalidBucketName", 400)
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("go-bucket")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing-bucket")})
	requireS3Error(t, "HeadBucket of a missing bucket", err, "NotFound", 404)

	// The upload manager: 12 MiB in 5 MiB parts, in parallel.
	data := make([]byte, 12<<20)
	_, _ = rand.Read(data)
	up, err := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20 }).Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String("go-bucket"), Key: aws.String("data/big.bin"), Body: bytes.NewReader(data),
	})
	if err != nil {
		t.Fatalf("upload manager: %v", err)
	}
	if want := multipartETag(data, 5<<20); aws.ToString(up.ETag) != want {
		t.Errorf("upload manager ETag %s, want %s", aws.ToString(up.ETag), want)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("data/big.bin"), Range: aws.String("bytes=5242870-5242889")})
	if err != nil {
		t.Fatalf("GetObject with a range: %v", err)
	}
	part, _ := io.ReadAll(got.Body)
	if !bytes.Equal(part, data[5242870:5242890]) || aws.ToString(got.ContentRange) != fmt.Sprintf("bytes 5242870-5242889/%d", len(data)) {
		t.Errorf("ranged GetObject across two parts: %q (%s)", part, aws.ToString(got.ContentRange))
	}
	dl := manager.NewWriteAtBuffer(nil)
	if _, err := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 4 << 20 }).Download(ctx, dl,
		&s3.GetObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("data/big.bin")}); err != nil || !bytes.Equal(dl.Bytes(), data) {
		t.Errorf("download manager: %v (%d bytes, equal %v)", err, len(dl.Bytes()), bytes.Equal(dl.Bytes(), data))
	}

	// Metadata, headers, ETag and checksum of a single PUT.
	body := []byte("hello, objects")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("hello.txt"), Body: bytes.NewReader(body),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"colour": "blue"}, ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if aws.ToString(put.ETag) != quotedMD5(body) || aws.ToString(put.ChecksumCRC32C) == "" {
		t.Errorf("PutObject: ETag %s, CRC32C %q; want %s and a checksum", aws.ToString(put.ETag), aws.ToString(put.ChecksumCRC32C), quotedMD5(body))
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("hello.txt"), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if aws.ToString(head.ContentType) != "text/plain" || head.Metadata["colour"] != "blue" || aws.ToInt64(head.ContentLength) != int64(len(body)) ||
		aws.ToString(head.ChecksumCRC32C) != aws.ToString(put.ChecksumCRC32C) {
		t.Errorf("HeadObject: type %s, metadata %v, length %d, CRC32C %s", aws.ToString(head.ContentType), head.Metadata, aws.ToInt64(head.ContentLength), aws.ToString(head.ChecksumCRC32C))
	}

	// Listings: 3 keys under a/, 2 under b/, one at the top.
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1", "b/2", "top"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("list/" + k), Body: strings.NewReader(k)}); err != nil {
			t.Fatalf("PutObject list/%s: %v", k, err)
		}
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("go-bucket"), Prefix: aws.String("list/"), MaxKeys: aws.Int32(2)})
	for n := 0; pages.HasMorePages(); n++ {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2 page %d: %v", n, err)
		}
		if len(page.Contents) > 2 {
			t.Errorf("page %d has %d keys, MaxKeys 2", n, len(page.Contents))
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if want := []string{"list/a/1", "list/a/2", "list/a/3", "list/b/1", "list/b/2", "list/top"}; !slices.Equal(keys, want) {
		t.Errorf("ListObjectsV2 pages: %v, want %v", keys, want)
	}
	var prefixes []string
	keys = nil
	delimited := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("go-bucket"), Prefix: aws.String("list/"),
		Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	for delimited.HasMorePages() {
		page, err := delimited.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2 with a delimiter: %v", err)
		}
		for _, p := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if !slices.Equal(prefixes, []string{"list/a/", "list/b/"}) || !slices.Equal(keys, []string{"list/top"}) {
		t.Errorf("ListObjectsV2 with delimiter / one at a time: prefixes %v, keys %v", prefixes, keys)
	}
	after, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("go-bucket"), Prefix: aws.String("list/"), StartAfter: aws.String("list/b/1")})
	if err != nil || len(after.Contents) != 2 || aws.ToString(after.Contents[0].Key) != "list/b/2" {
		t.Errorf("ListObjectsV2 StartAfter list/b/1: %v %v", err, after)
	}
	v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("go-bucket"), Prefix: aws.String("list/"), Marker: aws.String("list/a/3"), MaxKeys: aws.Int32(2)})
	if err != nil || len(v1.Contents) != 2 || aws.ToString(v1.Contents[0].Key) != "list/b/1" || !aws.ToBool(v1.IsTruncated) {
		t.Errorf("ListObjects (v1) Marker list/a/3 MaxKeys 2: %v %+v", err, v1)
	}

	// Copy, and batch delete with a key that does not exist.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("copy of hello.txt"), CopySource: aws.String("go-bucket/hello.txt")})
	if err != nil || aws.ToString(cp.CopyObjectResult.ETag) != quotedMD5(body) {
		t.Errorf("CopyObject: %v %+v", err, cp)
	}
	copied, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("copy of hello.txt")})
	if err != nil || copied.Metadata["colour"] != "blue" {
		t.Errorf("the copy's metadata: %v %v", err, copied)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("hello.txt"), CopySource: aws.String("go-bucket/hello.txt")})
	requireS3Error(t, "CopyObject onto itself", err, "InvalidRequest", 400)
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("go-bucket"), Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{
		{Key: aws.String("list/a/1")}, {Key: aws.String("list/a/2")}, {Key: aws.String("never-was")}}}})
	if err != nil || len(del.Deleted) != 3 || len(del.Errors) != 0 {
		t.Errorf("DeleteObjects: %v %+v", err, del)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("list/a/1")})
	requireS3Error(t, "GetObject of a deleted key", err, "NoSuchKey", 404)

	// Multipart by hand: list uploads and parts, abort.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted"), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part one"))}); err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("go-bucket")})
	if err != nil || len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].UploadId) != aws.ToString(mp.UploadId) {
		t.Errorf("ListMultipartUploads: %v %+v", err, uploads)
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted"), UploadId: mp.UploadId})
	if err != nil || len(parts.Parts) != 1 || aws.ToInt64(parts.Parts[0].Size) != 8 {
		t.Errorf("ListParts: %v %+v", err, parts)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted"), UploadId: mp.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(2), ETag: aws.String(`"x"`)}}}})
	requireS3Error(t, "CompleteMultipartUpload with a part never uploaded", err, "InvalidPart", 400)
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted"), UploadId: mp.UploadId}); err != nil {
		t.Errorf("AbortMultipartUpload: %v", err)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("go-bucket"), Key: aws.String("aborted"), UploadId: mp.UploadId})
	requireS3Error(t, "ListParts of an aborted upload", err, "NoSuchUpload", 404)

	// Presigned GET and PUT.
	presign := s3.NewPresignClient(ts.s3Client(t, false))
	getURL, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("hello.txt")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if status, got := httpGet(t, getURL.URL); status != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("GET presigned: %d %q", status, got)
	}
	putURL, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("presigned put")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, putURL.URL, strings.NewReader("put through a URL"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("PUT presigned: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	// Errors.
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("go-bucket"), Key: aws.String("hello.txt"), Range: aws.String("bytes=100-")})
	requireS3Error(t, "GetObject past the end", err, "InvalidRange", 416)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("missing-bucket")})
	requireS3Error(t, "ListObjectsV2 of a missing bucket", err, "NoSuchBucket", 404)
	wrong := ts.s3Client(t, false, func(o *s3.Options) { o.Credentials = staticCredentials(testAccessKeyID, "not-the-secret") })
	if id, _ := ts.Credentials(); id == testAccessKeyID {
		_, err = wrong.ListBuckets(ctx, &s3.ListBucketsInput{})
		requireS3Error(t, "a request signed with the wrong secret", err, "SignatureDoesNotMatch", 403)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("go-bucket")})
	requireS3Error(t, "DeleteBucket of a bucket with objects", err, "BucketNotEmpty", 409)
}

// TestS3WithBoto3 drives the S3 service with boto3 (upload_file and
// download_file through s3transfer, generate_presigned_url in its default
// SigV2 form and in SigV4) when this host has it.
func TestS3WithBoto3(t *testing.T) {
	t.Parallel()
	python := filepath.Join(os.Getenv("HOME"), ".pyenv/versions/3.11.7/bin/python3.11")
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		t.Skipf("boto3 is not installed for %s: %v", python, err)
	}
	ts := startServer(t)
	dir := t.TempDir()
	randomFile(t, dir, "big.bin", 20<<20)
	script := `
import boto3, sys, urllib.request
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket="boto")
s3.upload_file("big.bin", "boto", "x/big.bin")
s3.download_file("boto", "x/big.bin", "back.bin")
s3.put_object(Bucket="boto", Key="k with space+plus.txt", Body=b"hi", Metadata={"color": "red"}, ContentType="text/plain")
o = s3.get_object(Bucket="boto", Key="k with space+plus.txt")
assert o["Body"].read() == b"hi" and o["Metadata"] == {"color": "red"} and o["ContentType"] == "text/plain", o
assert o.get("ChecksumCRC32"), "no CRC32 echoed"
assert s3.get_object(Bucket="boto", Key="x/big.bin", Range="bytes=10-19")["ContentRange"] == "bytes 10-19/20971520"
assert [c["Key"] for c in s3.list_objects_v2(Bucket="boto")["Contents"]] == ["k with space+plus.txt", "x/big.bin"]
assert s3.list_objects_v2(Bucket="boto", Delimiter="/")["CommonPrefixes"] == [{"Prefix": "x/"}]
for client in (s3, boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", config=Config(signature_version="s3v4"))):
    url = client.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "k with space+plus.txt"}, ExpiresIn=60)
    assert urllib.request.urlopen(url).read() == b"hi", url
d = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": "k with space+plus.txt"}, {"Key": "nope"}]})
assert len(d["Deleted"]) == 2, d
try:
    s3.head_object(Bucket="boto", Key="k with space+plus.txt")
    raise SystemExit("head_object of a deleted key succeeded")
except s3.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "404", e.response
print("ok")
`
	id, secret := ts.Credentials()
	cmd := exec.Command(python, "-c", script, ts.Endpoint())
	cmd.Dir = dir
	cmd.Env = append(hermeticEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "HOME="+dir,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("boto3 script: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "big.bin"))
	if got, _ := os.ReadFile(filepath.Join(dir, "back.bin")); !bytes.Equal(got, want) {
		t.Errorf("download_file returned %d bytes that differ from the upload", len(got))
	}
}

// TestS3WithJavaScriptSDK drives the S3 service with @aws-sdk/client-s3,
// which sends stream bodies aws-chunked with a CRC32 trailer even over
// plain HTTP, and @aws-sdk/lib-storage's multipart Upload. .ci/run
// installs them into e2e/testdata/js.
func TestS3WithJavaScriptSDK(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs("testdata/js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@aws-sdk/client-s3")); err != nil {
		t.Skipf("@aws-sdk/client-s3 is not installed in %s (npm install --prefix %s)", dir, dir)
	}
	ts := startServer(t)
	id, secret := ts.Credentials()
	cmd := exec.Command("/usr/bin/node", filepath.Join(dir, "s3.mjs"), ts.Endpoint())
	cmd.Dir = dir
	cmd.Env = append(hermeticEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "HOME="+t.TempDir(), "NODE_NO_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("node s3.mjs: %v\n%s", err, out)
	}
}

// seedHandler is the mission's example handler: it reads the bucket of
// the S3 event's first record.
const seedHandler = `import json


def lambda_handler(event, context):
    print(event)
    print(context.get_remaining_time_in_millis())
    print(context.memory_limit_in_mb)

    return {
        'statusCode': 200,
        'body': json.dumps(event['Records'][0]['s3']['bucket']['name'])
    }
`

// recorderHandler appends every event it gets to a host file, one JSON
// document a line (it runs in the process sandbox).
const recorderHandler = `import json, os


def handler(event, context):
    fd = os.open(os.environ["SEEN_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(event) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
`

// seenEvents reads a recorder's file: the S3 records it got.
func seenEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		var ev struct{ Records []map[string]any }
		if json.Unmarshal([]byte(line), &ev) == nil && len(ev.Records) > 0 {
			out = append(out, ev.Records...)
		}
	}
	return out
}

// waitSeen waits until path holds n records, and returns them.
func waitSeen(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(asyncPollTimeout)
	for {
		seen := seenEvents(t, path)
		if len(seen) >= n || time.Now().After(deadline) {
			return seen
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// objectOf returns record's s3.object.
func objectOf(t *testing.T, record map[string]any) map[string]any {
	t.Helper()
	return jsonField(t, jsonField(t, record, "s3"), "object")
}

// TestS3NotificationsInvokeFunctions deploys the seed handler from S3,
// subscribes it to a bucket's uploads with the AWS CLI and triggers it
// with aws s3 cp; a recorder function checks S3's event record shape for
// puts, copies, multipart completions and deletes, filters, and exactly
// one delivery per change.
func TestS3NotificationsInvokeFunctions(t *testing.T) {
	t.Parallel()
	seen := filepath.Join(t.TempDir(), "seen.jsonl")
	ts := startServer(t, withArgs("--sandbox", "process", "--async-time-scale", asyncTimeScale))
	ctx := t.Context()
	dir := t.TempDir()
	mustCLI(t, ts, dir, "s3", "mb", "s3://code")
	if err := os.WriteFile(filepath.Join(dir, "seed.zip"), zipFiles(t, map[string]string{"lambda_function.py": seedHandler}), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, ts, dir, "s3", "cp", "seed.zip", "s3://code/seed.zip", "--no-progress")

	// Code from S3, and Lambda's error when it is not there.
	_, err := ts.Lambda().CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("nope"), Role: aws.String(testRole),
		Runtime: "python3.12", Handler: aws.String("lambda_function.lambda_handler"),
		Code: &types.FunctionCode{S3Bucket: aws.String("code"), S3Key: aws.String("missing.zip")}})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "S3 Error Code: NoSuchKey")
	_, err = ts.Lambda().CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("nope"), Role: aws.String(testRole),
		Runtime: "python3.12", Handler: aws.String("lambda_function.lambda_handler"),
		Code: &types.FunctionCode{S3Bucket: aws.String("no-such-bucket"), S3Key: aws.String("seed.zip")}})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "S3 Error Code: NoSuchBucket")
	seed, err := ts.Lambda().CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("seed"), Role: aws.String(testRole),
		Runtime: "python3.12", Handler: aws.String("lambda_function.lambda_handler"),
		Code: &types.FunctionCode{S3Bucket: aws.String("code"), S3Key: aws.String("seed.zip")}})
	if err != nil {
		t.Fatalf("CreateFunction from S3: %v", err)
	}
	zipped, _ := os.ReadFile(filepath.Join(dir, "seed.zip"))
	if aws.ToString(seed.CodeSha256) != codeSha256(zipped) {
		t.Errorf("CodeSha256 %s, want the S3 object's %s", aws.ToString(seed.CodeSha256), codeSha256(zipped))
	}
	ts.createFunction(t, "recorder", zipFiles(t, map[string]string{"app.py": recorderHandler}),
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.handler") }, withEnvironment(map[string]string{"SEEN_FILE": seen}))

	mustCLI(t, ts, dir, "s3", "mb", "s3://photos")
	arn := func(name string) string {
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", testRegion, testAccountID, name)
	}
	config := fmt.Sprintf(`{"LambdaFunctionConfigurations":[
		{"Id":"seed-uploads","LambdaFunctionArn":"%s","Events":["s3:ObjectCreated:*"],
		 "Filter":{"Key":{"FilterRules":[{"Name":"prefix","Value":"uploads/"}]}}},
		{"Id":"record","LambdaFunctionArn":"%s","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"],
		 "Filter":{"Key":{"FilterRules":[{"Name":"prefix","Value":"rec/"},{"Name":"suffix","Value":".txt"}]}}}]}`, arn("seed"), arn("recorder"))
	// S3 may invoke a function only with its permission, checked when the
	// configuration is put.
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3api", "put-bucket-notification-configuration", "--bucket", "photos", "--notification-configuration", config); code == 0 ||
		!strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "Unable to validate the following destination configurations") {
		t.Errorf("a configuration whose functions S3 may not invoke: exit %d %s; want InvalidArgument", code, errOut)
	}
	for _, fn := range []string{"seed", "recorder"} {
		mustCLI(t, ts, dir, "lambda", "add-permission", "--function-name", fn, "--statement-id", "s3", "--action", "lambda:InvokeFunction",
			"--principal", "s3.amazonaws.com", "--source-arn", "arn:aws:s3:::photos", "--source-account", testAccountID)
	}
	mustCLI(t, ts, dir, "s3api", "put-bucket-notification-configuration", "--bucket", "photos", "--notification-configuration", config)
	var got struct {
		LambdaFunctionConfigurations []struct {
			ID                string `json:"Id"`
			LambdaFunctionArn string
			Events            []string
		}
	}
	if err := json.Unmarshal([]byte(mustCLI(t, ts, dir, "s3api", "get-bucket-notification-configuration", "--bucket", "photos")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.LambdaFunctionConfigurations) != 2 || got.LambdaFunctionConfigurations[1].LambdaFunctionArn != arn("recorder") {
		t.Errorf("get-bucket-notification-configuration: %+v", got)
	}
	bad := fmt.Sprintf(`{"LambdaFunctionConfigurations":[{"LambdaFunctionArn":"%s","Events":["s3:ObjectCreated:*"]}]}`, arn("does-not-exist"))
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3api", "put-bucket-notification-configuration", "--bucket", "photos", "--notification-configuration", bad); code == 0 ||
		!strings.Contains(errOut, "InvalidArgument") {
		t.Errorf("a configuration naming a missing function: exit %d %s; want InvalidArgument", code, errOut)
	}
	overlapping := fmt.Sprintf(`{"LambdaFunctionConfigurations":[{"LambdaFunctionArn":"%s","Events":["s3:ObjectCreated:*"]},{"LambdaFunctionArn":"%s","Events":["s3:ObjectCreated:Put"]}]}`, arn("seed"), arn("recorder"))
	if _, errOut, code := awsCLIResult(t, ts, dir, "s3api", "put-bucket-notification-configuration", "--bucket", "photos", "--notification-configuration", overlapping); code == 0 ||
		!strings.Contains(errOut, "overlap") {
		t.Errorf("overlapping configurations: exit %d %s; want InvalidArgument", code, errOut)
	}

	// The seed handler, triggered by aws s3 cp.
	randomFile(t, dir, "hello world.txt", 64)
	mustCLI(t, ts, dir, "s3", "cp", "hello world.txt", "s3://photos/uploads/hello world.txt", "--no-progress")
	events := ts.waitLogLines(t, "seed", "'key': 'uploads/hello+world.txt'")
	if text := messagesText(events); !strings.Contains(text, "'eventName': 'ObjectCreated:Put'") || !strings.Contains(text, "'name': 'photos'") {
		t.Errorf("the seed handler's log lacks the event:\n%s", text)
	}

	// The recorder: a put, a copy, a multipart completion, a delete, and
	// changes its filter leaves out.
	c := ts.s3Client(t, false)
	body := []byte("recorded body")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("rec/a b.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"rec/skipped.jpg", "other/x.txt"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("rec/copy.txt"), CopySource: aws.String("photos/rec/a b.txt")}); err != nil {
		t.Fatal(err)
	}
	large := make([]byte, 6<<20)
	if _, err := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20 }).Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String("photos"), Key: aws.String("rec/multi.txt"), Body: bytes.NewReader(large)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("rec/a b.txt")}); err != nil {
		t.Fatal(err)
	}
	records := waitSeen(t, seen, 4)
	time.Sleep(time.Second) // room for a delivery that should not happen
	records = seenEvents(t, seen)
	var names []string
	for _, r := range records {
		names = append(names, fmt.Sprintf("%s %s", r["eventName"], objectOf(t, r)["key"]))
	}
	slices.Sort(names)
	want := []string{"ObjectCreated:CompleteMultipartUpload rec/multi.txt", "ObjectCreated:Copy rec/copy.txt",
		"ObjectCreated:Put rec/a+b.txt", "ObjectRemoved:Delete rec/a+b.txt"}
	if !slices.Equal(names, want) {
		t.Fatalf("the recorder got %v, want each of %v once", names, want)
	}
	for _, r := range records {
		s3rec := jsonField(t, r, "s3")
		obj := objectOf(t, r)
		if r["eventVersion"] != "2.1" || r["eventSource"] != "aws:s3" || r["awsRegion"] != testRegion ||
			s3rec["configurationId"] != "record" || s3rec["s3SchemaVersion"] != "1.0" ||
			jsonField(t, s3rec, "bucket")["arn"] != "arn:aws:s3:::photos" || obj["sequencer"] == "" {
			t.Errorf("record %v lacks S3's fields", r)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", fmt.Sprint(r["eventTime"])); err != nil {
			t.Errorf("eventTime %v: %v", r["eventTime"], err)
		}
		switch r["eventName"] {
		case "ObjectRemoved:Delete":
			if _, has := obj["size"]; has {
				t.Errorf("a deletion's record has a size: %v", obj)
			}
		case "ObjectCreated:Put":
			if obj["size"] != float64(len(body)) || obj["eTag"] != strings.Trim(quotedMD5(body), `"`) {
				t.Errorf("a put's record: size %v, eTag %v; want %d, %s unquoted", obj["size"], obj["eTag"], len(body), quotedMD5(body))
			}
		case "ObjectCreated:CompleteMultipartUpload":
			if obj["size"] != float64(len(large)) || !strings.HasSuffix(fmt.Sprint(obj["eTag"]), "-2") {
				t.Errorf("a multipart completion's record: %v", obj)
			}
		}
	}
}

// TestS3NotificationsSurviveKill stores objects in a bucket whose
// notifications go to a function, SIGKILLs the server in the middle, and
// requires that every object whose PUT succeeded invokes the function
// after the restart.
func TestS3NotificationsSurviveKill(t *testing.T) {
	t.Parallel()
	seen := filepath.Join(t.TempDir(), "seen.jsonl")
	ts := startServer(t, withArgs("--sandbox", "process", "--async-time-scale", asyncTimeScale))
	ctx := t.Context()
	ts.createFunction(t, "recorder", zipFiles(t, map[string]string{"app.py": recorderHandler}),
		func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.handler") }, withEnvironment(map[string]string{"SEEN_FILE": seen}))
	c := ts.s3Client(t, false, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("burst")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("recorder"), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::burst")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("burst"),
		NotificationConfiguration: &s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			LambdaFunctionArn: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:recorder", testRegion, testAccountID)),
			Events:            []s3types.Event{"s3:ObjectCreated:*"}}}}}); err != nil {
		t.Fatal(err)
	}
	const total, senders = 400, 8
	var mu sync.Mutex
	stored := map[string]bool{}
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				select {
				case <-killed:
					return
				default:
				}
				key := "k" + strconv.Itoa(i)
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("burst"), Key: aws.String(key), Body: strings.NewReader(key)}); err == nil {
					mu.Lock()
					stored[key] = true
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(stored)
		mu.Unlock()
		if n >= total/2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ts.Kill()
	close(killed)
	wg.Wait()
	owed := countOwed(t, ts)
	t.Logf("killed with %d objects stored; %d changes still owed their notification in the store", len(stored), owed)

	ts.Restart()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := map[string]int{}
		for _, r := range seenEvents(t, seen) {
			got[fmt.Sprint(objectOf(t, r)["key"])]++
		}
		missing := 0
		for key := range stored {
			if got[key] == 0 {
				missing++
			}
		}
		if missing == 0 {
			twice := 0
			for _, n := range got {
				if n > 1 {
					twice++
				}
			}
			t.Logf("every stored object's notification ran; %d ran more than once", twice)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stored objects never invoked the function after the restart", missing, len(stored))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countOwed counts the object records of a stopped server that still owe
// notifications.
func countOwed(t *testing.T, ts *testServer) int {
	t.Helper()
	owed := 0
	// In a subtest, so that the store is closed again before a restart.
	t.Run("inspect", func(t *testing.T) {
		st := openStore(t, ts.DataDir())
		type record struct{ Owed []json.RawMessage }
		table, err := store.OpenTable[record](t.Context(), st, "lamina_s3_objects", "object")
		if err != nil {
			t.Fatal(err)
		}
		owed = len(table.List("", func(r *record) bool { return len(r.Owed) > 0 }))
	})
	return owed
}

// copierHandler copies the object whose creation invoked it into the
// bucket event["dest"] names, with boto3 and no endpoint configuration:
// the environment's credentials and AWS_ENDPOINT_URL are Lambda's way.
const copierHandler = `
import os, urllib.parse
import boto3

s3 = boto3.client("s3")

def handler(event, context):
    record = event["Records"][0]["s3"]
    key = urllib.parse.unquote_plus(record["object"]["key"])
    s3.copy_object(Bucket=os.environ["DEST"], Key="copy-of/" + key,
                   CopySource={"Bucket": record["bucket"]["name"], "Key": key})
    try:
        s3.create_bucket(Bucket="made-by-a-function")
        made = "allowed"
    except Exception as e:
        made = e.response["Error"]["Code"]
    s3.put_object(Bucket=os.environ["DEST"], Key="create-bucket-said", Body=made.encode())
`

// A function triggered by an upload copies the object to another bucket
// with unmodified boto3, through its environment's endpoint and
// credentials, and cannot create a bucket with them.
func TestS3FunctionCopiesTheObjectThatTriggeredIt(t *testing.T) {
	t.Parallel()
	runtime, sdkArgs := boto3Offered(t)
	ts := startServer(t, withArgs(sdkArgs...))
	ctx := t.Context()
	c := ts.s3Client(t, false)
	for _, b := range []string{"inbox", "copies"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	ts.createFunction(t, "copier", zipFiles(t, map[string]string{"app.py": copierHandler}), withRuntime(runtime),
		func(in *lambda.CreateFunctionInput) {
			in.Handler = aws.String("app.handler")
			in.Timeout = aws.Int32(30)
		},
		withEnvironment(map[string]string{"DEST": "copies"}))
	if _, err := ts.Lambda().AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("copier"), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::inbox")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("inbox"),
		NotificationConfiguration: &s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			LambdaFunctionArn: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:copier", testRegion, testAccountID)),
			Events:            []s3types.Event{"s3:ObjectCreated:*"}}}}}); err != nil {
		t.Fatal(err)
	}
	body := []byte("an upload worth copying")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String("a dir/photo 1.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	var copied []byte
	eventually(t, "the function to copy the object", func() error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("copies"), Key: aws.String("create-bucket-said")})
		if err != nil {
			return err
		}
		said, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(said) != "AccessDenied" && string(said) != "AccessDeniedException" {
			t.Errorf("CreateBucket with the function's credentials: %q, want it refused", said)
		}
		out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("copies"), Key: aws.String("copy-of/a dir/photo 1.txt")})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		copied, err = io.ReadAll(out.Body)
		return err
	})
	if !bytes.Equal(copied, body) {
		t.Errorf("the copy holds %q, want %q", copied, body)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("made-by-a-function")}); err == nil {
		t.Error("the function created a bucket")
	}
}

// UpdateFunctionCode and PublishLayerVersion take their code from S3 as
// CreateFunction does, with Lambda's error for a missing object; the
// function runs the new code with the layer's.
func TestS3CodeForUpdatesAndLayers(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := t.Context()
	c := ts.s3Client(t, false)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, zipped []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("artifacts"), Key: aws.String(key), Body: bytes.NewReader(zipped)}); err != nil {
			t.Fatal(err)
		}
	}
	layerZip := zipFiles(t, map[string]string{"python/greeting.py": "WORD = 'from a layer in S3'\n"})
	put("layer.zip", layerZip)
	layer, err := ts.Lambda().PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("greeting"),
		Content: &types.LayerVersionContentInput{S3Bucket: aws.String("artifacts"), S3Key: aws.String("layer.zip")}})
	if err != nil {
		t.Fatalf("PublishLayerVersion from S3: %v", err)
	}
	if aws.ToString(layer.Content.CodeSha256) != codeSha256(layerZip) {
		t.Errorf("the layer's CodeSha256 %s, want the S3 object's %s", aws.ToString(layer.Content.CodeSha256), codeSha256(layerZip))
	}
	_, err = ts.Lambda().PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("greeting"),
		Content: &types.LayerVersionContentInput{S3Bucket: aws.String("artifacts"), S3Key: aws.String("missing.zip")}})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "S3 Error Code: NoSuchKey")

	ts.createPy(t, "greeter", "echo")
	newCode := zipFiles(t, map[string]string{"app.py": "import greeting\ndef echo(event, context):\n    return greeting.WORD\n"})
	put("greeter-v2.zip", newCode)
	_, err = ts.Lambda().UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("greeter"),
		S3Bucket: aws.String("artifacts"), S3Key: aws.String("missing.zip")})
	requireAPIError(t, err, "InvalidParameterValueException", 400, "S3 Error Code: NoSuchKey")
	updated, err := ts.Lambda().UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("greeter"),
		S3Bucket: aws.String("artifacts"), S3Key: aws.String("greeter-v2.zip")})
	if err != nil {
		t.Fatalf("UpdateFunctionCode from S3: %v", err)
	}
	if aws.ToString(updated.CodeSha256) != codeSha256(newCode) {
		t.Errorf("CodeSha256 %s, want the S3 object's %s", aws.ToString(updated.CodeSha256), codeSha256(newCode))
	}
	ts.waitUpdated(t, "greeter")
	if _, err := ts.Lambda().UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("greeter"),
		Layers: []string{aws.ToString(layer.LayerVersionArn)}}); err != nil {
		t.Fatal(err)
	}
	ts.waitUpdated(t, "greeter")
	if got := string(ts.invokeOK(t, "greeter", `{}`).Payload); got != `"from a layer in S3"` {
		t.Errorf("the function from S3 with the layer from S3 answered %s", got)
	}
}
