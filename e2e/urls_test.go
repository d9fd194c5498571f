package e2e

// Function URLs and HTTP APIs (issue 7): the URL config API, requests as
// payload format 2.0 events and answers mapped back to HTTP, CORS, AWS_IAM
// auth, and HTTP API route tables managed with `lamina api`.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// webApp is the Python function behind the URL and HTTP API tests. Its
// answer depends on the request path; FN (an environment variable) names
// the function in its default answer.
const webApp = `import base64
import json
import os

PNG = "@PNG@"
HTML = "<!doctype html><html><head><title>Lamina</title></head><body><h1>Hello from a function</h1></body></html>"


def handler(event, context):
    path = event.get("rawPath", "")
    if path.startswith("/echo"):
        return {"statusCode": 200, "headers": {"content-type": "application/json", "x-echo": "yes"}, "body": json.dumps(event)}
    if path == "/respond":
        return {"statusCode": 201, "headers": {"content-type": "text/plain; charset=utf-8", "x-custom": "custom-value"},
                "cookies": ["session=abc123; Path=/; HttpOnly", "theme=dark; Max-Age=3600"], "body": "created"}
    if path == "/mirror":
        body = event.get("body") or ""
        if not event.get("isBase64Encoded"):
            body = base64.b64encode(body.encode()).decode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"}, "body": body, "isBase64Encoded": True}
    if path == "/plain":
        return {"hello": "world", "list": [1, 2, 3]}
    if path == "/string":
        return "Hello"
    if path == "/fail":
        raise RuntimeError("the function failed")
    if path in ("/", "/index.html"):
        return {"statusCode": 200, "headers": {"content-type": "text/html; charset=utf-8"}, "body": HTML}
    if path == "/logo.png":
        return {"statusCode": 200, "headers": {"content-type": "image/png"}, "body": PNG, "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps({
        "fn": os.environ.get("FN", ""), "routeKey": event.get("routeKey"), "contextRouteKey": event["requestContext"].get("routeKey"),
        "rawPath": path, "pathParameters": event.get("pathParameters"), "stageVariables": event.get("stageVariables"),
        "method": event["requestContext"]["http"]["method"], "body": event.get("body"), "apiId": event["requestContext"].get("apiId"),
        "query": event.get("queryStringParameters")})}
`

const webHTML = "<!doctype html><html><head><title>Lamina</title></head><body><h1>Hello from a function</h1></body></html>"

// testPNG is a small PNG image.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// createWeb creates a python3.12 function running webApp, whose FN is fn.
func (ts *testServer) createWeb(t *testing.T, name string, mods ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	src := strings.Replace(webApp, "@PNG@", base64.StdEncoding.EncodeToString(testPNG(t)), 1)
	ts.createFunction(t, name, zipFiles(t, map[string]string{"app.py": src}), append([]func(*lambda.CreateFunctionInput){func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"FN": name}}
	}}, mods...)...)
}

// urlRequest sends a request to the URL listener: target is a URL, host
// (when not "") replaces the Host header, header adds headers.
func urlRequest(t *testing.T, method, target, host string, header http.Header, body []byte) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if host != "" {
		req.Host = host
	}
	return sendURLRequest(t, req)
}

func sendURLRequest(t *testing.T, req *http.Request) rawResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// urlID is the ID of a function URL: the first label of its host.
func urlID(t *testing.T, functionURL string) string {
	t.Helper()
	u, err := url.Parse(functionURL)
	if err != nil {
		t.Fatalf("FunctionUrl %q: %v", functionURL, err)
	}
	id, _, _ := strings.Cut(u.Hostname(), ".")
	return id
}

// createURL creates a function URL config and returns it. A URL whose
// AuthType is NONE also gets the permissions that let anyone call it, as
// the console adds them (allowPublicURL).
func (ts *testServer) createURL(t *testing.T, name, qualifier string, auth types.FunctionUrlAuthType, cors *types.Cors) *lambda.CreateFunctionUrlConfigOutput {
	t.Helper()
	in := &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name), AuthType: auth, Cors: cors}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := ts.Lambda().CreateFunctionUrlConfig(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateFunctionUrlConfig %s %s: %v", name, qualifier, err)
	}
	if auth == types.FunctionUrlAuthTypeNone {
		allowPublicURL(t, ts.Lambda(), name, qualifier)
	}
	return out
}

// allowPublicURL adds to the policy of function name (its qualifier, when
// not empty) the two statements AWS requires before anyone may call a
// function URL whose AuthType is NONE, as the console adds them.
func allowPublicURL(t *testing.T, c *lambda.Client, name, qualifier string) {
	t.Helper()
	for _, in := range []*lambda.AddPermissionInput{
		{StatementId: aws.String("FunctionURLAllowPublicAccess"), Action: aws.String("lambda:InvokeFunctionUrl"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone},
		{StatementId: aws.String("FunctionURLAllowInvokeAction"), Action: aws.String("lambda:InvokeFunction"), InvokedViaFunctionUrl: aws.Bool(true)},
	} {
		in.FunctionName, in.Principal = aws.String(name), aws.String("*")
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		if _, err := c.AddPermission(t.Context(), in); err != nil {
			t.Fatalf("AddPermission %s for %s %s: %v", aws.ToString(in.StatementId), name, qualifier, err)
		}
	}
}

// jsonBody decodes a response body that is a JSON object.
func jsonBody(t *testing.T, r rawResponse) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object (status %d): %v: %s", r.Status, err, r.Body)
	}
	return m
}

func TestFunctionURLConfigAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	const fn = "url-api"
	ts.createFunction(t, fn, markedPyZip(t, "v1"), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.echo") })
	if v := ts.publishMarked(t, fn, "v1"); v != "1" {
		t.Fatalf("version %q", v)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: markedPyZip(t, "v2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	_, port, _ := strings.Cut(strings.TrimPrefix(ts.URLEndpoint(), "http://"), ":")
	urlRE := regexp.MustCompile(`^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:` + port + `/$`)
	latest := ts.createURL(t, fn, "", types.FunctionUrlAuthTypeNone, nil)
	if !urlRE.MatchString(aws.ToString(latest.FunctionUrl)) || aws.ToString(latest.FunctionArn) != functionARN(fn) ||
		latest.AuthType != types.FunctionUrlAuthTypeNone || aws.ToString(latest.CreationTime) == "" || latest.InvokeMode != types.InvokeModeBuffered {
		t.Errorf("CreateFunctionUrlConfig answered %s", jsonOf(t, latest))
	}
	live := ts.createURL(t, fn, "live", types.FunctionUrlAuthTypeNone, nil)
	if !urlRE.MatchString(aws.ToString(live.FunctionUrl)) || aws.ToString(live.FunctionArn) != functionARN(fn)+":live" || aws.ToString(live.FunctionUrl) == aws.ToString(latest.FunctionUrl) {
		t.Errorf("CreateFunctionUrlConfig on the alias answered %s", jsonOf(t, live))
	}
	_, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn), AuthType: types.FunctionUrlAuthTypeNone})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict)
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("live"), AuthType: types.FunctionUrlAuthTypeNone})
	requireAPIError(t, err, "ResourceConflictException", http.StatusConflict)
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "InvalidParameterValueException", "ValidationException")
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("missing"), AuthType: types.FunctionUrlAuthTypeNone})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatalf("GetFunctionUrlConfig: %v", err)
	}
	if aws.ToString(got.FunctionUrl) != aws.ToString(latest.FunctionUrl) || aws.ToString(got.LastModifiedTime) == "" || got.AuthType != types.FunctionUrlAuthTypeNone {
		t.Errorf("GetFunctionUrlConfig = %s", jsonOf(t, got))
	}
	got, err = c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(got.FunctionUrl) != aws.ToString(live.FunctionUrl) {
		t.Errorf("GetFunctionUrlConfig live = %v (%v)", got, err)
	}

	// Each URL runs what it points at: $LATEST's code, the alias's version.
	for _, tc := range []struct{ url, code string }{{aws.ToString(latest.FunctionUrl), "code-v2"}, {aws.ToString(live.FunctionUrl), "code-v1"}} {
		r := urlRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, tc.url)+"/", "", nil, nil)
		if r.Status != http.StatusOK || jsonBody(t, r)["code"] != tc.code {
			t.Errorf("GET %s: %d %s, want %s", tc.url, r.Status, r.Body, tc.code)
		}
	}

	// Update: auth and CORS.
	upd, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String(fn), AuthType: types.FunctionUrlAuthTypeAwsIam,
		Cors: &types.Cors{AllowOrigins: []string{"https://a.example"}, MaxAge: aws.Int32(60)}})
	if err != nil {
		t.Fatalf("UpdateFunctionUrlConfig: %v", err)
	}
	if upd.AuthType != types.FunctionUrlAuthTypeAwsIam || upd.Cors == nil || !slices.Equal(upd.Cors.AllowOrigins, []string{"https://a.example"}) ||
		aws.ToString(upd.FunctionUrl) != aws.ToString(latest.FunctionUrl) {
		t.Errorf("UpdateFunctionUrlConfig answered %s", jsonOf(t, upd))
	}
	got, err = c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(fn)})
	if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam || got.Cors == nil || aws.ToInt32(got.Cors.MaxAge) != 60 {
		t.Errorf("GetFunctionUrlConfig after the update = %s (%v)", jsonOf(t, got), err)
	}
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, aws.ToString(latest.FunctionUrl))+"/", "", nil, nil); r.Status != http.StatusForbidden {
		t.Errorf("unsigned GET after switching to AWS_IAM: %d %s, want 403", r.Status, r.Body)
	}

	list, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatalf("ListFunctionUrlConfigs: %v", err)
	}
	var arns []string
	for _, u := range list.FunctionUrlConfigs {
		arns = append(arns, aws.ToString(u.FunctionArn))
	}
	slices.Sort(arns)
	if !slices.Equal(arns, []string{functionARN(fn), functionARN(fn) + ":live"}) {
		t.Errorf("ListFunctionUrlConfigs = %q", arns)
	}

	// Delete: the config and the URL are gone.
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(fn)}); err != nil {
		t.Fatalf("DeleteFunctionUrlConfig: %v", err)
	}
	_, err = c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(fn)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(fn)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, aws.ToString(latest.FunctionUrl))+"/", "", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET a deleted URL: %d %s, want 404", r.Status, r.Body)
	}
	list, err = c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String(fn)})
	if err != nil || len(list.FunctionUrlConfigs) != 1 {
		t.Errorf("ListFunctionUrlConfigs after deleting one = %v (%v), want the alias's", list, err)
	}
	// Deleting the function takes its URLs with it.
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(fn), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)}); err != nil {
		t.Fatal(err)
	}
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, aws.ToString(live.FunctionUrl))+"/", "", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET the URL of a deleted function's alias: %d %s, want 404", r.Status, r.Body)
	}
}

func TestFunctionURLRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createWeb(t, "web")
	u := ts.createURL(t, "web", "", types.FunctionUrlAuthTypeNone, nil)
	id := urlID(t, aws.ToString(u.FunctionUrl))
	base := ts.URLEndpoint() + "/" + id
	hostForm, err := url.Parse(aws.ToString(u.FunctionUrl))
	if err != nil {
		t.Fatal(err)
	}

	// A JSON request, by path.
	h := http.Header{}
	h.Add("X-Multi", "a")
	h.Add("X-Multi", "b")
	h.Set("X-Upper-Case", "V")
	h.Set("Cookie", "c1=v1; c2=v2")
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "lamina-e2e/1.0")
	r := urlRequest(t, "PUT", base+"/echo/a/b?x=1&x=2&y=z", "", h, []byte(`{"k":"v"}`))
	if r.Status != http.StatusOK || r.Header.Get("X-Echo") != "yes" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("PUT /echo: %d %v %s", r.Status, r.Header, r.Body)
	}
	ev := jsonBody(t, r)
	rc, _ := ev["requestContext"].(map[string]any)
	httpCtx, _ := rc["http"].(map[string]any)
	headers, _ := ev["headers"].(map[string]any)
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"version", ev["version"], "2.0"},
		{"routeKey", ev["routeKey"], "$default"},
		{"rawPath", ev["rawPath"], "/echo/a/b"},
		{"rawQueryString", ev["rawQueryString"], "x=1&x=2&y=z"},
		{"queryStringParameters", jsonOf(t, ev["queryStringParameters"]), `{"x":"1,2","y":"z"}`},
		{"headers[x-multi]", headers["x-multi"], "a,b"},
		{"headers[x-upper-case]", headers["x-upper-case"], "V"},
		{"headers[content-type]", headers["content-type"], "application/json"},
		{"headers has cookie", headers["cookie"] != nil, false},
		{"cookies", jsonOf(t, ev["cookies"]), `["c1=v1","c2=v2"]`},
		{"body", ev["body"], `{"k":"v"}`},
		{"isBase64Encoded", ev["isBase64Encoded"], false},
		{"requestContext.http.method", httpCtx["method"], "PUT"},
		{"requestContext.http.path", httpCtx["path"], "/echo/a/b"},
		{"requestContext.domainPrefix", rc["domainPrefix"], id},
		{"requestContext.apiId", rc["apiId"], id},
		{"requestContext.stage", rc["stage"], "$default"},
		{"requestContext.authorizer", rc["authorizer"], nil},
		{"requestContext.http.sourceIp", httpCtx["sourceIp"], "127.0.0.1"},
		{"requestContext.http.userAgent", httpCtx["userAgent"], "lamina-e2e/1.0"},
		{"requestContext.requestId", rc["requestId"], r.Header.Get("X-Amzn-Requestid")},
	}
	if r.Header.Get("X-Amzn-Requestid") == "" {
		t.Error("the response has no x-amzn-RequestId")
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("event %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for k := range headers {
		if k != strings.ToLower(k) {
			t.Errorf("event header %q is not lower case", k)
		}
	}

	// Query parameters are decoded.
	r = urlRequest(t, "GET", base+"/echo?name=J%C3%BCrgen%20X&empty=&plus=a+b", "", nil, nil)
	ev = jsonBody(t, r)
	if got := jsonOf(t, ev["queryStringParameters"]); got != `{"empty":"","name":"Jürgen X","plus":"a b"}` {
		t.Errorf("queryStringParameters = %s, want the decoded values", got)
	}
	if ev["rawQueryString"] != "name=J%C3%BCrgen%20X&empty=&plus=a+b" {
		t.Errorf("rawQueryString = %v, want it as sent", ev["rawQueryString"])
	}

	// A binary request: base64 in the event, and the same bytes back.
	payload := make([]byte, 4096)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	bin := http.Header{"Content-Type": {"application/octet-stream"}}
	r = urlRequest(t, "POST", base+"/echo/bin", "", bin, payload)
	ev = jsonBody(t, r)
	if ev["isBase64Encoded"] != true || ev["body"] != base64.StdEncoding.EncodeToString(payload) {
		t.Errorf("binary request: isBase64Encoded %v, body %.40v…, want true and the base64 of the bytes", ev["isBase64Encoded"], ev["body"])
	}
	r = urlRequest(t, "POST", base+"/mirror", "", bin, payload)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, payload) || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary round trip: %d %s, %d bytes, equal %v", r.Status, r.Header.Get("Content-Type"), len(r.Body), bytes.Equal(r.Body, payload))
	}

	// The function's answer sets status, headers and cookies.
	r = urlRequest(t, "GET", base+"/respond", "", nil, nil)
	if r.Status != http.StatusCreated || string(r.Body) != "created" || r.Header.Get("X-Custom") != "custom-value" ||
		r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET /respond: %d %v %q", r.Status, r.Header, r.Body)
	}
	if got := r.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"session=abc123; Path=/; HttpOnly", "theme=dark; Max-Age=3600"}) {
		t.Errorf("Set-Cookie headers = %q, want one per cookie", got)
	}
	// Plain JSON without statusCode: 200 application/json, the body as is.
	r = urlRequest(t, "GET", base+"/plain", "", nil, nil)
	direct := ts.invokeOK(t, "web", `{"rawPath":"/plain","requestContext":{"http":{"method":"GET"}}}`)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" || !bytes.Equal(r.Body, direct.Payload) {
		t.Errorf("GET /plain: %d %s %q, want 200 application/json %q", r.Status, r.Header.Get("Content-Type"), r.Body, direct.Payload)
	}
	r = urlRequest(t, "GET", base+"/string", "", nil, nil)
	if r.Status != http.StatusOK || string(r.Body) != `"Hello"` {
		t.Errorf("GET /string: %d %q, want 200 \"Hello\" with its quotes", r.Status, r.Body)
	}
	// A function error is a 502.
	r = urlRequest(t, "GET", base+"/fail", "", nil, nil)
	if r.Status != http.StatusBadGateway {
		t.Errorf("GET /fail: %d %s, want 502", r.Status, r.Body)
	}

	// By host name: the path is the function's own.
	r = urlRequest(t, "GET", ts.URLEndpoint()+"/echo/by-host?q=1", hostForm.Host, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET by Host %s: %d %s", hostForm.Host, r.Status, r.Body)
	}
	ev = jsonBody(t, r)
	if ev["rawPath"] != "/echo/by-host" || ev["rawQueryString"] != "q=1" {
		t.Errorf("by host name: rawPath %v rawQueryString %v", ev["rawPath"], ev["rawQueryString"])
	}
	if headers, _ := ev["headers"].(map[string]any); headers["host"] != hostForm.Host {
		t.Errorf("by host name: headers.host = %v, want %s", headers["host"], hostForm.Host)
	}

	// Unknown URLs are 404s, by path and by host.
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/abcdefghijklmnopqrstuvwxyz012345/echo", "", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown URL by path: %d %s", r.Status, r.Body)
	}
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/echo", "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown URL by host: %d %s", r.Status, r.Body)
	}
	// A body over 6 MB is refused with 413.
	big := bytes.Repeat([]byte("x"), 6*1024*1024+1)
	if r := urlRequest(t, "POST", base+"/echo", "", http.Header{"Content-Type": {"text/plain"}}, big); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of 6 MB + 1 byte: %d %.200s, want 413", r.Status, r.Body)
	}
}

func TestFunctionURLCORS(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ts.createWeb(t, "cors", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := c.CreateAlias(t.Context(), &lambda.CreateAliasInput{FunctionName: aws.String("cors"), Name: aws.String("star"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	strict := ts.createURL(t, "cors", "", types.FunctionUrlAuthTypeNone, &types.Cors{
		AllowOrigins:     []string{"https://app.example"},
		AllowMethods:     []string{"GET", "POST"},
		AllowHeaders:     []string{"content-type", "x-custom"},
		ExposeHeaders:    []string{"x-echo", "x-custom"},
		MaxAge:           aws.Int32(600),
		AllowCredentials: aws.Bool(true),
	})
	star := ts.createURL(t, "cors", "star", types.FunctionUrlAuthTypeNone, &types.Cors{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}})
	base := ts.URLEndpoint() + "/" + urlID(t, aws.ToString(strict.FunctionUrl))
	starBase := ts.URLEndpoint() + "/" + urlID(t, aws.ToString(star.FunctionUrl))

	preflight := func(target, origin, method string) rawResponse {
		t.Helper()
		return urlRequest(t, "OPTIONS", target, "", http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {method}, "Access-Control-Request-Headers": {"x-custom"},
		}, nil)
	}
	listHas := func(list, item string) bool {
		for v := range strings.SplitSeq(list, ",") {
			if strings.EqualFold(strings.TrimSpace(v), item) {
				return true
			}
		}
		return false
	}

	r := preflight(base+"/respond", "https://app.example", "POST")
	if r.Status != http.StatusOK {
		t.Errorf("preflight: status %d %s", r.Status, r.Body)
	}
	ah := r.Header
	if ah.Get("Access-Control-Allow-Origin") != "https://app.example" || !listHas(ah.Get("Access-Control-Allow-Methods"), "POST") ||
		!listHas(ah.Get("Access-Control-Allow-Methods"), "GET") || !listHas(ah.Get("Access-Control-Allow-Headers"), "x-custom") ||
		ah.Get("Access-Control-Max-Age") != "600" || ah.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight from an allowed origin answered headers %v", ah)
	}
	if r.Header.Get("X-Custom") != "" || string(r.Body) == "created" {
		t.Errorf("the preflight reached the function: %v %q", r.Header, r.Body)
	}
	r = preflight(base+"/respond", "https://evil.example", "POST")
	if r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from a disallowed origin got Access-Control-Allow-Origin %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = preflight(base+"/respond", "https://app.example", "DELETE")
	if r.Header.Get("Access-Control-Allow-Origin") != "" && listHas(r.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("preflight of a disallowed method allowed it: %v", r.Header)
	}

	// Actual requests carry Allow-Origin and Expose-Headers.
	r = urlRequest(t, "GET", base+"/respond", "", http.Header{"Origin": {"https://app.example"}}, nil)
	if r.Status != http.StatusCreated || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!listHas(r.Header.Get("Access-Control-Expose-Headers"), "x-echo") || !listHas(r.Header.Get("Access-Control-Expose-Headers"), "x-custom") ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET with an allowed Origin: %d, headers %v", r.Status, r.Header)
	}
	r = urlRequest(t, "GET", base+"/respond", "", http.Header{"Origin": {"https://evil.example"}}, nil)
	if r.Status != http.StatusCreated || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET with a disallowed Origin: %d, Access-Control-Allow-Origin %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}

	// A wildcard configuration allows any origin.
	r = preflight(starBase+"/x", "https://anything.example", "PATCH")
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight to a * configuration: Access-Control-Allow-Origin %q, headers %v", r.Header.Get("Access-Control-Allow-Origin"), r.Header)
	}
	r = urlRequest(t, "GET", starBase+"/respond", "", http.Header{"Origin": {"https://anything.example"}}, nil)
	if r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET from any origin to a * configuration: Access-Control-Allow-Origin %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
}

// signedURLRequest sends a request to a function URL signed with SigV4
// (service lambda, us-east-1) with the given secret.
func (ts *testServer) signedURLRequest(t *testing.T, method, target, host string, body []byte, accessKeyID, secret string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "lambda", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	return sendURLRequest(t, req)
}

func TestFunctionURLAuthIAM(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createWeb(t, "private")
	u := ts.createURL(t, "private", "", types.FunctionUrlAuthTypeAwsIam, nil)
	if u.AuthType != types.FunctionUrlAuthTypeAwsIam {
		t.Errorf("AuthType = %q", u.AuthType)
	}
	target := ts.URLEndpoint() + "/" + urlID(t, aws.ToString(u.FunctionUrl)) + "/echo/private"
	id, secret := ts.Credentials()

	if r := urlRequest(t, "GET", target, "", nil, nil); r.Status != http.StatusForbidden {
		t.Errorf("unsigned request: %d %s, want 403", r.Status, r.Body)
	}
	if r := ts.signedURLRequest(t, "GET", target, "", nil, id, "not-the-secret-key-000000000000000000000"); r.Status != http.StatusForbidden {
		t.Errorf("request signed with a wrong secret: %d %s, want 403", r.Status, r.Body)
	}
	r := ts.signedURLRequest(t, "POST", target, "", []byte(`{"signed":true}`), id, secret)
	if r.Status != http.StatusOK {
		t.Fatalf("signed request: %d %s, want 200", r.Status, r.Body)
	}
	ev := jsonBody(t, r)
	rc, _ := ev["requestContext"].(map[string]any)
	authz, _ := rc["authorizer"].(map[string]any)
	iam, _ := authz["iam"].(map[string]any)
	if iam == nil || iam["accessKey"] != id || iam["accountId"] != testAccountID {
		t.Errorf("signed request: requestContext.authorizer = %s, want iam with accessKey %s and accountId %s", jsonOf(t, rc["authorizer"]), id, testAccountID)
	}
	if ev["body"] != `{"signed":true}` {
		t.Errorf("signed request: body %v", ev["body"])
	}
	// Signed for the host-name form as well.
	host, err := url.Parse(aws.ToString(u.FunctionUrl))
	if err != nil {
		t.Fatal(err)
	}
	if r := ts.signedURLRequest(t, "GET", ts.URLEndpoint()+"/echo/by-host", host.Host, nil, id, secret); r.Status != http.StatusOK {
		t.Errorf("signed request by host name: %d %s", r.Status, r.Body)
	}
}

// apiCLI runs `lamina api ARGS -o json` and decodes its output.
func (ts *testServer) apiCLI(t *testing.T, args ...string) map[string]any {
	t.Helper()
	stdout, stderr, code := ts.Run(append(append([]string{"api"}, args...), "-o", "json")...)
	if code != 0 {
		t.Fatalf("lamina api %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	if strings.TrimSpace(stdout) == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		var list []any
		if json.Unmarshal([]byte(stdout), &list) == nil {
			return map[string]any{"items": list}
		}
		t.Fatalf("lamina api %s -o json printed %q: %v", strings.Join(args, " "), stdout, err)
	}
	return m
}

func TestHTTPAPIRoutes(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createWeb(t, "items")
	ts.createWeb(t, "files")
	ts.createWeb(t, "site")

	api := ts.apiCLI(t, "create", "shop", "--stage-var", "stage=test", "--stage-var", "color=blue")
	apiID, _ := api["APIID"].(string)
	if apiID == "" {
		t.Fatalf("lamina api create printed %v, want an APIID", api)
	}
	if ep, _ := api["APIEndpoint"].(string); !strings.Contains(ep, apiID+".execute-api.us-east-1.localhost") {
		t.Errorf("APIEndpoint = %q", ep)
	}
	for _, route := range [][2]string{
		{"GET /items/{id}", "items"},
		{"POST /items", "items"},
		{"ANY /files/{proxy+}", "files"},
		{"$default", "site"},
	} {
		ts.apiCLI(t, "route", apiID, route[0], route[1])
	}
	got := ts.apiCLI(t, "get", apiID)
	if routes, _ := got["Routes"].([]any); len(routes) != 4 {
		t.Errorf("lamina api get: routes %v, want 4", got["Routes"])
	}
	if list := ts.apiCLI(t, "list"); !strings.Contains(jsonOf(t, list), apiID) {
		t.Errorf("lamina api list does not show %s: %v", apiID, list)
	}
	base := ts.URLEndpoint() + "/" + apiID
	stageVars := `{"color":"blue","stage":"test"}`

	call := func(method, path, host string, body []byte) map[string]any {
		t.Helper()
		target := base + path
		if host != "" {
			target = ts.URLEndpoint() + path
		}
		r := urlRequest(t, method, target, host, http.Header{"Content-Type": {"application/json"}}, body)
		if r.Status != http.StatusOK {
			t.Fatalf("%s %s (host %q): %d %s", method, path, host, r.Status, r.Body)
		}
		return jsonBody(t, r)
	}
	for _, tc := range []struct {
		method, path, host    string
		body                  string
		fn, routeKey, rawPath string
		params                string
	}{
		{"GET", "/items/42", "", "", "items", "GET /items/{id}", "/items/42", `{"id":"42"}`},
		{"POST", "/items", "", `{"name":"widget"}`, "items", "POST /items", "/items", `null`},
		{"DELETE", "/files/a/b/c.txt", "", "", "files", "ANY /files/{proxy+}", "/files/a/b/c.txt", `{"proxy":"a/b/c.txt"}`},
		{"GET", "/files/one", "", "", "files", "ANY /files/{proxy+}", "/files/one", `{"proxy":"one"}`},
		{"PUT", "/items/42", "", "", "site", "$default", "/items/42", `null`}, // method mismatch: $default
		{"GET", "/elsewhere", "", "", "site", "$default", "/elsewhere", `null`},
		{"GET", "/items/7?color=red", apiID + ".execute-api.us-east-1.localhost", "", "items", "GET /items/{id}", "/items/7", `{"id":"7"}`},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		m := call(tc.method, tc.path, tc.host, body)
		if m["fn"] != tc.fn || m["routeKey"] != tc.routeKey || m["contextRouteKey"] != tc.routeKey || m["rawPath"] != tc.rawPath ||
			jsonOf(t, m["pathParameters"]) != tc.params || jsonOf(t, m["stageVariables"]) != stageVars || m["method"] != tc.method || m["apiId"] != apiID {
			t.Errorf("%s %s (host %q) = %v; want function %s, routeKey %q, rawPath %s, pathParameters %s, stageVariables %s",
				tc.method, tc.path, tc.host, m, tc.fn, tc.routeKey, tc.rawPath, tc.params, stageVars)
		}
		if tc.body != "" && m["body"] != tc.body {
			t.Errorf("%s %s: body %v, want %s", tc.method, tc.path, m["body"], tc.body)
		}
	}

	// A static web site served by the $default function.
	r := urlRequest(t, "GET", base+"/", "", nil, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "text/html; charset=utf-8" || string(r.Body) != webHTML {
		t.Errorf("GET /: %d %s %q", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	r = urlRequest(t, "GET", base+"/logo.png", "", nil, nil)
	if want := testPNG(t); r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || !bytes.Equal(r.Body, want) ||
		r.Header.Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Errorf("GET /logo.png: %d %s, %d bytes (Content-Length %s), want the %d bytes of the PNG", r.Status, r.Header.Get("Content-Type"), len(r.Body), r.Header.Get("Content-Length"), len(want))
	}
	if _, err := png.Decode(bytes.NewReader(r.Body)); err != nil {
		t.Errorf("GET /logo.png is not a PNG: %v", err)
	}

	// Without $default, unmatched requests are 404s.
	if _, stderr, code := ts.Run("api", "unroute", apiID, "$default"); code != 0 {
		t.Fatalf("lamina api unroute: %d %s", code, stderr)
	}
	for _, req := range [][2]string{{"PUT", "/items/42"}, {"GET", "/elsewhere"}, {"GET", "/"}, {"GET", "/files"}} {
		if r := urlRequest(t, req[0], base+req[1], "", nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("%s %s without $default: %d %s, want 404", req[0], req[1], r.Status, r.Body)
		}
	}
	if m := call("GET", "/items/1", "", nil); m["fn"] != "items" {
		t.Errorf("after unroute, GET /items/1 reached %v", m["fn"])
	}
	// An unknown route key cannot be removed; a bad one cannot be added.
	if _, _, code := ts.Run("api", "unroute", apiID, "GET /nothing"); code == 0 {
		t.Error("lamina api unroute of a missing route succeeded")
	}
	if _, _, code := ts.Run("api", "route", apiID, "FETCH /x", "items"); code == 0 {
		t.Error("lamina api route with an invalid route key succeeded")
	}
	if _, _, code := ts.Run("api", "route", apiID, "GET /x", "no-such-function"); code == 0 {
		t.Error("lamina api route to a missing function succeeded")
	}

	// A route can name a version: it runs that version, whatever $LATEST
	// becomes.
	if _, err := ts.Lambda().PublishVersion(t.Context(), &lambda.PublishVersionInput{FunctionName: aws.String("items")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Lambda().UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("items"),
		Environment: &types.Environment{Variables: map[string]string{"FN": "items-latest"}}}); err != nil {
		t.Fatal(err)
	}
	ts.apiCLI(t, "route", apiID, "GET /pinned/{id}", "items:1")
	if m := call("GET", "/pinned/5", "", nil); m["fn"] != "items" || jsonOf(t, m["pathParameters"]) != `{"id":"5"}` {
		t.Errorf("GET /pinned/5 (route to items:1) = %v, want version 1 (FN items)", m)
	}
	if m := call("GET", "/items/5", "", nil); m["fn"] != "items-latest" {
		t.Errorf("GET /items/5 (route to items) = %v, want $LATEST (FN items-latest)", m)
	}

	// Deleting the API: its requests are 404s.
	if _, stderr, code := ts.Run("api", "delete", apiID); code != 0 {
		t.Fatalf("lamina api delete: %d %s", code, stderr)
	}
	if r := urlRequest(t, "GET", base+"/items/1", "", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET on a deleted API: %d %s", r.Status, r.Body)
	}
}
