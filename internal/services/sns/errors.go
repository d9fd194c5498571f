package sns

import (
	"fmt"
	"net/http"

	"github.com/lamina-project/lamina/internal/awsproto"
)

// SNS's errors, as its query protocol names them.

func errInvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusBadRequest, "InvalidParameter", "Invalid parameter: "+format, args...)
}

func errNotFound(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusNotFound, "NotFound", format, args...)
}

func errTopicNotFound() *awsproto.Error { return errNotFound("Topic does not exist") }

func errSubscriptionNotFound() *awsproto.Error { return errNotFound("Subscription does not exist") }

func errLimit(code, format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusForbidden, code, format, args...)
}

func errThrottled() *awsproto.Error {
	return awsproto.Errorf(http.StatusTooManyRequests, "Throttled",
		"Rate exceeded: the node is making as many deliveries as it may at once.")
}

func errBatch(code, format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusBadRequest, code, format, args...)
}

func errMissing(name string) *awsproto.Error {
	return errInvalidParameter("%s", fmt.Sprintf("%s Reason: The parameter %s is required", name, name))
}
