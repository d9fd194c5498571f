package kinesis

import (
	"fmt"
	"net/http"

	"github.com/lamina-project/lamina/internal/awsproto"
)

// Kinesis's errors: 400 with the shape's name as __type.

func errNotFound(arn string) error {
	return awsproto.Errorf(http.StatusBadRequest, "ResourceNotFoundException", "Stream %s not found.", arn)
}

func errInvalidArgument(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "InvalidArgumentException", format, args...)
}

func errValidation(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

func errInUse(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ResourceInUseException", format, args...)
}

func errLimitExceeded(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "LimitExceededException", format, args...)
}

func errExpiredIterator(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ExpiredIteratorException", format, args...)
}

// errThroughput is a write or read over a shard's rate (or the streams'
// storage, full).
func errThroughput(msg string) error {
	return awsproto.Errorf(http.StatusBadRequest, "ProvisionedThroughputExceededException", "%s", msg)
}

// throughputMessage says which shard's rate was exceeded.
func (s *Service) throughputMessage(r *streamRecord, shard int) string {
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", ShardID(shard), r.Name, s.cfg.AccountID)
}
