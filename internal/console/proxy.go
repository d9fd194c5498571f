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

// proxiedServices are the signing names of the APIs the console calls.
var proxiedServices = map[string]bool{"lambda": true, "logs": true, "events": true}

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
	if !proxiedServices[service] {
		writeError(w, &lamina.Error{Status: http.StatusNotFound, Code: "UnknownOperationException",
			Message: "The console calls the lambda, logs and events APIs, not " + service + "."})
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
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, unsignedPayload, service, c.cfg.Region, time.Now()); err != nil {
		c.log.Error("signing a console call failed", "err", err)
		writeError(w, lamina.ErrService("The console could not sign its call."))
		return
	}
	c.cfg.API.ServeHTTP(w, req)
}
