package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// unreachable reports whether err is a connection that could not be made:
// nothing listens there, or the host cannot be found or reached.
func unreachable(err error) bool {
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dns)
}

// retryer retries what the AWS SDK retries, except a connection that
// cannot be made: that is said at once.
func (o *clientOptions) retryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if unreachable(err) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, so.Retryables...)
	})
}

// explain turns a command's error into a sentence a person can act on:
// no server at the endpoint, refused credentials, or AWS's own message
// without the SDK's wrapping.
func explain(err error, endpoint string) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		host := endpoint
		if u, perr := url.Parse(endpoint); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Errorf("nothing answers at %s: start a server with `lamina server`, or point --endpoint (or LAMINA_ENDPOINT) at a running one", host)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId":
			return fmt.Errorf("the server at %s does not know these credentials: unset AWS_ACCESS_KEY_ID to use the local server's, or use the pair it printed at its first start (%s: %s)", endpoint, ae.ErrorCode(), ae.ErrorMessage())
		case "InvalidSignatureException", "SignatureDoesNotMatch":
			return fmt.Errorf("the server at %s refused the signature: check AWS_SECRET_ACCESS_KEY and --region (%s: %s)", endpoint, ae.ErrorCode(), ae.ErrorMessage())
		}
		var op *smithy.OperationError
		if errors.As(err, &op) {
			return fmt.Errorf("%s: %s (%s)", op.Operation(), ae.ErrorMessage(), ae.ErrorCode())
		}
		return fmt.Errorf("%s (%s)", ae.ErrorMessage(), ae.ErrorCode())
	}
	return err
}
