package frontend

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The HTTP payload format 2.0 that function URLs and HTTP APIs send to
// functions, and the mapping of a function's answer back to HTTP.

// httpEvent is the 2.0 event of an HTTP request.
type httpEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters,omitempty"`
	StageVariables        map[string]string `json:"stageVariables,omitempty"`
	RequestContext        requestContext    `json:"requestContext"`
	Body                  *string           `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type requestContext struct {
	AccountID    string         `json:"accountId"`
	APIID        string         `json:"apiId"`
	Authorizer   map[string]any `json:"authorizer,omitempty"`
	DomainName   string         `json:"domainName"`
	DomainPrefix string         `json:"domainPrefix"`
	HTTP         httpContext    `json:"http"`
	RequestID    string         `json:"requestId"`
	RouteKey     string         `json:"routeKey"`
	Stage        string         `json:"stage"`
	Time         string         `json:"time"`
	TimeEpoch    int64          `json:"timeEpoch"`
}

type httpContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// newHTTPEvent builds the event of request r (whose body was read) for a
// route: path is the request path as the function sees it (after any
// prefix that routed it).
func newHTTPEvent(r *http.Request, body []byte, path, requestID string) *httpEvent {
	now := time.Now()
	ev := &httpEvent{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: requestContext{
			HTTP: httpContext{
				Method: r.Method, Path: path, Protocol: r.Proto,
				SourceIP: sourceIP(r), UserAgent: r.UserAgent(),
			},
			RequestID: requestID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: now.UnixMilli(),
		},
	}
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[name] = strings.Join(values, ",")
	}
	ev.Headers["host"] = r.Host
	if r.ContentLength > 0 {
		ev.Headers["content-length"] = strconv.FormatInt(r.ContentLength, 10)
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(body) > 0 {
		text := string(body)
		if !isTextual(r.Header.Get("Content-Type"), body) {
			text = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
		ev.Body = &text
	}
	return ev
}

// sourceIP is the client's address without the port.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isTextual reports whether a body goes to the function as text rather
// than base64: valid UTF-8 of a textual content type.
func isTextual(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType == ""
	}
	switch {
	case strings.HasPrefix(mediaType, "text/"),
		strings.HasSuffix(mediaType, "+json"), strings.HasSuffix(mediaType, "+xml"):
		return true
	}
	switch mediaType {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
		"application/x-javascript", "application/ecmascript", "application/graphql", "application/yaml":
		return true
	}
	return false
}

// httpResponse is a function's answer in the form that sets the response
// ({"statusCode": ...}).
type httpResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              *string             `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// streamingContentType marks a response streamed with an HTTP prelude.
const streamingContentType = "application/vnd.awslambda.http-integration-response"

// writeFunctionResponse turns a function's result into the HTTP response,
// as Lambda does for function URLs and HTTP APIs: an object with
// statusCode sets status, headers, cookies and body; any other JSON is a 200
// application/json body as is.
func writeFunctionResponse(w http.ResponseWriter, payload []byte, contentType string) {
	if contentType == streamingContentType {
		writeStreamedResponse(w, payload)
		return
	}
	var resp httpResponse
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(payload, &resp) == nil && resp.StatusCode != 0 {
		h := w.Header()
		for k, v := range resp.Headers {
			h.Set(k, v)
		}
		for k, vs := range resp.MultiValueHeaders {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		for _, c := range resp.Cookies {
			h.Add("Set-Cookie", c)
		}
		body := []byte{}
		if resp.Body != nil {
			body = []byte(*resp.Body)
			if resp.IsBase64Encoded {
				decoded, err := base64.StdEncoding.DecodeString(*resp.Body)
				if err != nil {
					writeHTTPError(w, http.StatusBadGateway, "Internal Server Error")
					return
				}
				body = decoded
			}
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/json")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// writeStreamedResponse answers with a streamed response: a JSON prelude
// (statusCode, headers, cookies), eight NUL bytes, then the body.
func writeStreamedResponse(w http.ResponseWriter, payload []byte) {
	prelude, body, found := bytes.Cut(payload, make([]byte, 8))
	var meta struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Cookies    []string          `json:"cookies"`
	}
	if !found || json.Unmarshal(prelude, &meta) != nil {
		meta.StatusCode, body = http.StatusOK, payload
	}
	for k, v := range meta.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range meta.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if meta.StatusCode == 0 {
		meta.StatusCode = http.StatusOK
	}
	w.WriteHeader(meta.StatusCode)
	_, _ = w.Write(body)
}

// writeHTTPError answers a function URL or HTTP API request with an error
// in their format: {"Message": "..."}.
func writeHTTPError(w http.ResponseWriter, status int, message string) {
	data, _ := json.Marshal(map[string]string{"Message": message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
