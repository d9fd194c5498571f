// Package targets delivers events to the resources Lamina's services send
// events to — a function's destinations and dead-letter target, an
// EventBridge rule's targets, an SNS topic's subscriptions: functions (as
// asynchronous invocations, through the durable async queue), SQS queues,
// SNS topics and EventBridge event buses, each named by its ARN.
//
// A delivery a service makes on behalf of one of its resources (SNS for a
// topic, EventBridge for a rule) names that service's principal: a function
// is invoked only if its resource-based policy allows the principal to
// invoke it for the resource, as AWS checks (policy.Checker.MayInvoke).
package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/recursion"
	"github.com/lamina-project/lamina/internal/services/sqs"
)

// Kind is the kind of resource an ARN names.
type Kind string

// The kinds of targets.
const (
	Function Kind = "function"
	Queue    Kind = "queue"
	Topic    Kind = "topic"
	Bus      Kind = "bus"
)

// Attribute is a message attribute of a delivery to a queue or topic.
type Attribute struct {
	DataType    string // String, String.Array, Number or Binary (and custom suffixes: "Number.float")
	StringValue string
	BinaryValue []byte
}

// Message is one delivery.
type Message struct {
	// ID, when set, identifies the delivery: an asynchronous invocation
	// takes it as its request ID, which the async queue deduplicates, so a
	// delivery made again (after a crash) runs once.
	ID string
	// Payload is the event: a function's input, a queue message's body, a
	// topic message, an event's detail.
	Payload []byte
	// Attributes are message attributes of a queue message or topic
	// message.
	Attributes map[string]Attribute
	// Subject is a topic message's subject.
	Subject string
	// Source and DetailType name the event put on a bus.
	Source, DetailType string
	// Resources are the event's resources on a bus.
	Resources []string
	// GroupID is the MessageGroupId of a message to a FIFO queue.
	GroupID string
	// Principal, when set, is the service that delivers on behalf of
	// SourceArn (policy.PrincipalSNS, policy.PrincipalEvents): a function
	// is invoked only if its policy allows it.
	Principal, SourceArn string
	// Trace, when set, is the trace header (X-Amzn-Trace-Id) of the call
	// that caused the delivery (a function's publish): its lineage counts
	// the rounds of a recursive loop, which Loops stops.
	Trace string
}

// Functions queues asynchronous invocations (the async dispatcher).
type Functions interface {
	// SubmitAsync queues an asynchronous invocation durably.
	SubmitAsync(ctx context.Context, requestID, function, qualifier, trace string, payload []byte) error
}

// Topics publishes to SNS topics (the SNS service).
type Topics interface {
	// PublishTo publishes m to the topic arn names.
	PublishTo(ctx context.Context, arn string, m *Message) error
}

// Buses puts events on EventBridge buses (the EventBridge service).
type Buses interface {
	// PutTo puts m as an event on the bus arn names.
	PutTo(ctx context.Context, arn string, m *Message) error
}

// ErrNotPermitted is returned for a delivery to a function whose policy
// does not allow the delivering service to invoke it.
var ErrNotPermitted = errors.New("the function's resource-based policy does not allow the service to invoke it")

// Router delivers messages by their targets' ARNs. Its parts are set once
// before use (the topics and buses are made after the router they use);
// it is then safe for concurrent use.
type Router struct {
	Region, AccountID string
	Functions         Functions
	Queues            *sqs.Service
	Topics            Topics
	Buses             Buses
	Policies          *policy.Checker
	// Loops, when set, stops recursive loops through topics: a topic's
	// delivery to a function of a message whose trace continues a loop
	// past its limit is dropped (recursion.Guard). Resolve finds the function's
	// $LATEST, which holds its RecursiveLoop setting.
	Loops   *recursion.Guard
	Resolve func(ctx context.Context, function, qualifier string) (*lamina.Function, error)
}

// Parse returns the kind of target an ARN names, or an error saying why
// Lamina cannot deliver to it.
func (r *Router) Parse(arn string) (Kind, error) { return Parse(r.Region, r.AccountID, arn) }

// Parse returns the kind of target an ARN names, or an error saying why a
// deployment of region and account cannot deliver to it.
func Parse(region, account, arn string) (Kind, error) {
	kind, arnRegion, arnAccount, err := parse(arn)
	if err != nil {
		return "", err
	}
	if arnRegion != region || arnAccount != account {
		return "", fmt.Errorf("%s is not in this deployment's region (%s) and account (%s)", arn, region, account)
	}
	return kind, nil
}

func parse(arn string) (kind Kind, region, account string, err error) {
	if region, account, _, _, ok := lamina.ParseFunctionARN(arn); ok {
		return Function, region, account, nil
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") {
		return "", "", "", fmt.Errorf("%s is not an ARN", arn)
	}
	service, region, account, resource := parts[2], parts[3], parts[4], parts[5]
	switch {
	case service == "sqs" && resource != "" && !strings.ContainsAny(resource, ":/"):
		kind = Queue
	case service == "sns" && resource != "" && !strings.ContainsAny(resource, ":/"):
		kind = Topic
	case service == "events" && strings.HasPrefix(resource, "event-bus/") && len(resource) > len("event-bus/"):
		kind = Bus
	default:
		return "", "", "", fmt.Errorf("%s is not a function, SQS queue, SNS topic or EventBridge event bus ARN", arn)
	}
	return kind, region, account, nil
}

// Deliver sends m to the resource arn names. It returns ErrNotPermitted
// (wrapped) when a function's policy refuses m's principal, and the
// target's errors (a queue or topic that does not exist) otherwise.
func (r *Router) Deliver(ctx context.Context, arn string, m *Message) error {
	kind, err := r.Parse(arn)
	if err != nil {
		return err
	}
	switch kind {
	case Function:
		return r.invoke(ctx, arn, m)
	case Queue:
		q, err := r.Queues.QueueByARN(ctx, arn)
		if err != nil {
			return err
		}
		out := &sqs.OutgoingMessage{Body: string(m.Payload), GroupID: m.GroupID}
		if q.FIFO() && out.GroupID == "" {
			out.GroupID = "lamina"
		}
		if q.FIFO() {
			out.DeduplicationID = m.ID
		}
		if len(m.Attributes) > 0 {
			out.Attributes = make(map[string]sqs.MessageAttribute, len(m.Attributes))
			for name, a := range m.Attributes {
				out.Attributes[name] = sqs.MessageAttribute{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
			}
		}
		_, err = q.Send(ctx, out)
		return err
	case Topic:
		if r.Topics == nil {
			return fmt.Errorf("topics are not served")
		}
		return r.Topics.PublishTo(ctx, arn, m)
	default:
		if r.Buses == nil {
			return fmt.Errorf("event buses are not served")
		}
		return r.Buses.PutTo(ctx, arn, m)
	}
}

// invoke queues a function's asynchronous invocation, if its policy allows
// m's principal.
func (r *Router) invoke(ctx context.Context, arn string, m *Message) error {
	_, _, name, qualifier, _ := lamina.ParseFunctionARN(arn)
	if m.Principal != "" {
		ok, err := r.Policies.MayInvoke(ctx, policy.ServiceInvocation{Service: m.Principal, Function: arn,
			SourceArn: m.SourceArn, SourceAccount: r.AccountID})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w (%s for %s; aws lambda add-permission)", ErrNotPermitted, m.Principal, m.SourceArn)
		}
	}
	trace := m.Trace
	if r.Loops != nil && r.Resolve != nil && m.Principal == policy.PrincipalSNS {
		// The function's $LATEST holds its RecursiveLoop setting; a
		// function not found is the invocation's to report.
		if fn, err := r.Resolve(ctx, name, ""); err == nil {
			var ok bool
			if trace, ok = r.Loops.Admit(fn, trace, m.SourceArn); !ok {
				return nil // stopped, counted and logged
			}
		}
	}
	return r.Functions.SubmitAsync(ctx, m.ID, name, qualifier, trace, m.Payload)
}
