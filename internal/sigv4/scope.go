package sigv4

import (
	"net/http"
	"net/url"
	"strings"
)

// ScopeService returns the service named in the credential scope of r's
// SigV4 authentication — the Authorization header's Credential, or a
// presigned URL's X-Amz-Credential; "s3" for a SigV2 presigned URL — or ""
// when r carries none. It reads
// the headers and the URL only, and checks nothing: it tells a dispatcher
// which service a request is for, whose Verifier then authenticates it.
func ScopeService(r *http.Request) string {
	var credential string
	if header := r.Header.Get("Authorization"); header != "" {
		_, after, ok := strings.Cut(header, "Credential=")
		if !ok {
			return ""
		}
		credential, _, _ = strings.Cut(after, ",")
	} else if isPresignedV2(r.URL.RawQuery) {
		return "s3" // only S3 takes SigV2 (presigned URLs)
	} else if strings.Contains(r.URL.RawQuery, queryCredential) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return ""
		}
		credential = q.Get(queryCredential)
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(strings.TrimSpace(credential), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}
