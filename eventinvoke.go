package lamina

import "strings"

// Asynchronous invocation defaults and bounds (AWS's).
const (
	DefaultMaximumRetryAttempts     = 2
	MaxMaximumRetryAttempts         = 2
	DefaultMaximumEventAgeInSeconds = 21600
	MinMaximumEventAgeInSeconds     = 60
	MaxMaximumEventAgeInSeconds     = 21600
	// MaxInvokeAsyncPayload is the limit of the legacy InvokeAsync operation.
	MaxInvokeAsyncPayload = 256 * 1024
)

// EventInvokeConfig is a function version's or alias's configuration for
// asynchronous invocation, as the Lambda API shows it.
type EventInvokeConfig struct {
	LastModified             float64 // seconds since the epoch
	FunctionArn              string  // qualified: the version or alias it applies to
	MaximumRetryAttempts     *int    `json:",omitempty"`
	MaximumEventAgeInSeconds *int    `json:",omitempty"`
	DestinationConfig        *DestinationConfig
}

// DestinationConfig names where the records of asynchronous invocations go.
type DestinationConfig struct {
	OnSuccess *Destination
	OnFailure *Destination
}

// Destination is one destination ARN (empty: none).
type Destination struct {
	Destination string `json:",omitempty"`
}

// RetryAttempts returns the configured retries, or the default.
func (c *EventInvokeConfig) RetryAttempts() int {
	if c == nil || c.MaximumRetryAttempts == nil {
		return DefaultMaximumRetryAttempts
	}
	return *c.MaximumRetryAttempts
}

// MaxEventAge returns the configured maximum event age in seconds, or the
// default.
func (c *EventInvokeConfig) MaxEventAge() int {
	if c == nil || c.MaximumEventAgeInSeconds == nil {
		return DefaultMaximumEventAgeInSeconds
	}
	return *c.MaximumEventAgeInSeconds
}

// OnSuccessTarget returns the on-success destination ARN, or "".
func (c *EventInvokeConfig) OnSuccessTarget() string {
	if c == nil || c.DestinationConfig == nil || c.DestinationConfig.OnSuccess == nil {
		return ""
	}
	return c.DestinationConfig.OnSuccess.Destination
}

// OnFailureTarget returns the on-failure destination ARN, or "".
func (c *EventInvokeConfig) OnFailureTarget() string {
	if c == nil || c.DestinationConfig == nil || c.DestinationConfig.OnFailure == nil {
		return ""
	}
	return c.DestinationConfig.OnFailure.Destination
}

// QualifierKey encodes a qualifier for use in store keys, which do not allow
// "$": "$LATEST" becomes "=LATEST".
func QualifierKey(qualifier string) string {
	if qualifier == "" {
		qualifier = LatestVersion
	}
	return strings.ReplaceAll(qualifier, "$", "=")
}
