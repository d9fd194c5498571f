package e2e

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// maxZipped is the Lambda API's limit on a zip uploaded directly (50 MB).
const maxZipped = 52428800

// zerosDeflated returns n zero bytes deflated (raw DEFLATE, as in a zip) and
// their CRC-32. Results are cached: tests share them.
var zerosDeflated = sync.OnceValue(func() func(n int) ([]byte, uint32) {
	var mu sync.Mutex
	cache := map[int]struct {
		data []byte
		crc  uint32
	}{}
	return func(n int) ([]byte, uint32) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[n]; ok {
			return c.data, c.crc
		}
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		h := crc32.NewIEEE()
		chunk := make([]byte, 1<<20)
		for left := n; left > 0; left -= len(chunk) {
			part := chunk[:min(left, len(chunk))]
			w.Write(part)
			h.Write(part)
		}
		w.Close()
		cache[n] = struct {
			data []byte
			crc  uint32
		}{buf.Bytes(), h.Sum32()}
		return buf.Bytes(), h.Sum32()
	}
})

// bombEntry is one entry of zipBomb: size zero bytes, with the header
// claiming claimedSize (the truth when claimedSize is 0).
type bombEntry struct {
	name        string
	size        int
	claimedSize uint64
}

// zipBomb builds a small zip whose entries inflate to many zero bytes.
func zipBomb(t *testing.T, entries ...bombEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		data, crc := zerosDeflated()(e.size)
		hdr := &zip.FileHeader{
			Name:               e.name,
			Method:             zip.Deflate,
			CRC32:              crc,
			CompressedSize64:   uint64(len(data)),
			UncompressedSize64: uint64(e.size),
		}
		if e.claimedSize != 0 {
			hdr.UncompressedSize64 = e.claimedSize
		}
		hdr.SetMode(0o644)
		w, err := zw.CreateRaw(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// incompressibleZip is a zip of one stored entry of size random bytes.
func incompressibleZip(t *testing.T, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(data)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "blob.bin", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	zw.Close()
	return buf.Bytes()
}

// hostileZip is an upload the API must refuse.
type hostileZip struct {
	name    string
	data    []byte
	code    string // expected error code
	status  int
	message string // expected in the message, if set
}

func hostileZips(t *testing.T) []hostileZip {
	t.Helper()
	good := helloZip(t, "good")
	random := make([]byte, 4096)
	rand.NewChaCha8([32]byte{9}).Read(random)
	const ipv = "InvalidParameterValueException"
	return []hostileZip{
		{name: "random bytes", data: random, code: ipv, status: 400},
		{name: "zip signature then garbage", data: append([]byte("PK\x03\x04"), random[:512]...), code: ipv, status: 400},
		{name: "truncated zip", data: good[:len(good)/2], code: ipv, status: 400},
		{name: "truncated central directory", data: good[:len(good)-10], code: ipv, status: 400},
		{name: "dot-dot entry", data: zipEntries(t, zipEntry{Name: "app.py", Body: "x"}, zipEntry{Name: "../evil", Body: "pwned"}), code: ipv, status: 400},
		{name: "nested dot-dot entry", data: zipEntries(t, zipEntry{Name: "lib/../../evil", Body: "pwned"}), code: ipv, status: 400},
		{name: "backslash dot-dot entry", data: zipEntries(t, zipEntry{Name: `..\evil`, Body: "pwned"}), code: ipv, status: 400},
		{name: "absolute path", data: zipEntries(t, zipEntry{Name: "/etc/x", Body: "pwned"}), code: ipv, status: 400},
		{name: "symlink out", data: zipEntries(t,
			zipEntry{Name: "app.py", Body: "x"},
			zipEntry{Name: "link", Body: "../../etc/passwd", Mode: fs.ModeSymlink | 0o777}), code: ipv, status: 400},
		{name: "absolute symlink", data: zipEntries(t,
			zipEntry{Name: "link", Body: "/etc/passwd", Mode: fs.ModeSymlink | 0o777}), code: ipv, status: 400},
		{name: "symlink out through a symlink", data: zipEntries(t,
			zipEntry{Name: "sub/", Mode: fs.ModeDir | 0o755},
			zipEntry{Name: "sub/up", Body: "..", Mode: fs.ModeSymlink | 0o777},
			zipEntry{Name: "escape", Body: "sub/up/..", Mode: fs.ModeSymlink | 0o777}), code: ipv, status: 400},
		{name: "file written through a symlink", data: zipEntries(t,
			zipEntry{Name: "tmp", Body: "/tmp", Mode: fs.ModeSymlink | 0o777},
			zipEntry{Name: "tmp/evil", Body: "pwned"}), code: ipv, status: 400},
		{name: "zip bomb", data: zipBomb(t, bombEntry{name: "zeros", size: 300 << 20}),
			code: ipv, status: 400, message: "Unzipped size must be smaller than 262144000 bytes"},
		{name: "zip bomb with lying header", data: zipBomb(t, bombEntry{name: "zeros", size: 300 << 20, claimedSize: 1000}),
			code: ipv, status: 400},
		{name: "zip bomb in two entries", data: zipBomb(t, bombEntry{name: "a", size: 150 << 20}, bombEntry{name: "b", size: 150 << 20}),
			code: ipv, status: 400, message: "Unzipped size must be smaller than 262144000 bytes"},
		{name: "zip bomb in two entries with lying headers", data: zipBomb(t,
			bombEntry{name: "a", size: 150 << 20, claimedSize: 10}, bombEntry{name: "b", size: 150 << 20, claimedSize: 10}),
			code: ipv, status: 400},
		// A zip just over 50 MB still fits in a request…
		{name: "zipped size over 50 MB", data: incompressibleZip(t, maxZipped+64<<10),
			code: "RequestEntityTooLargeException", status: 413, message: "Zipped size must be smaller than 52428800 bytes"},
		// …a 51 MB one, base64 in JSON, is over AWS's request limit.
		{name: "request over 70167211 bytes", data: incompressibleZip(t, 51<<20),
			code: "RequestEntityTooLargeException", status: 413, message: "Request must be smaller than 70167211 bytes for the "},
	}
}

// TestHostileZips uploads hostile archives with CreateFunction and
// UpdateFunctionCode: each is refused, and none leaves anything behind, in
// the API or in the store.
func TestHostileZips(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	good := helloZip(t, "good")
	victim := asConfig(t, ts.createFunction(t, "victim", good))
	// An archive with a symlink that stays inside is fine.
	inside := zipEntries(t,
		zipEntry{Name: "lib/", Mode: fs.ModeDir | 0o755},
		zipEntry{Name: "lib/v1/", Mode: fs.ModeDir | 0o755},
		zipEntry{Name: "lib/v1/mod.py", Body: "X = 1\n"},
		zipEntry{Name: "lib/current", Body: "v1", Mode: fs.ModeSymlink | 0o777},
		zipEntry{Name: "app.py", Body: "from lib.current import mod\n"},
		zipEntry{Name: "bin/tool", Body: "#!/bin/sh\necho hi\n", Mode: 0o755},
	)
	ts.createFunction(t, "inside", inside)
	if got := ts.downloadCode(t, "inside"); !bytes.Equal(got, inside) {
		t.Error("the archive with an inside symlink does not download identical")
	}
	accepted := []string{codeDigest(good), codeDigest(inside)}

	hostile := hostileZips(t)
	for _, h := range hostile {
		// The test's own premises: bombs are small, the big one is big.
		if strings.HasPrefix(h.name, "zip bomb") && len(h.data) > 1<<20 {
			t.Fatalf("%s is %d bytes, not small", h.name, len(h.data))
		}
		if h.status == 413 && len(h.data) <= maxZipped {
			t.Fatalf("%s is only %d bytes", h.name, len(h.data))
		}
	}
	for i, h := range hostile {
		name := "hostile-" + string(rune('a'+i))
		t.Run(strings.ReplaceAll(h.name, " ", "_"), func(t *testing.T) {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String(name),
				Runtime:      types.RuntimePython312,
				Handler:      aws.String("app.handler"),
				Role:         aws.String(testRole),
				Code:         &types.FunctionCode{ZipFile: h.data},
			})
			checkHostileError(t, "CreateFunction", err, h)
			_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			var rnf *types.ResourceNotFoundException
			if !errors.As(err, &rnf) {
				t.Errorf("after a refused CreateFunction, GetFunction = %v, want ResourceNotFoundException", err)
			}

			_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("victim"), ZipFile: h.data})
			checkHostileError(t, "UpdateFunctionCode", err, h)
			_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("victim"), ZipFile: h.data, DryRun: true})
			checkHostileError(t, "UpdateFunctionCode(DryRun)", err, h)
			g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("victim")})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, g.Configuration), jsonOf(t, victim); a != b {
				t.Errorf("a refused UpdateFunctionCode changed the function:\n %s\nwas\n %s", a, b)
			}
			if got := ts.downloadCode(t, "victim"); !bytes.Equal(got, good) {
				t.Error("a refused UpdateFunctionCode changed the code")
			}
		})
	}

	// Valid archives that are refused for other reasons are not stored either.
	dryRun := helloZip(t, "dry run only")
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("victim"), ZipFile: dryRun, DryRun: true}); err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	if g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("victim")}); err != nil {
		t.Fatal(err)
	} else if a, b := jsonOf(t, g.Configuration), jsonOf(t, victim); a != b {
		t.Errorf("a valid DryRun UpdateFunctionCode changed the function:\n %s\nwas\n %s", a, b)
	}
	duplicate := helloZip(t, "duplicate create")
	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("victim"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: duplicate},
	})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("duplicate CreateFunction: got %v, want ResourceConflictException", err)
	}
	invalidConfig := helloZip(t, "invalid configuration")
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("bad-config"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: invalidConfig}, MemorySize: aws.Int32(1),
	})
	requireAPIError(t, err, "ValidationException", 400)

	list, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Functions) != 2 {
		t.Errorf("ListFunctions = %s, want only victim and inside", jsonOf(t, list.Functions))
	}
	settings, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := settings.AccountUsage.TotalCodeSize, int64(len(good)+len(inside)); got != want {
		t.Errorf("TotalCodeSize = %d, want %d (refused uploads and DryRuns must not count)", got, want)
	}

	// The store holds exactly the accepted archives.
	ts.Stop()
	digests, err := ts.InspectStore().CodeDigests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(digests)
	slices.Sort(accepted)
	if !slices.Equal(digests, accepted) {
		names := map[string]string{codeDigest(dryRun): "DryRun archive", codeDigest(duplicate): "duplicate create archive",
			codeDigest(invalidConfig): "archive of an invalid configuration"}
		for _, h := range hostile {
			names[codeDigest(h.data)] = h.name
		}
		for _, d := range digests {
			if !slices.Contains(accepted, d) {
				t.Errorf("the store holds %s (%s), which was refused", d, names[d])
			}
		}
		for _, d := range accepted {
			if !slices.Contains(digests, d) {
				t.Errorf("the store lacks accepted archive %s", d)
			}
		}
	}
}

func checkHostileError(t *testing.T, op string, err error, h hostileZip) {
	t.Helper()
	if err == nil {
		t.Errorf("%s accepted the %s", op, h.name)
		return
	}
	if h.code == "InvalidParameterValueException" {
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) {
			t.Errorf("%s: got %T %v, want *types.InvalidParameterValueException", op, err, err)
			return
		}
	}
	var msgs []string
	if h.message != "" {
		msgs = append(msgs, h.message)
	}
	requireAPIError(t, err, h.code, h.status, msgs...)
}

// TestRejectedUploadsLeaveNoTrace: a valid archive sent with a request that
// is refused for another reason (no such function, stale RevisionId,
// qualifier mismatch) must not be stored either ("a rejected upload leaves no
// trace").
func TestRejectedUploadsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	good := helloZip(t, "kept")
	ts.createFunction(t, "fn", good)

	refused := map[string][]byte{}
	toMissing := helloZip(t, "to a missing function")
	refused["UpdateFunctionCode of a missing function"] = toMissing
	_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("missing"), ZipFile: toMissing})
	requireAPIError(t, err, "ResourceNotFoundException", 404)

	stale := helloZip(t, "stale revision")
	refused["UpdateFunctionCode with a stale RevisionId"] = stale
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: stale, RevisionId: aws.String("stale")})
	requireAPIError(t, err, "PreconditionFailedException", 412)

	badName := helloZip(t, "bad name")
	refused["UpdateFunctionCode of an invalid name"] = badName
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("bad name"), ZipFile: badName})
	requireAPIError(t, err, "ValidationException", 400)

	if got := ts.downloadCode(t, "fn"); !bytes.Equal(got, good) {
		t.Error("refused updates changed the code")
	}

	ts.Stop()
	digests, err := ts.InspectStore().CodeDigests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for what, data := range refused {
		if slices.Contains(digests, codeDigest(data)) {
			t.Errorf("%s was refused, but its archive %s is in the store", what, codeDigest(data))
		}
	}
	if !slices.Contains(digests, codeDigest(good)) {
		t.Error("the function's archive is not in the store")
	}
}

// TestCodeIsContentAddressed: the same zip used by several functions is
// stored once.
func TestCodeIsContentAddressed(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	shared := helloZip(t, "shared")
	other := helloZip(t, "other")
	ts.createFunction(t, "one", shared)
	ts.createFunction(t, "two", shared)
	ts.createFunction(t, "three", other)
	if _, err := ts.Lambda().UpdateFunctionCode(t.Context(), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("three"), ZipFile: shared}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two", "three"} {
		if got := ts.downloadCode(t, name); !bytes.Equal(got, shared) {
			t.Errorf("%s: downloaded code differs", name)
		}
	}
	ts.Stop()
	digests, err := ts.InspectStore().CodeDigests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(digests, " "), codeDigest(shared)); n != 1 {
		t.Errorf("the shared archive is stored %d times (digests %v)", n, digests)
	}
}
