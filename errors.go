package lamina

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is a failure in AWS's terms. The frontend sends it as the HTTP status,
// the X-Amzn-ErrorType header (Code) and a JSON body carrying Type, the
// message and, for throttles, Reason.
type Error struct {
	Status  int    // HTTP status code
	Code    string // AWS exception name, e.g. "ResourceNotFoundException"
	Message string // human-readable message, as AWS words it
	Type    string // "User" or "Service"; empty for ValidationException, which has none
	Reason  string // only for TooManyRequestsException
}

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// MessageKey is the JSON key that carries the message in this error's body.
// AWS's model spells it "Message" for some exceptions and "message" for the
// rest; SDKs read either, but the CLI prints what it finds.
func (e *Error) MessageKey() string {
	switch e.Code {
	case "ResourceNotFoundException", "ServiceException":
		return "Message"
	}
	return "message"
}

func newError(status int, code, typ, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is 404 ResourceNotFoundException.
func ErrNotFound(format string, args ...any) *Error {
	return newError(http.StatusNotFound, "ResourceNotFoundException", "User", format, args...)
}

// ErrInvalidParameter is 400 InvalidParameterValueException.
func ErrInvalidParameter(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "InvalidParameterValueException", "User", format, args...)
}

// ErrInvalidRequestContent is 400 InvalidRequestContentException (a body that
// cannot be parsed).
func ErrInvalidRequestContent(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "InvalidRequestContentException", "User", format, args...)
}

// ErrConflict is 409 ResourceConflictException.
func ErrConflict(format string, args ...any) *Error {
	return newError(http.StatusConflict, "ResourceConflictException", "User", format, args...)
}

// ErrPreconditionFailed is 412 PreconditionFailedException (a RevisionId or
// CodeSha256 that does not match).
func ErrPreconditionFailed(format string, args ...any) *Error {
	return newError(http.StatusPreconditionFailed, "PreconditionFailedException", "User", format, args...)
}

// ErrEntityTooLarge is 413 RequestEntityTooLargeException (an upload or
// request body over its limit).
func ErrEntityTooLarge(format string, args ...any) *Error {
	return newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "User", format, args...)
}

// ErrRequestTooLarge is 413 RequestTooLargeException (an Invoke payload over
// its limit).
func ErrRequestTooLarge(format string, args ...any) *Error {
	return newError(http.StatusRequestEntityTooLarge, "RequestTooLargeException", "User", format, args...)
}

// ErrTooManyRequests is 429 TooManyRequestsException with the throttle's
// Reason (e.g. "ConcurrentInvocationLimitExceeded").
func ErrTooManyRequests(reason string) *Error {
	e := newError(http.StatusTooManyRequests, "TooManyRequestsException", "User", "Rate Exceeded.")
	e.Reason = reason
	return e
}

// ErrService is 500 ServiceException: Lamina failed, not the caller.
func ErrService(format string, args ...any) *Error {
	return newError(http.StatusInternalServerError, "ServiceException", "Service", format, args...)
}

// ErrUnknownOperation is 404 UnknownOperationException for a route no
// operation serves.
func ErrUnknownOperation() *Error {
	return newError(http.StatusNotFound, "UnknownOperationException", "", "Unknown operation")
}

// Violations collects constraint violations of one request and turns them
// into AWS's ValidationException ("2 validation errors detected: ...").
type Violations []string

// Add records that value at field failed constraint, in AWS's words.
func (v *Violations) Add(value any, field, constraint string) {
	*v = append(*v, fmt.Sprintf("Value '%v' at '%s' failed to satisfy constraint: %s", value, field, constraint))
}

// AddMissing records that a required field was not given.
func (v *Violations) AddMissing(field string) {
	*v = append(*v, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", field))
}

// AddSensitive records a violation without quoting the value, as AWS does
// for fields that may hold secrets (environment variables).
func (v *Violations) AddSensitive(field, constraint string) {
	*v = append(*v, fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", field, constraint))
}

// Err returns nil when nothing was added, else a 400 ValidationException
// listing every violation.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	noun := "error"
	if len(v) > 1 {
		noun = "errors"
	}
	return newError(http.StatusBadRequest, "ValidationException", "",
		"%d validation %s detected: %s", len(v), noun, strings.Join(v, "; "))
}
