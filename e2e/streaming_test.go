package e2e

// Response streaming (issue 18, item 2): InvokeWithResponseStream's event
// stream as aws-sdk-go-v2 reads it, and function URLs in RESPONSE_STREAM
// mode, with the Node runtime's awslambda.streamifyResponse and
// HttpResponseStream. The handler writes its first chunk, then waits until
// the test creates a gate file, which the test does only after it has read
// that chunk: a response that were buffered would never show the first
// chunk, and the test would fail at the function's timeout. The functions
// run in process sandboxes, which share the host's file system with the
// test, so that the gate file is something the test controls.

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// streamApp streams what its event asks for. "gate" names a file (under the
// GATES directory) to wait for between two chunks; "size" asks for that
// many bytes in 1 MiB chunks; "fail" throws after the first chunk. A
// function URL event (rawPath /<gate>) gets an HTTP prelude.
const streamApp = `import fs from 'node:fs';

const waitFor = async (path) => {
  while (!fs.existsSync(path)) await new Promise((r) => setTimeout(r, 5));
};

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  let gate = event.gate;
  if (event.rawPath !== undefined) {
    gate = event.rawPath.slice(1);
    if (gate === 'big') event.size = 22020096;
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' }, cookies: ['a=b'] });
  } else {
    responseStream.setContentType('text/plain');
  }
  if (event.size) {
    const mib = Buffer.alloc(1 << 20, 'x');
    for (let sent = 0; sent < event.size; sent += mib.length) {
      if (!responseStream.write(mib)) await new Promise((r) => responseStream.once('drain', r));
    }
    responseStream.end();
    return;
  }
  responseStream.write('chunk-1;');
  if (event.fail) throw new Error('failed mid-stream');
  await waitFor(process.env.GATES + '/' + gate);
  console.log('gate ' + gate + ' opened');
  responseStream.write('chunk-2;');
  responseStream.end();
});

export const buffered = async (event) => ({ buffered: true });
`

func createStreamFunction(t *testing.T, ts *testServer, name, handler, gates string) {
	t.Helper()
	ts.createFunction(t, name, zipFiles(t, map[string]string{"index.mjs": streamApp}), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String(handler)
		in.Timeout = aws.Int32(30)
		in.MemorySize = aws.Int32(256)
		in.Environment = &types.Environment{Variables: map[string]string{"GATES": gates}}
	})
}

// streamEvents reads an InvokeWithResponseStream answer to its end: the
// chunks, and the InvokeComplete event. onChunk is called with each chunk
// as it comes.
func streamEvents(t *testing.T, out *lambda.InvokeWithResponseStreamOutput, onChunk func([]byte)) ([]byte, *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var body []byte
	var complete *types.InvokeWithResponseStreamCompleteEvent
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			body = append(body, v.Value.Payload...)
			if onChunk != nil {
				onChunk(v.Value.Payload)
			}
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			complete = &v.Value
		default:
			t.Fatalf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
	if complete == nil {
		t.Fatal("the event stream ended without InvokeComplete")
	}
	return body, complete
}

func TestInvokeWithResponseStream(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	gates := t.TempDir()
	createStreamFunction(t, ts, "streamer", "index.handler", gates)
	createStreamFunction(t, ts, "bufferer", "index.buffered", gates)
	c := ts.Lambda()

	t.Run("chunks arrive as they are written", func(t *testing.T) {
		out, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("streamer"), Payload: []byte(`{"gate":"sdk"}`), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ExecutedVersion) != "$LATEST" || out.StatusCode != http.StatusOK ||
			aws.ToString(out.ResponseStreamContentType) != "application/vnd.amazon.eventstream" {
			t.Errorf("ExecutedVersion %q, StatusCode %d, ResponseStreamContentType %q", aws.ToString(out.ExecutedVersion), out.StatusCode, aws.ToString(out.ResponseStreamContentType))
		}
		var seen []string
		body, complete := streamEvents(t, out, func(chunk []byte) {
			seen = append(seen, string(chunk))
			if string(chunk) == "chunk-1;" { // only now may the handler write chunk 2
				if err := os.WriteFile(filepath.Join(gates, "sdk"), nil, 0o644); err != nil {
					t.Error(err)
				}
			}
		})
		if string(body) != "chunk-1;chunk-2;" || len(seen) != 2 {
			t.Errorf("chunks %q, body %q", seen, body)
		}
		if complete.ErrorCode != nil || complete.ErrorDetails != nil {
			t.Errorf("InvokeComplete has an error: %s / %s", aws.ToString(complete.ErrorCode), aws.ToString(complete.ErrorDetails))
		}
		logs, _ := base64.StdEncoding.DecodeString(aws.ToString(complete.LogResult))
		if !strings.Contains(string(logs), "gate sdk opened") || !strings.Contains(string(logs), "REPORT RequestId:") {
			t.Errorf("LogResult: %s", logs)
		}
	})

	t.Run("an error mid-stream ends it in InvokeComplete", func(t *testing.T) {
		out, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("streamer"), Payload: []byte(`{"fail":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		body, complete := streamEvents(t, out, nil)
		if string(body) != "chunk-1;" || aws.ToString(complete.ErrorCode) != "Error" ||
			aws.ToString(complete.ErrorDetails) != "failed mid-stream" {
			t.Errorf("body %q, ErrorCode %q, ErrorDetails %q", body, aws.ToString(complete.ErrorCode), aws.ToString(complete.ErrorDetails))
		}
	})

	t.Run("a buffered handler's response is one chunk", func(t *testing.T) {
		out, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("bufferer")})
		if err != nil {
			t.Fatal(err)
		}
		body, complete := streamEvents(t, out, nil)
		if string(body) != `{"buffered":true}` || complete.ErrorCode != nil {
			t.Errorf("body %q, InvokeComplete %+v", body, complete)
		}
	})

	t.Run("a response over 20 MiB is cut there", func(t *testing.T) {
		out, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("streamer"), Payload: []byte(`{"size":22020096}`)})
		if err != nil {
			t.Fatal(err)
		}
		body, complete := streamEvents(t, out, nil)
		if len(body) != 20<<20 || aws.ToString(complete.ErrorCode) != "Function.ResponseSizeTooLarge" {
			t.Errorf("%d bytes, ErrorCode %q", len(body), aws.ToString(complete.ErrorCode))
		}
	})

	t.Run("errors before the stream have AWS's shape", func(t *testing.T) {
		_, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("nobody")})
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
		out, err := c.InvokeWithResponseStream(t.Context(), &lambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("streamer"), InvocationType: types.ResponseStreamingInvocationTypeDryRun})
		if err != nil || out.StatusCode != http.StatusNoContent {
			t.Errorf("DryRun: %v", err)
		}
	})
}

func TestFunctionURLResponseStream(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	gates := t.TempDir()
	createStreamFunction(t, ts, "url-streamer", "index.handler", gates)
	u, err := ts.Lambda().CreateFunctionUrlConfig(t.Context(), &lambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("url-streamer"), AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeResponseStream})
	if err != nil {
		t.Fatal(err)
	}
	allowPublicURL(t, ts.Lambda(), "url-streamer", "")
	host := urlID(t, aws.ToString(u.FunctionUrl)) + ".lambda-url.us-east-1.localhost"

	t.Run("chunks arrive as they are written", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URLEndpoint()+"/url", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Streamed") != "yes" || resp.Header.Get("Content-Type") != "text/plain" ||
			resp.Header.Get("Set-Cookie") != "a=b" || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("status %d, header %v, transfer encoding %v", resp.StatusCode, resp.Header, resp.TransferEncoding)
		}
		r := bufio.NewReader(resp.Body)
		first := make([]byte, len("chunk-1;"))
		if _, err := io.ReadFull(r, first); err != nil || string(first) != "chunk-1;" {
			t.Fatalf("first chunk %q: %v", first, err)
		}
		if err := os.WriteFile(filepath.Join(gates, "url"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "chunk-2;" {
			t.Errorf("rest %q: %v", rest, err)
		}
	})

	t.Run("a response over 20 MiB is cut there", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URLEndpoint()+"/big", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		// The limit counts the response stream, prelude (~100 bytes) included.
		if !errors.Is(err, io.ErrUnexpectedEOF) || n > 20<<20 || n < 20<<20-1024 {
			t.Errorf("read %d bytes, err %v; want 20 MiB less the prelude and a broken response", n, err)
		}
	})

	t.Run("BUFFERED mode is unchanged", func(t *testing.T) {
		if _, err := ts.Lambda().UpdateFunctionUrlConfig(t.Context(), &lambda.UpdateFunctionUrlConfigInput{
			FunctionName: aws.String("url-streamer"), InvokeMode: types.InvokeModeBuffered}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(gates, "buffered"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := urlRequest(t, http.MethodGet, ts.URLEndpoint()+"/buffered", host, nil, nil)
		if r.Status != http.StatusCreated || string(r.Body) != "chunk-1;chunk-2;" || r.Header.Get("Content-Length") != "16" {
			t.Errorf("status %d, header %v, body %q", r.Status, r.Header, r.Body)
		}
	})
}
