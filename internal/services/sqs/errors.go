package sqs

import (
	"fmt"
	"net/http"

	"github.com/lamina-project/lamina/internal/awsproto"
)

// SQS's errors: the shape name clients match (JSON __type), and the query
// protocol's code (also sent as x-amzn-query-error), from SQS's model.

func sqsError(status int, shape, queryCode, format string, args ...any) *awsproto.Error {
	return &awsproto.Error{Status: status, Code: shape, QueryCode: queryCode, Message: fmt.Sprintf(format, args...)}
}

// ErrQueueDoesNotExist is QueueDoesNotExist
// (AWS.SimpleQueueService.NonExistentQueue).
func ErrQueueDoesNotExist() *awsproto.Error {
	return sqsError(http.StatusBadRequest, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
		"The specified queue does not exist.")
}

func errQueueNameExists(attribute string) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "QueueNameExists", "QueueAlreadyExists",
		"A queue already exists with the same name and a different value for attribute %s", attribute)
}

func errInvalidAttributeName(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "InvalidAttributeName", "", format, args...)
}

func errInvalidAttributeValue(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "InvalidAttributeValue", "", format, args...)
}

func errInvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.InvalidParameterValue(format, args...)
}

func errMissingParameter(name string) *awsproto.Error {
	return awsproto.MissingParameter(name)
}

func errInvalidMessageContents(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "InvalidMessageContents", "", format, args...)
}

// ErrReceiptHandleIsInvalid is ReceiptHandleIsInvalid.
func ErrReceiptHandleIsInvalid(handle string) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "ReceiptHandleIsInvalid", "",
		"The input receipt handle \"%s\" is not a valid receipt handle.", handle)
}

// ErrMessageNotInflight is MessageNotInflight: the message's visibility
// timeout has ended.
func ErrMessageNotInflight() *awsproto.Error {
	return sqsError(http.StatusBadRequest, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
		"Message does not exist or is not available for visibility timeout change.")
}

func errPurgeInProgress(queue string) *awsproto.Error {
	return sqsError(http.StatusForbidden, "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress",
		"Only one PurgeQueue operation on %s is allowed every 60 seconds.", queue)
}

// errOverLimit is OverLimit: a bound on what a queue or the account holds.
func errOverLimit(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusForbidden, "OverLimit", "OverLimit", format, args...)
}

// errThrottled is RequestThrottled, which the SDKs retry with backoff.
func errThrottled(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "RequestThrottled", "RequestThrottled", format, args...)
}

func errTooManyEntries(n int) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"Maximum number of entries per request are %d. You have sent %d.", maxBatchEntries, n)
}

func errEmptyBatch() *awsproto.Error {
	return sqsError(http.StatusBadRequest, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
		"There should be at least one entry in the request.")
}

func errBatchIDsNotDistinct(id string) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
		"Id %s repeated.", id)
}

func errInvalidBatchEntryID(id string) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
		"A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long. Id %q is not.", id)
}

func errBatchTooLong(size, limit int) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
		"Batch requests cannot be longer than %d bytes. You have sent %d bytes.", limit, size)
}

func errUnsupported(format string, args ...any) *awsproto.Error {
	return sqsError(http.StatusBadRequest, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", format, args...)
}
