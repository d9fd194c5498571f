package s3

import (
	"net"
	"net/http"
	"strings"

	"github.com/lamina-project/lamina/internal/awsproto"
)

// target returns the bucket and key a request names: from its host in
// virtual-host addressing (bucket.localhost, bucket.s3.localhost,
// bucket.s3.<region>.localhost, bucket.s3.<anything>), else from its path
// (/bucket/key).
func target(r *http.Request) (bucket, key string) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	if b := virtualBucket(r.Host); b != "" {
		return b, path
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key
}

// virtualBucket returns the bucket a Host header names, or "" when it
// names none (an IP address, localhost, s3.…).
func virtualBucket(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if net.ParseIP(host) != nil {
		return ""
	}
	first, rest, ok := strings.Cut(host, ".")
	if !ok || first == "s3" {
		return ""
	}
	if rest == "localhost" || strings.HasPrefix(rest, "s3.") || strings.HasPrefix(rest, "s3-") {
		return first
	}
	return ""
}

// unsupportedBucketQueries are the bucket sub-resources Lamina does not
// serve: a request for one is answered NotImplemented rather than taken
// for a listing or a bucket creation.
var unsupportedBucketQueries = []string{"acl", "policy", "cors", "lifecycle", "tagging", "encryption", "website",
	"logging", "replication", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment",
	"object-lock", "analytics", "metrics", "inventory", "intelligent-tiering", "versions", "policyStatus"}

// unsupportedObjectQueries are the object sub-resources Lamina does not
// serve.
var unsupportedObjectQueries = []string{"acl", "tagging", "retention", "legal-hold", "torrent", "restore",
	"select", "attributes"}

// route returns the operation a request is for, or nil (NotImplemented).
func (s *Service) route(r *http.Request) *awsproto.Operation {
	bucket, key := target(r)
	q := r.URL.Query()
	has := func(name string) bool { _, ok := q[name]; return ok }
	hasAny := func(names []string) bool {
		for _, n := range names {
			if has(n) {
				return true
			}
		}
		return false
	}
	op := ""
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			op = "ListBuckets"
		}
	case key == "":
		if hasAny(unsupportedBucketQueries) {
			break
		}
		switch r.Method {
		case http.MethodPut:
			switch {
			case has("notification"):
				op = "PutBucketNotificationConfiguration"
			case has("versioning"):
			case len(q) == 0:
				op = "CreateBucket"
			}
		case http.MethodGet:
			switch {
			case has("notification"):
				op = "GetBucketNotificationConfiguration"
			case has("location"):
				op = "GetBucketLocation"
			case has("versioning"):
				op = "GetBucketVersioning"
			case has("uploads"):
				op = "ListMultipartUploads"
			case q.Get("list-type") == "2":
				op = "ListObjectsV2"
			default:
				op = "ListObjects"
			}
		case http.MethodHead:
			op = "HeadBucket"
		case http.MethodDelete:
			if len(q) == 0 {
				op = "DeleteBucket"
			}
		case http.MethodPost:
			if has("delete") {
				op = "DeleteObjects"
			}
		}
	default:
		if hasAny(unsupportedObjectQueries) {
			break
		}
		switch r.Method {
		case http.MethodPut:
			switch {
			case has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
				op = "UploadPartCopy"
			case has("uploadId"):
				op = "UploadPart"
			case r.Header.Get("X-Amz-Copy-Source") != "":
				op = "CopyObject"
			default:
				op = "PutObject"
			}
		case http.MethodGet:
			if has("uploadId") {
				op = "ListParts"
			} else {
				op = "GetObject"
			}
		case http.MethodHead:
			op = "HeadObject"
		case http.MethodDelete:
			if has("uploadId") {
				op = "AbortMultipartUpload"
			} else {
				op = "DeleteObject"
			}
		case http.MethodPost:
			switch {
			case has("uploads"):
				op = "CreateMultipartUpload"
			case has("uploadId"):
				op = "CompleteMultipartUpload"
			}
		}
	}
	if op == "" {
		return nil
	}
	return s.opTable[op]
}

// operations returns the service's operations by name.
func (s *Service) operations() map[string]*awsproto.Operation {
	handlers := map[string]func(*call) error{
		"ListBuckets":                        s.listBuckets,
		"CreateBucket":                       s.createBucket,
		"HeadBucket":                         s.headBucket,
		"DeleteBucket":                       s.deleteBucket,
		"GetBucketLocation":                  s.getBucketLocation,
		"GetBucketVersioning":                s.getBucketVersioning,
		"PutBucketNotificationConfiguration": s.putNotification,
		"GetBucketNotificationConfiguration": s.getNotification,
		"ListObjects":                        s.listObjectsV1,
		"ListObjectsV2":                      s.listObjectsV2,
		"DeleteObjects":                      s.deleteObjects,
		"PutObject":                          s.putObject,
		"CopyObject":                         s.copyObject,
		"GetObject":                          s.getObject,
		"HeadObject":                         s.getObject,
		"DeleteObject":                       s.deleteObject,
		"CreateMultipartUpload":              s.createUpload,
		"UploadPart":                         s.uploadPart,
		"UploadPartCopy":                     s.uploadPart,
		"CompleteMultipartUpload":            s.completeUpload,
		"AbortMultipartUpload":               s.abortUpload,
		"ListParts":                          s.listParts,
		"ListMultipartUploads":               s.listUploads,
	}
	ops := map[string]*awsproto.Operation{}
	for name, h := range handlers {
		ops[name] = awsproto.Raw(name, func(c *awsproto.Call, w http.ResponseWriter) error {
			bucket, key := target(c.Request)
			return h(&call{Call: c, w: w, bucket: bucket, key: key})
		}).Streaming()
	}
	return ops
}
