package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/lamina-project/lamina"
)

// proxiedService is an API the console calls, by its SigV4 signing name,
// and which of its operations: the whole Lambda, Logs and EventBridge APIs
// (the console manages functions, their logs and schedules), and of the
// services beside them only what the console's pages use.
type proxiedService struct {
	// targets, when set, are the X-Amz-Target values allowed: the
	// service's JSON protocol only.
	targets map[string]bool
	// actions, when set, are the Actions of the query protocol allowed,
	// named in the URL of a GET without a body.
	actions map[string]bool
	// rest, when set, tells whether a REST request is allowed.
	rest func(method string, path string, query url.Values) bool
}

// allows reports whether the console may make the call r (whose path is
// the API's) of the service.
func (p proxiedService) allows(r *http.Request, path string) bool {
	switch {
	case p.targets != nil:
		return r.Method == http.MethodPost && path == "/" && p.targets[r.Header.Get("X-Amz-Target")]
	case p.actions != nil:
		q := r.URL.Query()
		return r.Method == http.MethodGet && r.ContentLength == 0 && path == "/" && r.Header.Get("X-Amz-Target") == "" &&
			len(q["Action"]) == 1 && p.actions[q.Get("Action")]
	case p.rest != nil:
		return r.Header.Get("X-Amz-Target") == "" && p.rest(r.Method, path, r.URL.Query())
	}
	return true
}

// targetsOf lists the operations of a JSON service by their X-Amz-Target.
func targetsOf(prefix string, ops ...string) map[string]bool {
	out := make(map[string]bool, len(ops))
	for _, op := range ops {
		out[prefix+op] = true
	}
	return out
}

// setOf is a set of names.
func setOf(names ...string) map[string]bool { return targetsOf("", names...) }

// proxiedServices are the APIs the console calls.
var proxiedServices = map[string]proxiedService{
	"lambda": {},
	"logs":   {},
	"events": {},
	// The queue pages list queues with their attributes, send, receive
	// (on demand, with the queue's visibility timeout), delete what they
	// received, and purge.
	"sqs": {targets: targetsOf("AmazonSQS.", "ListQueues", "GetQueueUrl", "GetQueueAttributes", "ListQueueTags",
		"ListDeadLetterSourceQueues", "SendMessage", "ReceiveMessage", "DeleteMessage", "PurgeQueue")},
	// The stream pages list streams, their summaries and shards.
	"kinesis": {targets: targetsOf("Kinesis_20131202.", "ListStreams", "DescribeStreamSummary", "ListShards")},
	"s3":      {rest: s3Allowed},
	// The topic pages list topics, their attributes and subscriptions.
	"sns": {actions: setOf("ListTopics", "GetTopicAttributes", "ListSubscriptionsByTopic")},
}

// s3ListQuery are the parameters of ListObjectsV2 the bucket page sends.
var s3ListQuery = map[string]bool{"list-type": true, "prefix": true, "delimiter": true, "continuation-token": true,
	"max-keys": true, "start-after": true, "encoding-type": true}

// s3Allowed tells the S3 calls of the bucket pages: ListBuckets, a
// bucket's ListObjectsV2 and notification configuration, an object's
// HeadObject, GetObject and PutObject (an upload, never a copy or a part).
func s3Allowed(method, path string, query url.Values) bool {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch {
	case bucket == "":
		return method == http.MethodGet && len(query) == 0
	case key == "":
		if method != http.MethodGet {
			return false
		}
		if len(query) == 1 && query.Has("notification") {
			return true
		}
		if query.Get("list-type") != "2" {
			return false
		}
		for name := range query {
			if !s3ListQuery[name] {
				return false
			}
		}
		return true
	default:
		return (method == http.MethodGet || method == http.MethodHead || method == http.MethodPut) && len(query) == 0
	}
}

// forwardedHeaders are the request headers of the API's operations that a
// console call passes on; the browser's others (its cookie first) are not.
var forwardedHeaders = []string{"Content-Type", "X-Amz-Target", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context"}

// unsignedPayload is the payload hash of a request whose body is not signed:
// the API reads it within its own limits and budgets as it arrives.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// proxy serves a console call of an API operation: the request, with its
// path after /console/api/aws/SERVICE, signed for the session's key, served
// by the API's handler, which answers the browser directly.
func (c *Console) proxy(w http.ResponseWriter, r *http.Request, sess *session) {
	service := r.PathValue("service")
	allowed, ok := proxiedServices[service]
	if !ok {
		writeError(w, &lamina.Error{Status: http.StatusNotFound, Code: "UnknownOperationException",
			Message: "The console calls the lambda, logs, events, sqs, s3, kinesis and sns APIs, not " + service + "."})
		return
	}
	secret, ok := c.cfg.Credentials(sess.keyID)
	if !ok {
		writeError(w, errSignedOut)
		return
	}
	prefix := pathPrefix + "api/aws/" + service
	path := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	if path == "" {
		path = "/"
	}
	target, err := url.Parse(path)
	if err != nil || !strings.HasPrefix(path, "/") {
		writeError(w, lamina.ErrInvalidParameter("Not a path of the API: %s", path))
		return
	}
	if !allowed.allows(r, target.Path) {
		writeError(w, &lamina.Error{Status: http.StatusForbidden, Code: "AccessDeniedException", Type: "User",
			Message: "The console does not make this call of the " + service + " API; use the API itself."})
		return
	}
	target.RawQuery = r.URL.RawQuery
	target.Scheme, target.Host = "http", r.Host
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), r.Body)
	if err != nil {
		writeError(w, lamina.ErrInvalidParameter("Not a request of the API: %v", err))
		return
	}
	req.ContentLength = r.ContentLength
	req.RemoteAddr = r.RemoteAddr
	req.RequestURI = target.RequestURI()
	req.Host = r.Host
	for _, name := range forwardedHeaders {
		if v := r.Header.Get(name); v != "" {
			req.Header.Set(name, v)
		}
	}
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	creds := aws.Credentials{AccessKeyID: sess.keyID, SecretAccessKey: secret}
	// S3 signs the path as sent; the other services escape it once more.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	if err := signer.SignHTTP(r.Context(), creds, req, unsignedPayload, service, c.cfg.Region, time.Now()); err != nil {
		c.log.Error("signing a console call failed", "err", err)
		writeError(w, lamina.ErrService("The console could not sign its call."))
		return
	}
	c.cfg.API.ServeHTTP(w, req)
}
