package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
)

// s3Error returns an S3 error with status and code.
func s3Error(status int, code, format string, args ...any) *awsproto.Error {
	return &awsproto.Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Receiver: status >= 500}
}

// S3's errors, as S3 words them.
var (
	errNoSuchBucket = func() error {
		return s3Error(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	}
	errNoSuchKey = func() error {
		return s3Error(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	}
	errNoSuchUpload = func() error {
		return s3Error(http.StatusNotFound, "NoSuchUpload",
			"The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	}
	errMalformedXML = func() error {
		return s3Error(http.StatusBadRequest, "MalformedXML",
			"The XML you provided was not well-formed or did not validate against our published schema")
	}
	errInvalidArgument = func(format string, args ...any) error {
		return s3Error(http.StatusBadRequest, "InvalidArgument", format, args...)
	}
	errInvalidRequest = func(format string, args ...any) error {
		return s3Error(http.StatusBadRequest, "InvalidRequest", format, args...)
	}
	errEntityTooLarge = func() error {
		return s3Error(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	errPreconditionFailed = func() error {
		return s3Error(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	}
)

// storeFailure turns a failure of the store into the S3 error its callers
// see, and returns other errors unchanged (Lamina's own failures).
func storeFailure(err error) error {
	var unavailable *store.UnavailableError
	switch {
	case errors.Is(err, errStorageFull):
		return s3Error(http.StatusServiceUnavailable, "ServiceUnavailable",
			"The object storage is full (its --s3-max-bytes share); delete objects and retry.")
	case errors.As(err, &unavailable) && unavailable.Full:
		return s3Error(http.StatusServiceUnavailable, "ServiceUnavailable",
			"The request could not be stored: storage is full. Retry once space is freed.")
	case errors.Is(err, store.ErrUnavailable):
		return s3Error(http.StatusServiceUnavailable, "ServiceUnavailable",
			"The request could not be stored: storage is unavailable. Retry later.")
	case errors.Is(err, store.ErrConflict):
		return s3Error(http.StatusConflict, "OperationAborted",
			"A conflicting conditional operation is currently in progress against this resource. Please try again.")
	}
	return err
}

// mapError rewrites the errors the admission and the API listener give
// (in the Lambda API's terms) into S3's codes.
func mapError(e *awsproto.Error) *awsproto.Error {
	out := *e
	switch e.Code {
	case "InvalidSignatureException":
		switch {
		case strings.Contains(e.Message, "x-amz-content-sha256") || strings.Contains(e.Message, "X-Amz-Content-Sha256"):
			out.Status, out.Code = http.StatusBadRequest, "XAmzContentSHA256Mismatch"
		case strings.HasPrefix(e.Message, "Credential should be scoped"), strings.HasPrefix(e.Message, "Date in Credential"):
			out.Status, out.Code = http.StatusBadRequest, "AuthorizationHeaderMalformed"
		case strings.HasPrefix(e.Message, "Signature expired"), strings.HasPrefix(e.Message, "Signature not yet current"):
			out.Code = "RequestTimeTooSkewed"
			out.Message = "The difference between the request time and the current time is too large."
		default:
			out.Code = "SignatureDoesNotMatch"
		}
	case "IncompleteSignatureException":
		out.Status, out.Code = http.StatusBadRequest, "AuthorizationHeaderMalformed"
	case "UnrecognizedClientException":
		out.Code, out.Message = "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	case "AccessDeniedException", "MissingAuthenticationTokenException":
		out.Code = "AccessDenied"
	case "InternalFailure":
		out.Code = "InternalError"
	case "ServiceException":
		out.Code = "ServiceUnavailable"
	case "TooManyRequestsException":
		out.Status, out.Code = http.StatusServiceUnavailable, "SlowDown"
	}
	return &out
}
