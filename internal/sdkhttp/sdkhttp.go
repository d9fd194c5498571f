// Package sdkhttp gives aws-sdk-go-v2 clients an HTTP client that avoids a
// race between the SDK and net/http.
//
// The SDK (smithy-go) closes a request's body as soon as the response
// headers are in, and the body's WriteTo then returns io.EOF. net/http's
// write loop sometimes makes its final read of the body only then; it takes
// that EOF for a write error and closes the connection under the response
// body the SDK is still reading ("use of closed network connection"). Seen
// with Go 1.26 about once in a few hundred calls with answers of some
// kilobytes. Giving net/http a body with nothing but Read and Close makes it
// end the copy normally.
package sdkhttp

import (
	"io"
	"net/http"
)

// Client returns an HTTP client for aws-sdk-go-v2's Options.HTTPClient.
func Client() *http.Client {
	return &http.Client{Transport: transport{http.DefaultTransport}}
}

type transport struct{ base http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = readOnlyBody{req.Body}
	}
	return t.base.RoundTrip(req)
}

// readOnlyBody hides everything of a request body but Read and Close.
type readOnlyBody struct{ io.ReadCloser }
