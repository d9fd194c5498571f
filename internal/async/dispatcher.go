package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Manager runs invocations: the worker manager (*manager.Manager), seen
// from the dispatcher.
type Manager interface {
	// Resolve returns the function version an event of function with
	// qualifier runs (an alias's weighted routing chooses here), or an
	// error wrapping store.ErrNotFound when the function, version or alias
	// no longer exists: its events are then dropped, as Lambda does.
	Resolve(ctx context.Context, function, qualifier string) (*lamina.Function, error)
	// Invoke runs an invocation of a version Resolve returned. Errors are
	// throttles and Lamina's failures; a function's failure is a result.
	Invoke(ctx context.Context, req *lamina.Invocation) (*lamina.InvocationResult, error)
}

// ConfigSource returns the event invoke config of a function qualifier, nil
// when there is none.
type ConfigSource func(ctx context.Context, function, qualifier string) (*lamina.EventInvokeConfig, error)

// Config is what a dispatcher needs.
type Config struct {
	Region    string
	AccountID string
	Queue     *Queue
	Manager   Manager
	Configs   ConfigSource
	// Deliver sends a destination's record or a dead-letter message to the
	// function, queue, topic or event bus its ARN names (a
	// targets.Router's Deliver).
	Deliver func(ctx context.Context, arn string, m *targets.Message) error
	// TimeScale multiplies every async delay — retry waits, throttle
	// backoff, maximum event age and the acknowledgement deadline — so that
	// tests run in seconds. Zero means 1 (AWS's timings).
	TimeScale float64
	// Concurrency bounds the async invocations of one function that run at
	// once on this node.
	Concurrency int
	Metrics     *Metrics
	Logger      *slog.Logger
}

// Retry waits after the first and second function errors, and the bounds of
// the backoff of throttled or failed-to-start events (AWS's).
var (
	retryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	minBackoff  = time.Second
	maxBackoff  = 5 * time.Minute
	// ackWait is how long a delivered event may go unacknowledged before
	// JetStream delivers it again (after a crash); running invocations renew
	// it.
	ackWait = 30 * time.Second
	// idleStop is how long a function's dispatcher waits for events before
	// it stops (it starts again with the next event).
	idleStop = 5 * time.Minute
)

// Dispatcher runs queued events. It is safe for concurrent use.
type Dispatcher struct {
	cfg Config
	log *slog.Logger
	ctx context.Context

	mu     sync.Mutex
	queues map[string]bool // functions whose dispatcher runs
}

// NewDispatcher returns a dispatcher; Run starts it.
func NewDispatcher(cfg Config) *Dispatcher {
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Metrics.reg != nil {
		cfg.Metrics.reg.MustRegister(queueGauges{cfg.Queue})
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger.With("part", "async"), queues: map[string]bool{}}
}

// scaled applies the time scale to d.
func (d *Dispatcher) scaled(dur time.Duration) time.Duration {
	return time.Duration(float64(dur) * d.cfg.TimeScale)
}

// Run starts a dispatcher for every function with waiting events and
// serves until ctx ends. It looks again for functions with waiting events
// every rescanInterval — in a cluster, events accepted by other nodes; the
// nodes that find them share each function's consumer — and each time
// storage heals (JetStream's streams were reopened, so pulls may have failed
// meanwhile). Invocations still running when ctx ends are abandoned
// unacknowledged: JetStream delivers their events again after a restart.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	names, err := d.cfg.Queue.pendingFunctions(ctx)
	if err != nil {
		return err
	}
	rescan := time.NewTicker(rescanInterval)
	defer rescan.Stop()
	for {
		for _, name := range names {
			d.dispatchEvents(name)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-rescan.C:
		case <-d.cfg.Queue.health.Recovered():
		}
		if names, err = d.cfg.Queue.pendingFunctions(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("cannot list the functions with waiting async events", "err", err)
		}
	}
}

// SubmitAsync queues a function's asynchronous invocation (with requestID,
// or a new one when empty, and the trace header trace, or a new one when
// empty): the dispatcher as targets.Functions.
func (d *Dispatcher) SubmitAsync(ctx context.Context, requestID, function, qualifier, trace string, payload []byte) error {
	return d.Submit(ctx, &Event{RequestID: requestID, Function: function, Qualifier: qualifier, TraceID: trace, Payload: payload})
}

// Submit queues a new event durably (when it returns nil, the event will
// run) and makes sure its function's events are being dispatched.
func (d *Dispatcher) Submit(ctx context.Context, ev *Event) error {
	if err := d.cfg.Queue.Enqueue(ctx, ev); err != nil {
		return err
	}
	d.accepted(ev.Function)
	return nil
}

// accepted counts an event accepted for function and makes sure the
// function's events are being dispatched.
func (d *Dispatcher) accepted(function string) {
	d.cfg.Metrics.received.WithLabelValues(function).Inc()
	d.dispatchEvents(function)
}

// dispatchEvents starts the dispatcher of function unless it runs.
func (d *Dispatcher) dispatchEvents(function string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil || d.ctx.Err() != nil || d.queues[function] {
		return
	}
	d.queues[function] = true
	go func() {
		if err := d.dispatch(d.ctx, function); err != nil && d.ctx.Err() == nil {
			d.log.Error("async dispatcher stopped", "function", function, "err", err)
		}
		d.mu.Lock()
		delete(d.queues, function)
		d.mu.Unlock()
	}()
}

// dispatch pulls function's events and runs up to Concurrency at once,
// until ctx ends or no event came for idleStop. When pulling fails (storage
// unavailable, JetStream reopening its streams) it waits for storage to heal
// and pulls again.
func (d *Dispatcher) dispatch(ctx context.Context, function string) error {
	slots := make(chan struct{}, d.cfg.Concurrency)
	var running sync.WaitGroup
	defer running.Wait()
	lastEvent := time.Now()
	for ctx.Err() == nil {
		cons, err := d.cfg.Queue.js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
			Durable:       "async-" + function,
			FilterSubject: subjectPrefix + function,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       d.ackWait(),
			MaxDeliver:    -1,
			MaxAckPending: 4 * d.cfg.Concurrency,
		})
		if err == nil {
			var idle bool
			idle, err = d.pull(ctx, cons, slots, &running, &lastEvent)
			if idle || ctx.Err() != nil {
				return nil
			}
		}
		d.log.Warn("async events cannot be pulled; waiting for storage", "function", function, "err", err)
		select {
		case <-ctx.Done():
		case <-d.cfg.Queue.health.Recovered():
		case <-time.After(pullRetry):
		}
	}
	return nil
}

// A dispatcher pulls again, newConsumerRetries times at most and
// newConsumerWait apart, while no server answers its pulls.
const (
	newConsumerRetries = 20
	newConsumerWait    = 25 * time.Millisecond
)

// rescanInterval is how often Run looks for functions with waiting events
// that no dispatcher of this node pulls.
const rescanInterval = 5 * time.Second

// pullRetry is how long a dispatcher whose pulls failed waits before it
// tries again, unless storage heals first.
const pullRetry = 5 * time.Second

// pull fetches events from cons and runs them until ctx ends, pulling fails
// (the error is returned) or no event came for idleStop (idle is true).
func (d *Dispatcher) pull(ctx context.Context, cons jetstream.Consumer, slots chan struct{}, running *sync.WaitGroup, lastEvent *time.Time) (idle bool, err error) {
	unknown := 0 // pulls in a row that no server answered
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false, nil
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			<-slots
			return false, fmt.Errorf("fetch: %w", err)
		}
		got := false
		for msg := range batch.Messages() {
			got = true
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { <-slots }()
				d.handle(ctx, msg)
			}()
		}
		if !got {
			<-slots
			err := batch.Error()
			if errors.Is(err, nats.ErrNoResponders) && unknown < newConsumerRetries {
				// In a cluster, the server this node asks may not know yet
				// of a consumer just made on another.
				unknown++
				time.Sleep(newConsumerWait)
				continue
			}
			if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
				return false, fmt.Errorf("fetch: %w", err)
			}
			unknown = 0
			if time.Since(*lastEvent) > idleStop {
				return true, nil
			}
			continue
		}
		*lastEvent = time.Now()
	}
	return false, nil
}

func (d *Dispatcher) ackWait() time.Duration {
	return max(2*time.Second, d.scaled(ackWait))
}

// handle runs one delivered event through Lambda's error handling.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) {
	ev, err := decodeEvent(msg)
	if err != nil {
		d.log.Error("unreadable async event dropped", "subject", msg.Subject(), "err", err)
		d.cfg.Metrics.dropped.WithLabelValues(msg.Subject()[len(subjectPrefix):]).Inc()
		_ = msg.Term()
		return
	}
	log := d.log.With("function", ev.Function, "request_id", ev.RequestID)
	if wait := time.Until(ev.NotBefore); wait > 0 {
		_ = msg.NakWithDelay(wait)
		return
	}
	cfg, err := d.cfg.Configs(ctx, ev.Function, ev.Qualifier)
	if err != nil {
		d.retryLater(msg, log, err)
		return
	}
	if d.expired(ev, cfg) {
		d.fail(ctx, msg, ev, cfg, conditionEventAgeExceeded, nil, log)
		return
	}
	fn, err := d.cfg.Manager.Resolve(ctx, ev.Function, ev.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("async event dropped: the function no longer exists")
		d.cfg.Metrics.dropped.WithLabelValues(ev.Function).Inc()
		_ = msg.Ack()
		return
	}
	if err != nil {
		d.retryLater(msg, log, err)
		return
	}

	res, err := d.invoke(ctx, msg, ev, fn)
	if ctx.Err() != nil {
		// Shutting down: the end of this run is not the function's doing.
		// Left unacknowledged, the event runs again after a restart.
		return
	}
	if err != nil { // a throttle or a failure to run: not the function's error
		d.retryLater(msg, log, err)
		return
	}
	ev.Attempts++
	switch {
	case res.FunctionError == "":
		// The function ran: whatever becomes of its record, it must not run
		// again for this event.
		if err := d.deliver(ctx, cfg.OnSuccessTarget(), d.destinationMessage(ev, fn, conditionSuccess, res)); err != nil {
			log.Error("async success record lost", "destination", cfg.OnSuccessTarget(), "err", err)
			d.cfg.Metrics.dropped.WithLabelValues(ev.Function).Inc()
		}
		d.cfg.Metrics.succeeded.WithLabelValues(ev.Function).Inc()
		_ = msg.Ack()
	case ev.Attempts <= cfg.RetryAttempts():
		delay := d.scaled(retryDelays[min(ev.Attempts, len(retryDelays))-1])
		retry := *ev
		retry.NotBefore = time.Now().Add(delay)
		// Publish the retry before acknowledging: a crash in between runs
		// the event once more, never loses it.
		if err := d.cfg.Queue.Enqueue(ctx, &retry); err != nil {
			d.retryLater(msg, log, err)
			return
		}
		log.Info("async event failed; retrying", "attempt", ev.Attempts, "error_type", res.ErrorType, "delay", delay)
		d.cfg.Metrics.retried.WithLabelValues(ev.Function).Inc()
		_ = msg.Ack()
	default:
		d.fail(ctx, msg, ev, cfg, conditionRetriesExhausted, res, log)
	}
}

// invoke runs the event, telling JetStream it is still being worked on
// while the function runs (it may run for up to 15 minutes).
func (d *Dispatcher) invoke(ctx context.Context, msg jetstream.Msg, ev *Event, fn *lamina.Function) (*lamina.InvocationResult, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(d.ackWait() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	invoked := lamina.FunctionARN(d.cfg.Region, d.cfg.AccountID, ev.Function)
	if ev.Qualifier != "" {
		invoked += ":" + ev.Qualifier
	}
	return d.cfg.Manager.Invoke(ctx, &lamina.Invocation{
		RequestID:  ev.RequestID,
		Function:   fn,
		InvokedARN: invoked,
		Payload:    ev.Payload,
		TraceID:    ev.TraceID,
	})
}

// expired reports whether ev is older than its maximum event age.
func (d *Dispatcher) expired(ev *Event, cfg *lamina.EventInvokeConfig) bool {
	return time.Since(ev.Received) > d.scaled(time.Duration(cfg.MaxEventAge())*time.Second)
}

// retryLater puts an event that could not run (throttled, or a failure of
// Lamina's) back in the queue with exponential backoff. Its age keeps
// growing; once past the maximum it goes to the failure handling.
func (d *Dispatcher) retryLater(msg jetstream.Msg, log *slog.Logger, cause error) {
	deliveries := uint64(1)
	if meta, err := msg.Metadata(); err == nil {
		deliveries = meta.NumDelivered
	}
	backoff := minBackoff << min(deliveries-1, 16)
	backoff = d.scaled(min(backoff, maxBackoff))
	log.Debug("async event postponed", "cause", cause, "backoff", backoff)
	d.cfg.Metrics.throttled.WithLabelValues(msg.Subject()[len(subjectPrefix):]).Inc()
	_ = msg.NakWithDelay(backoff)
}

// fail sends an event that ran out of retries or age to the on-failure
// destination, else to the dead-letter target, else drops it with a log line.
func (d *Dispatcher) fail(ctx context.Context, msg jetstream.Msg, ev *Event, cfg *lamina.EventInvokeConfig,
	condition string, res *lamina.InvocationResult, log *slog.Logger) {
	fn, _ := d.cfg.Manager.Resolve(ctx, ev.Function, ev.Qualifier)
	var target, kind string
	var m *targets.Message
	switch {
	case cfg.OnFailureTarget() != "":
		target, kind, m = cfg.OnFailureTarget(), "destination", d.destinationMessage(ev, fn, condition, res)
	case fn != nil && fn.Configuration.DeadLetterConfig != nil && fn.Configuration.DeadLetterConfig.TargetArn != "":
		target, kind, m = fn.Configuration.DeadLetterConfig.TargetArn, "dead-letter", deadLetter(ev, condition, res)
	}
	failure := &Failure{Time: time.Now(), RequestID: ev.RequestID, Condition: condition, Attempts: ev.Attempts, SentTo: target}
	if res != nil {
		failure.ErrorType = res.ErrorType
	}
	if target == "" {
		log.Warn("async event dropped: no destination or dead-letter target", "condition", condition, "attempts", ev.Attempts)
		d.cfg.Metrics.dropped.WithLabelValues(ev.Function).Inc()
		d.noteFailure(ctx, ev.Function, failure, log)
		_ = msg.Ack()
		return
	}
	if err := d.deliver(ctx, target, m); err != nil {
		// Running the function again would not help: count the event as
		// dropped, with the reason in the log.
		log.Error("async failure record lost", "sent_to", target, "err", err)
		failure.SentTo = ""
		d.cfg.Metrics.dropped.WithLabelValues(ev.Function).Inc()
		d.noteFailure(ctx, ev.Function, failure, log)
		_ = msg.Ack()
		return
	}
	d.noteFailure(ctx, ev.Function, failure, log)
	log.Info("async event failed", "condition", condition, "attempts", ev.Attempts, "sent_to", target, "as", kind)
	if kind == "dead-letter" {
		d.cfg.Metrics.deadLettered.WithLabelValues(ev.Function).Inc()
	} else {
		d.cfg.Metrics.failedToDestination.WithLabelValues(ev.Function).Inc()
	}
	_ = msg.Ack()
}

// noteFailure keeps the failure among the function's recent ones.
func (d *Dispatcher) noteFailure(ctx context.Context, function string, f *Failure, log *slog.Logger) {
	if err := d.cfg.Queue.recordFailure(ctx, function, f); err != nil {
		log.Warn("could not record an async failure", "err", err)
	}
}

// deliver sends m to a destination or dead-letter target: a function,
// queue, topic or event bus. An empty target delivers nothing.
func (d *Dispatcher) deliver(ctx context.Context, target string, m *targets.Message) error {
	if target == "" {
		return nil
	}
	return d.cfg.Deliver(ctx, target, m)
}

// destinationMessage is what a destination receives: the invocation record,
// as an event of source "lambda" when the destination is an event bus.
func (d *Dispatcher) destinationMessage(ev *Event, fn *lamina.Function, condition string, res *lamina.InvocationResult) *targets.Message {
	detailType := "Lambda Function Invocation Result - Failure"
	if condition == conditionSuccess {
		detailType = "Lambda Function Invocation Result - Success"
	}
	return &targets.Message{Payload: d.record(ev, fn, condition, res), Source: "lambda", DetailType: detailType,
		Resources: []string{d.invokedARN(ev)}}
}

// deadLetter is what a dead-letter queue or topic receives: the event, with
// the RequestID, ErrorCode and ErrorMessage attributes Lambda sets.
func deadLetter(ev *Event, condition string, res *lamina.InvocationResult) *targets.Message {
	code, message := "200", "Event age exceeded before the function ran it ("+condition+")."
	if res != nil {
		var failure struct{ ErrorMessage string }
		if json.Unmarshal(res.Payload, &failure) == nil && failure.ErrorMessage != "" {
			message = failure.ErrorMessage
		} else {
			message = res.ErrorType
		}
	}
	return &targets.Message{Payload: ev.Payload, Attributes: map[string]targets.Attribute{
		"RequestID":    {DataType: "String", StringValue: ev.RequestID},
		"ErrorCode":    {DataType: "Number", StringValue: code},
		"ErrorMessage": {DataType: "String", StringValue: message},
	}}
}

// Record conditions, as Lambda names them.
const (
	conditionSuccess          = "Success"
	conditionRetriesExhausted = "RetriesExhausted"
	conditionEventAgeExceeded = "EventAgeExceeded"
)

// record is the invocation record a destination receives.
func (d *Dispatcher) record(ev *Event, fn *lamina.Function, condition string, res *lamina.InvocationResult) []byte {
	arn := d.invokedARN(ev)
	rec := map[string]any{
		"version":   "1.0",
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"requestContext": map[string]any{
			"requestId":              ev.RequestID,
			"functionArn":            arn,
			"condition":              condition,
			"approximateInvokeCount": ev.Attempts,
		},
		"requestPayload": jsonOrString(ev.Payload),
	}
	if res != nil {
		response := map[string]any{"statusCode": 200, "executedVersion": res.ExecutedVersion}
		if res.FunctionError != "" {
			response["functionError"] = res.FunctionError
		}
		rec["responseContext"] = response
		rec["responsePayload"] = jsonOrString(res.Payload)
	}
	data, _ := json.Marshal(rec) // plain maps always encode
	return data
}

// invokedARN is the qualified ARN of the function version ev ran.
func (d *Dispatcher) invokedARN(ev *Event) string {
	qualifier := ev.Qualifier
	if qualifier == "" {
		qualifier = lamina.LatestVersion
	}
	return lamina.FunctionARN(d.cfg.Region, d.cfg.AccountID, ev.Function) + ":" + qualifier
}

// jsonOrString embeds valid JSON as is and anything else as a string.
func jsonOrString(data []byte) any {
	if json.Valid(data) {
		return json.RawMessage(data)
	}
	return string(data)
}
