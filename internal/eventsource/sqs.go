package eventsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventpattern"
	"github.com/lamina-project/lamina/internal/services/sqs"
)

// SQS is the SQS queues of this node's queue service as event sources.
//
// A mapping's pollers receive with long polling, collect a batch (up to
// BatchSize messages within MaximumBatchingWindowInSeconds, and 6 MB), and
// invoke the function with it. They start as five (or fewer when the
// function's concurrency is lower), and scale with the backlog: a poller
// that received a full batch starts another, up to the function's
// concurrency (MaxConcurrency); one that found the queue empty stops while
// others remain. A successful batch is deleted from the queue; a failed
// one (a function error, or a throttle that lasted its visibility) stays,
// and is received again when its visibility timeout ends, until the
// queue's RedrivePolicy moves it to the dead-letter queue. With
// ReportBatchItemFailures only the messages the function lists stay.
// Messages no filter matches are deleted, as Lambda does.
type SQS struct {
	Queues            *sqs.Service
	Region, AccountID string
	Logger            *slog.Logger
}

// Owns reports whether arn names a queue.
func (q *SQS) Owns(arn string) bool { return strings.HasPrefix(arn, "arn:aws:sqs:") }

// Bounds of SQS mappings, Lambda's.
const (
	defaultSQSBatchSize = 10
	maxFIFOBatchSize    = 10
	initialPollers      = 5
	// receiveWait is the long poll of a poller with no batch yet.
	receiveWait = 20 * time.Second
	// visibilityMargin is added to a batch's visibility when the batching
	// window and the function's timeout outlast the queue's
	// VisibilityTimeout, as Lambda does.
	visibilityMargin = 30 * time.Second
	// spawnEvery bounds how fast the pollers of a mapping grow.
	spawnEvery = 100 * time.Millisecond
	// deleteConcurrency bounds the deletes of one batch at once.
	deleteConcurrency = 10
)

// Prepare checks an SQS mapping's parameters and fills in its defaults.
func (q *SQS) Prepare(ctx context.Context, m *Mapping, in *Input, fn *lamina.Function) error {
	for name, given := range map[string]bool{
		"StartingPosition": in.StartingPosition != nil, "StartingPositionTimestamp": in.StartingPositionTimestamp != nil,
		"ParallelizationFactor": in.ParallelizationFactor != nil, "BisectBatchOnFunctionError": in.BisectBatchOnFunctionError != nil,
		"MaximumRetryAttempts": in.MaximumRetryAttempts != nil, "MaximumRecordAgeInSeconds": in.MaximumRecordAgeInSeconds != nil,
		"TumblingWindowInSeconds": in.TumblingWindowInSeconds != nil, "DestinationConfig": len(in.DestinationConfig) > 0,
		"Topics": len(in.Topics) > 0, "Queues": len(in.Queues) > 0, "SourceAccessConfigurations": len(in.SourceAccessConfigurations) > 0,
	} {
		if given {
			return invalid("Unsupported %s parameter for SQS event sources.", name)
		}
	}
	queue, err := q.Queues.QueueByARN(ctx, m.EventSourceArn)
	if err != nil {
		var e *awsproto.Error
		if errors.As(err, &e) {
			return invalid("Error occurred while ReceiveMessage. SQS Error Code: %s. Error Message: %s", e.QueryCode, e.Message)
		}
		return err
	}
	if m.BatchSize == 0 {
		m.BatchSize = defaultSQSBatchSize
	}
	if m.MaximumBatchingWindowInSeconds == nil {
		zero := 0
		m.MaximumBatchingWindowInSeconds = &zero
	}
	window := *m.MaximumBatchingWindowInSeconds
	if queue.FIFO() {
		if m.BatchSize > maxFIFOBatchSize {
			return invalid("Batch size for FIFO queues must be between 1 and %d.", maxFIFOBatchSize)
		}
		if window > 0 {
			return invalid("Batching window is not supported for FIFO queues.")
		}
	} else if m.BatchSize > 10 && window < 1 {
		return invalid("Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
	}
	if sc := in.ScalingConfig; sc != nil {
		switch {
		case sc.MaximumConcurrency == 0:
			m.ScalingConfig = nil
		case sc.MaximumConcurrency < minConcurrency || sc.MaximumConcurrency > maxConcurrency:
			return invalid("MaximumConcurrency must be between %d and %d.", minConcurrency, maxConcurrency)
		default:
			m.ScalingConfig = &ScalingConfig{MaximumConcurrency: sc.MaximumConcurrency}
		}
	}
	visibility, err := queue.VisibilityTimeout(ctx)
	if err != nil {
		return err
	}
	if timeout := time.Duration(fn.Configuration.Timeout) * time.Second; visibility < timeout {
		return invalid("Queue visibility timeout: %d seconds is less than Function timeout: %d seconds",
			int(visibility/time.Second), fn.Configuration.Timeout)
	}
	return nil
}

// Poll runs the mapping's pollers until ctx ends or the queue is deleted.
func (q *SQS) Poll(ctx context.Context, m *Mapping, t Target) error {
	queue, err := q.Queues.QueueByARN(ctx, m.EventSourceArn)
	if err != nil {
		return err
	}
	log := q.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := &sqsPoller{queue: queue, m: m, t: t, filters: m.filters(), region: q.Region, ctx: ctx, fail: cancel,
		log: log.With("part", "eventsource", "uuid", m.UUID)}
	for range min(initialPollers, t.MaxConcurrency()) {
		p.spawn()
	}
	<-ctx.Done()
	p.wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// sqsPoller is the pollers of one mapping.
type sqsPoller struct {
	queue   *sqs.Queue
	m       *Mapping
	t       Target
	filters []*eventpattern.Pattern
	region  string
	ctx     context.Context
	fail    context.CancelCauseFunc // stops every poller: the queue is gone
	log     *slog.Logger

	wg        sync.WaitGroup
	active    atomic.Int32
	mu        sync.Mutex
	lastSpawn time.Time
}

// spawn starts a poller.
func (p *sqsPoller) spawn() {
	p.active.Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.poll()
	}()
}

// grow starts another poller if the function's concurrency allows one and
// the last was not started just now.
func (p *sqsPoller) grow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(p.active.Load()) >= p.t.MaxConcurrency() || time.Since(p.lastSpawn) < spawnEvery {
		return
	}
	p.lastSpawn = time.Now()
	p.spawn()
}

// shrink stops the calling poller if others remain; it reports whether
// it should stop.
func (p *sqsPoller) shrink() bool {
	for {
		n := p.active.Load()
		if n <= 1 {
			return false
		}
		if p.active.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// poll is one poller: it collects batches and invokes the function with
// them until the mapping stops.
func (p *sqsPoller) poll() {
	var carry []*sqs.Message // received, not yet in a batch (the 6 MB bound)
	for p.ctx.Err() == nil {
		visibility := p.visibility()
		received := time.Now()
		batch, rest, full, err := p.collect(carry, visibility)
		carry = rest
		if err != nil {
			if isQueueGone(err) {
				p.fail(err)
				return
			}
			if p.ctx.Err() == nil {
				p.log.Warn("receiving from the queue failed", "err", err)
				sleep(p.ctx, time.Second)
			}
			continue
		}
		p.t.ReportLag(oldestAge(batch))
		if len(batch) == 0 {
			if p.shrink() {
				return
			}
			continue
		}
		if full {
			p.grow()
		}
		p.process(batch, received.Add(visibility))
	}
	p.active.Add(-1)
}

// visibility is how long a batch stays invisible: the queue's
// VisibilityTimeout, or, when the batching window and the function's
// timeout outlast it, both and 30 s more.
func (p *sqsPoller) visibility() time.Duration {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, err := p.queue.VisibilityTimeout(ctx)
	if err != nil {
		v = 30 * time.Second
	}
	if need := p.m.batchingWindow() + p.t.Timeout(ctx); need > v {
		v = need + visibilityMargin
	}
	return v
}

// collect receives a batch: up to BatchSize messages, waiting up to the
// batching window for more once one has come, within the sync payload
// bound. It returns what did not fit, and whether the batch is full (a
// backlog).
func (p *sqsPoller) collect(carry []*sqs.Message, visibility time.Duration) (batch, rest []*sqs.Message, full bool, err error) {
	size := 0
	add := func(msgs []*sqs.Message) {
		for i, m := range msgs {
			n := recordSize(m)
			if len(batch) >= p.m.BatchSize || (len(batch) > 0 && size+n > lamina.MaxSyncPayload-1024) {
				rest = append(rest, msgs[i:]...)
				full = true
				return
			}
			batch = append(batch, m)
			size += n
		}
	}
	add(carry)
	var deadline time.Time
	if len(batch) > 0 {
		deadline = time.Now().Add(p.m.batchingWindow())
	}
	for len(rest) == 0 && len(batch) < p.m.BatchSize {
		wait := receiveWait
		if !deadline.IsZero() {
			wait = time.Until(deadline)
			if wait <= 0 {
				break
			}
		}
		msgs, err := p.queue.Receive(p.ctx, sqs.ReceiveOptions{MaxMessages: min(10, p.m.BatchSize-len(batch)),
			Visibility: visibility, Wait: min(wait, receiveWait)})
		if err != nil {
			if len(batch) > 0 && !isQueueGone(err) {
				break // invoke with what there is
			}
			return batch, rest, false, err
		}
		if len(msgs) == 0 && deadline.IsZero() {
			return batch, rest, false, nil
		}
		add(msgs)
		if deadline.IsZero() {
			deadline = time.Now().Add(p.m.batchingWindow())
		}
		if len(msgs) == 10 {
			full = true
		}
	}
	return batch, rest, full || len(batch) >= p.m.BatchSize, nil
}

// process filters a batch, invokes the function with it and deletes what
// it processed. invisibleUntil is when the batch's visibility ends.
func (p *sqsPoller) process(batch []*sqs.Message, invisibleUntil time.Time) {
	ctx := context.WithoutCancel(p.ctx) // a batch in hand is finished
	if len(p.filters) > 0 {
		var kept, dropped []*sqs.Message
		for _, m := range batch {
			if p.matches(m) {
				kept = append(kept, m)
			} else {
				dropped = append(dropped, m)
			}
		}
		p.delete(ctx, dropped)
		if batch = kept; len(batch) == 0 {
			return
		}
	}
	batch, trace := p.stopLoops(ctx, batch)
	if len(batch) == 0 {
		return
	}
	records := make([]sqsRecord, len(batch))
	for i, m := range batch {
		records[i] = p.record(m)
	}
	payload, _ := json.Marshal(struct {
		Records []sqsRecord
	}{records})
	res, err := p.invoke(ctx, payload, trace, invisibleUntil)
	switch {
	case err != nil:
		p.log.Debug("a batch could not be invoked; it is received again once visible", "messages", len(batch), "err", err)
		return
	case res.FunctionError != "":
		p.log.Debug("the function failed a batch; it is received again once visible", "messages", len(batch), "error_type", res.ErrorType)
		return
	}
	done := batch
	if p.m.reportsItemFailures() {
		ids := make(map[string]bool, len(batch))
		for _, m := range batch {
			ids[m.MessageID] = true
		}
		failed, ok := batchItemFailures(res.Payload, ids)
		if !ok {
			p.log.Debug("the function's batchItemFailures are invalid; the whole batch is received again", "messages", len(batch))
			return
		}
		done = succeeded(batch, failed, p.queue.FIFO())
	}
	p.delete(ctx, done)
}

// invoke runs the function with a batch, trying again while it is
// throttled and the batch is still invisible.
func (p *sqsPoller) invoke(ctx context.Context, payload []byte, trace string, invisibleUntil time.Time) (*lamina.InvocationResult, error) {
	backoff := 100 * time.Millisecond
	for {
		res, err := p.t.Invoke(ctx, payload, trace)
		if !isThrottle(err) || time.Until(invisibleUntil) < backoff+p.t.Timeout(ctx) || p.ctx.Err() != nil {
			return res, err
		}
		sleep(p.ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stopLoops takes out of a batch the messages that continue a recursive
// loop through the function past its limit, and deletes them. It returns
// the rest and the trace header of their invocation: the one of the
// message furthest along a loop, so that the next round counts from it.
func (p *sqsPoller) stopLoops(ctx context.Context, batch []*sqs.Message) ([]*sqs.Message, string) {
	var kept, stopped []*sqs.Message
	trace, most := "", 0
	for _, m := range batch {
		next, ok := p.t.Admit(ctx, m.Attributes["AWSTraceHeader"])
		if !ok {
			stopped = append(stopped, m)
			continue
		}
		kept = append(kept, m)
		if _, n, _ := lamina.Lineage(next); n > most || trace == "" {
			trace, most = next, n
		}
	}
	p.delete(ctx, stopped)
	return kept, trace
}

// delete deletes processed messages from the queue.
func (p *sqsPoller) delete(ctx context.Context, msgs []*sqs.Message) {
	slots := make(chan struct{}, deleteConcurrency)
	var wg sync.WaitGroup
	for _, m := range msgs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := p.queue.Delete(ctx, m.ReceiptHandle); err != nil {
				p.log.Warn("deleting a processed message failed; it is received again once visible", "message", m.MessageID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// sqsRecord is one record of an SQS event, as Lambda sends it.
type sqsRecord struct {
	MessageID              string                     `json:"messageId"`
	ReceiptHandle          string                     `json:"receiptHandle"`
	Body                   string                     `json:"body"`
	Attributes             map[string]string          `json:"attributes"`
	MessageAttributes      map[string]recordAttribute `json:"messageAttributes"`
	MD5OfMessageAttributes string                     `json:"md5OfMessageAttributes,omitempty"`
	MD5OfBody              string                     `json:"md5OfBody"`
	EventSource            string                     `json:"eventSource"`
	EventSourceARN         string                     `json:"eventSourceARN"`
	AWSRegion              string                     `json:"awsRegion"`
}

// recordAttribute is a message attribute in an SQS event.
type recordAttribute struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// eventAttributes are the system attributes an SQS event carries.
var eventAttributes = []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
	"SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader", "DeadLetterQueueSourceArn"}

// record makes a message's event record.
func (p *sqsPoller) record(m *sqs.Message) sqsRecord {
	r := sqsRecord{MessageID: m.MessageID, ReceiptHandle: m.ReceiptHandle, Body: m.Body, MD5OfBody: m.MD5OfBody,
		Attributes: map[string]string{}, MessageAttributes: map[string]recordAttribute{},
		EventSource: "aws:sqs", EventSourceARN: p.m.EventSourceArn, AWSRegion: p.region}
	for _, name := range eventAttributes {
		if v, ok := m.Attributes[name]; ok {
			r.Attributes[name] = v
		}
	}
	for name, a := range m.MessageAttributes {
		ra := recordAttribute{BinaryValue: a.BinaryValue, StringListValues: []string{}, BinaryListValues: [][]byte{}, DataType: a.DataType}
		if a.BinaryValue == nil {
			s := a.StringValue
			ra.StringValue = &s
		}
		r.MessageAttributes[name] = ra
	}
	r.MD5OfMessageAttributes = m.MD5OfAttributes
	return r
}

// matches reports whether a filter matches a message: the record, its
// body parsed as JSON when it is JSON.
func (p *sqsPoller) matches(m *sqs.Message) bool {
	data, _ := json.Marshal(p.record(m))
	event, err := eventpattern.Decode(data)
	if err != nil {
		return false
	}
	if body, err := eventpattern.Decode([]byte(m.Body)); err == nil {
		if _, isObject := body.(map[string]any); isObject {
			event.(map[string]any)["body"] = body
		}
	}
	for _, f := range p.filters {
		if f.Match(event) {
			return true
		}
	}
	return false
}

// batchItemFailures reads a ReportBatchItemFailures response: the ids of
// the records that failed (SQS message ids, Kinesis sequence numbers), or
// false when the response is not valid (the whole batch failed): not JSON,
// an empty id, or one not among ids (the batch's). No response, or an
// empty or null list, means none failed.
func batchItemFailures(payload []byte, ids map[string]bool) (map[string]bool, bool) {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || string(payload) == "null" {
		return nil, true
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(payload, &resp); err != nil {
		// Valid JSON that is no object has no batchItemFailures.
		return nil, json.Valid(payload)
	}
	raw, ok := resp["batchItemFailures"]
	if !ok || string(raw) == "null" {
		return nil, true
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, false
	}
	failed := map[string]bool{}
	for _, item := range items {
		var id string
		if err := json.Unmarshal(item["itemIdentifier"], &id); err != nil || id == "" {
			return nil, false
		}
		if !ids[id] {
			return nil, false
		}
		failed[id] = true
	}
	return failed, true
}

// succeeded returns the messages of a batch to delete: those not failed,
// and in a FIFO queue none after a group's first failure, so that the
// group stays in order.
func succeeded(batch []*sqs.Message, failed map[string]bool, fifo bool) []*sqs.Message {
	var out []*sqs.Message
	stopped := map[string]bool{}
	for _, m := range batch {
		group := m.Attributes["MessageGroupId"]
		if failed[m.MessageID] || (fifo && stopped[group]) {
			stopped[group] = true
			continue
		}
		out = append(out, m)
	}
	return out
}

// recordSize approximates the bytes a message takes in an event.
func recordSize(m *sqs.Message) int {
	n := len(m.Body) + len(m.ReceiptHandle) + 512
	for name, a := range m.MessageAttributes {
		n += len(name) + len(a.StringValue) + len(a.BinaryValue)*4/3 + 96
	}
	return n
}

// isQueueGone reports whether err says the queue no longer exists.
func isQueueGone(err error) bool {
	var e *awsproto.Error
	return errors.As(err, &e) && e.Code == "QueueDoesNotExist"
}

// oldestAge is the age of a batch's oldest message by its SentTimestamp
// (zero for none).
func oldestAge(batch []*sqs.Message) time.Duration {
	var oldest int64
	for _, m := range batch {
		if sent, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64); err == nil && (oldest == 0 || sent < oldest) {
			oldest = sent
		}
	}
	if oldest == 0 {
		return 0
	}
	return time.Since(time.UnixMilli(oldest))
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
