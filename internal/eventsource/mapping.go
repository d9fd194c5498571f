// Package eventsource is Lambda's event source mappings: records of which
// function a queue (and, later, a stream) feeds, the API that manages them
// (CreateEventSourceMapping…, served by the frontend), and the pollers that
// read the sources and invoke the functions through the worker manager.
//
// The mappings are kept in the store (a Table, on every node). Every node
// runs a Supervisor, which moves mappings through their states (Creating →
// Enabled…) and runs the pollers of an enabled mapping while it holds the
// mapping's lease: in a cluster, each mapping is polled by one node at a
// time, which takes it over when that node goes.
//
// What a kind of source does (SQS queues, Kinesis streams) is behind
// Source: it checks a mapping's parameters and polls.
package eventsource

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/eventpattern"
)

// Mapping states, as Lambda shows them.
const (
	StateCreating = "Creating"
	StateEnabled  = "Enabled"
	StateDisabled = "Disabled"
	StateUpdating = "Updating"
	StateDeleting = "Deleting"
)

// ReportBatchItemFailures is the FunctionResponseTypes value with which a
// function reports which records of a batch failed.
const ReportBatchItemFailures = "ReportBatchItemFailures"

// Configuration is an EventSourceMappingConfiguration, as the API shows it.
type Configuration struct {
	UUID                           string
	EventSourceMappingArn          string
	EventSourceArn                 string
	FunctionArn                    string
	LastModified                   float64 // unix seconds
	State                          string
	StateTransitionReason          string
	LastProcessingResult           string          `json:",omitempty"`
	BatchSize                      int             `json:",omitempty"`
	MaximumBatchingWindowInSeconds *int            `json:",omitempty"`
	FilterCriteria                 *FilterCriteria `json:",omitempty"`
	FunctionResponseTypes          []string        `json:",omitempty"`
	ScalingConfig                  *ScalingConfig  `json:",omitempty"`

	// Streams' parameters.
	StartingPosition           string             `json:",omitempty"`
	StartingPositionTimestamp  *float64           `json:",omitempty"`
	ParallelizationFactor      int                `json:",omitempty"`
	BisectBatchOnFunctionError *bool              `json:",omitempty"`
	MaximumRetryAttempts       *int               `json:",omitempty"`
	MaximumRecordAgeInSeconds  *int               `json:",omitempty"`
	TumblingWindowInSeconds    *int               `json:",omitempty"`
	DestinationConfig          *DestinationConfig `json:",omitempty"`
}

// DestinationConfig is where a stream mapping sends what it gives up on.
type DestinationConfig struct {
	OnFailure *OnFailure `json:",omitempty"`
}

// OnFailure names the destination of records a mapping gives up on.
type OnFailure struct {
	Destination string `json:",omitempty"`
}

// FilterCriteria are a mapping's filters: a record is processed when one
// matches it.
type FilterCriteria struct {
	Filters []Filter
}

// Filter is one event pattern.
type Filter struct {
	Pattern string
}

// ScalingConfig bounds the concurrent invocations of an SQS mapping.
type ScalingConfig struct {
	MaximumConcurrency int `json:",omitempty"`
}

// Mapping is a mapping as the store keeps it: its configuration, and what
// the API does not show.
type Mapping struct {
	Configuration
	// Enabled is what the user asked for; State follows it.
	Enabled bool
	// Function and Qualifier name what is invoked.
	Function, Qualifier string
	// Generation counts the changes of the configuration: a poller runs
	// one generation, and restarts when it changes.
	Generation int
}

// Input is the body of CreateEventSourceMapping and
// UpdateEventSourceMapping. Parameters of sources Lamina does not poll yet
// are refused.
type Input struct {
	EventSourceArn                 string
	FunctionName                   string
	Enabled                        *bool
	BatchSize                      *int
	MaximumBatchingWindowInSeconds *int
	FilterCriteria                 *FilterCriteria
	FunctionResponseTypes          *[]string
	ScalingConfig                  *ScalingConfig

	// Stream parameters: not for SQS.
	StartingPosition           *string
	StartingPositionTimestamp  *float64
	ParallelizationFactor      *int
	BisectBatchOnFunctionError *bool
	MaximumRetryAttempts       *int
	MaximumRecordAgeInSeconds  *int
	TumblingWindowInSeconds    *int
	DestinationConfig          json.RawMessage
	// Other sources' parameters.
	Topics, Queues                      json.RawMessage
	SourceAccessConfigurations          json.RawMessage
	SelfManagedEventSource              json.RawMessage
	SelfManagedKafkaEventSourceConfig   json.RawMessage
	AmazonManagedKafkaEventSourceConfig json.RawMessage
	DocumentDBEventSourceConfig         json.RawMessage
}

// Bounds of a mapping, Lambda's.
const (
	maxBatchSize      = 10000
	maxBatchingWindow = 300
	maxFilters        = 5
	minConcurrency    = 2
	maxConcurrency    = 1000
)

// invalid is 400 InvalidParameterValueException.
func invalid(format string, args ...any) error {
	return lamina.ErrInvalidParameter(format, args...)
}

// applyCommon checks and applies the parameters every source takes.
func applyCommon(m *Mapping, in *Input) error {
	if in.BatchSize != nil {
		if *in.BatchSize < 1 || *in.BatchSize > maxBatchSize {
			return invalid("BatchSize must be between 1 and %d.", maxBatchSize)
		}
		m.BatchSize = *in.BatchSize
	}
	if w := in.MaximumBatchingWindowInSeconds; w != nil {
		if *w < 0 || *w > maxBatchingWindow {
			return invalid("MaximumBatchingWindowInSeconds must be between 0 and %d.", maxBatchingWindow)
		}
		m.MaximumBatchingWindowInSeconds = w
	}
	if fc := in.FilterCriteria; fc != nil {
		if len(fc.Filters) > maxFilters {
			return invalid("FilterCriteria may hold at most %d filters.", maxFilters)
		}
		for _, f := range fc.Filters {
			if _, err := eventpattern.Compile(f.Pattern); err != nil {
				return invalid("Invalid filter pattern definition: %v.", err)
			}
		}
		m.FilterCriteria = fc
		if len(fc.Filters) == 0 {
			m.FilterCriteria = nil
		}
	}
	if t := in.FunctionResponseTypes; t != nil {
		for _, v := range *t {
			if v != ReportBatchItemFailures {
				return invalid("Invalid FunctionResponseType %q: it must be %s.", v, ReportBatchItemFailures)
			}
		}
		m.FunctionResponseTypes = slices.Compact(slices.Clone(*t))
		if len(m.FunctionResponseTypes) == 0 {
			m.FunctionResponseTypes = nil
		}
	}
	if in.Enabled != nil {
		m.Enabled = *in.Enabled
	}
	return nil
}

// reportsItemFailures reports whether the function reports partial batch
// failures.
func (m *Mapping) reportsItemFailures() bool {
	return slices.Contains(m.FunctionResponseTypes, ReportBatchItemFailures)
}

// batchingWindow is the mapping's MaximumBatchingWindowInSeconds.
func (m *Mapping) batchingWindow() time.Duration {
	if m.MaximumBatchingWindowInSeconds == nil {
		return 0
	}
	return time.Duration(*m.MaximumBatchingWindowInSeconds) * time.Second
}

// filters compiles the mapping's filters (checked when they were set).
func (m *Mapping) filters() []*eventpattern.Pattern {
	if m.FilterCriteria == nil {
		return nil
	}
	var out []*eventpattern.Pattern
	for _, f := range m.FilterCriteria.Filters {
		if p, err := eventpattern.Compile(f.Pattern); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// resourceNotFound is 404 ResourceNotFoundException for a mapping.
func resourceNotFound(uuid string) error {
	return &lamina.Error{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Type: "User",
		Message: "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: " + uuid + ")"}
}

// resourceInUse is 400 ResourceInUseException: the mapping is between
// states.
func resourceInUse(uuid, state string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceInUseException", Type: "User",
		Message: "Cannot update the event source mapping " + uuid + " because it is in use (" + strings.ToLower(state) + ")."}
}
