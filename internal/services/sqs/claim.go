package sqs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sending, receiving, deleting and changing the visibility of messages. A
// message's life in the streams:
//
//	send      → a message stream entry (never changed afterwards)
//	receive   → a state with a new claim nonce, if its subject is still at
//	            the sequence the receiver saw (compare-and-set)
//	visibility→ the same claim with a new Until, compare-and-set
//	delete    → a tombstone state, compare-and-set, then the entry deleted
//	dead letter→ claimed, copied to the dead-letter queue, then deleted

// errLost says a compare-and-set lost to another writer.
var errLost = errors.New("sqs: message changed by another request")

// send stores messages in q, each validated on its own: results and errs
// hold each message's outcome, in order.
func (s *Service) send(ctx context.Context, q *queueRecord, sender string, msgs []*OutgoingMessage) ([]*SendResult, []error) {
	results := make([]*SendResult, len(msgs))
	errs := make([]error, len(msgs))
	if err := s.health.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return results, errs
	}
	now := nowMs()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	sent := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		msg, opts, err := s.message(q, m, sender, now)
		if err != nil {
			errs[i] = err
			continue
		}
		if futures[i], err = s.js.PublishMsgAsync(msg, opts...); err != nil {
			errs[i] = s.publishError(ctx, q, err)
			continue
		}
		sent[i] = msg
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		var ack *jetstream.PubAck
		select {
		case ack = <-f.Ok():
		case err := <-f.Err():
			errs[i] = s.publishError(ctx, q, err)
			continue
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		m := msgs[i]
		results[i] = &SendResult{
			MessageID:             messageID(q.ID, ack.Sequence),
			MD5OfBody:             md5Hex(m.Body),
			MD5OfAttributes:       attributesMD5(m.Attributes),
			MD5OfSystemAttributes: attributesMD5(traceAttributes(m.TraceHeader)),
		}
		if q.FIFO {
			results[i].SequenceNumber = sequenceNumber(ack.Sequence)
		}
		if !ack.Duplicate {
			s.noteSent(q.ID, ack.Sequence, sent[i])
		}
	}
	return results, errs
}

// message validates m and lays it out as a message stream entry.
func (s *Service) message(q *queueRecord, m *OutgoingMessage, sender string, now int64) (*nats.Msg, []jetstream.PublishOpt, error) {
	if m.Body == "" {
		return nil, nil, errMissingParameter("MessageBody")
	}
	if err := checkText(m.Body, "message body"); err != nil {
		return nil, nil, err
	}
	size, err := checkAttributes(m.Attributes)
	if err != nil {
		return nil, nil, err
	}
	if err := checkText(m.TraceHeader, "AWSTraceHeader"); err != nil {
		return nil, nil, err
	}
	if size += len(m.Body); size > q.MaxMessageSize {
		return nil, nil, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.MaxMessageSize)
	}
	delay := q.Delay
	if m.DelaySeconds != nil {
		if q.FIFO {
			return nil, nil, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *m.DelaySeconds)
		}
		if *m.DelaySeconds < 0 || *m.DelaySeconds > maxDelay {
			return nil, nil, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and %d, if provided.", *m.DelaySeconds, maxDelay)
		}
		delay = *m.DelaySeconds
	}
	dedup := m.DeduplicationID
	if m.GroupID != "" && !dedupIDRE.MatchString(m.GroupID) {
		return nil, nil, errInvalidParameter("Value %s for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.", m.GroupID)
	}
	if dedup != "" && !dedupIDRE.MatchString(dedup) {
		return nil, nil, errInvalidParameter("Value %s for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.", dedup)
	}
	if q.FIFO {
		if m.GroupID == "" {
			return nil, nil, errMissingParameter("MessageGroupId")
		}
		if dedup == "" {
			if !q.ContentDedup {
				return nil, nil, errInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			dedup = contentDedupID(m.Body)
		}
	} else if dedup != "" {
		return nil, nil, errInvalidParameter("The request include parameter that is not valid for this queue type")
	}

	msg := nats.NewMsg(messagesSubject(q.ID))
	h := msg.Header
	h.Set(hdrSent, strconv.FormatInt(now, 10))
	if delay > 0 {
		h.Set(hdrVisible, strconv.FormatInt(now+int64(delay)*1000, 10))
	}
	h.Set(hdrExpires, strconv.FormatInt(now+int64(q.Retention)*1000, 10))
	if m.GroupID != "" {
		h.Set(hdrGroup, m.GroupID)
	}
	if q.FIFO {
		h.Set(hdrDedup, dedup)
	}
	if sender != "" {
		h.Set(hdrSender, sender)
	}
	msg.Data = encodeData(&envelope{Attributes: m.Attributes, Trace: m.TraceHeader}, m.Body)
	opts := []jetstream.PublishOpt{jetstream.WithMsgTTL(time.Duration(q.Retention) * time.Second)}
	if q.FIFO {
		key := q.ID + "/"
		if q.DedupPerGroup {
			key += m.GroupID + "/"
		}
		opts = append(opts, jetstream.WithMsgID(key+dedup))
	}
	return msg, opts, nil
}

// publishError turns a failed publish into what the sender sees.
func (s *Service) publishError(ctx context.Context, q *queueRecord, err error) error {
	switch {
	case strings.Contains(err.Error(), "maximum messages per subject exceeded"):
		return errOverLimit("The queue %s holds its maximum of %d messages.", q.Name, s.cfg.Limits.MaxQueueMessages)
	case store.IsStreamFull(err):
		return &store.UnavailableError{Full: true, Err: fmt.Errorf("the storage of queues is full: %w", err)}
	}
	return fmt.Errorf("sqs: send: %w", s.health.Check(ctx, err))
}

// noteSent adds a message this node sent to its view of the queue, if it
// has one, so that a receive here right after the send sees it.
func (s *Service) noteSent(queueID string, seq uint64, msg *nats.Msg) {
	v := s.loadedView(queueID)
	if v == nil {
		return
	}
	e := entryFromHeaders(seq, msg.Header)
	e.size = len(msg.Data)
	v.mu.Lock()
	v.insert(e, nowMs())
	v.mu.Unlock()
}

// receiveOptions are a receive's parameters.
type receiveOptions struct {
	max        int
	visibility int // seconds
	wait       time.Duration
}

// receive returns up to o.max messages of q, waiting up to o.wait for one.
func (s *Service) receive(ctx context.Context, q *queueRecord, o receiveOptions) ([]*Message, error) {
	v, err := s.view(ctx, q)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(o.wait)
	polling := false
	defer func() {
		if polling {
			s.endPoll(v)
		}
	}()
	for synced := false; ; {
		cur, err := s.queueByName(ctx, q.Name)
		if err != nil {
			return nil, err
		}
		if cur.ID != q.ID {
			return nil, ErrQueueDoesNotExist()
		}
		msgs, err := s.receiveOnce(ctx, cur, v, o)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		if !synced {
			// The view may not have seen a message another node just sent.
			synced = true
			if s.catchUp(ctx, v) {
				continue
			}
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		if !polling {
			if !s.startPoll(v) {
				return nil, errThrottled("Too many long polls wait on this node; retry later.")
			}
			polling = true
		}
		v.mu.Lock()
		changed, next, failed := v.changed, v.next(), v.err
		v.mu.Unlock()
		if failed != nil {
			return nil, fmt.Errorf("sqs: queue %s: %w", q.Name, failed)
		}
		wake := time.Until(deadline)
		if next > 0 {
			wake = min(wake, time.Until(time.UnixMilli(next)))
		}
		timer := time.NewTimer(max(wake, time.Millisecond))
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-s.draining:
			timer.Stop()
			return nil, nil
		}
		timer.Stop()
	}
}

// catchUpWait bounds how long a receive waits for its view to apply the
// messages the stream already holds.
const catchUpWait = 500 * time.Millisecond

// catchUp waits, briefly, until v has applied every message the queue's
// stream holds, and reports whether it had not.
func (s *Service) catchUp(ctx context.Context, v *view) bool {
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	info, err := v.msgCons.Info(ctx)
	if err != nil {
		return false
	}
	behind := false
	for {
		v.mu.Lock()
		pos, changed := v.msgPos, v.changed
		v.mu.Unlock()
		if pos >= info.Delivered.Stream && info.NumPending == 0 {
			return behind
		}
		behind = true
		select {
		case <-changed:
		case <-ctx.Done():
			return behind
		}
		if info, err = v.msgCons.Info(ctx); err != nil {
			return behind
		}
	}
}

// receiveOnce claims up to o.max messages v shows receivable now.
func (s *Service) receiveOnce(ctx context.Context, q *queueRecord, v *view, o receiveOptions) ([]*Message, error) {
	now := nowMs()
	v.mu.Lock()
	v.purge(q.PurgedThrough)
	limit := maxInFlight
	if q.FIFO {
		limit = maxInFlightFIFO
	}
	if len(v.entries) > limit {
		if _, inFlight, _ := v.counts(now); inFlight >= limit {
			v.mu.Unlock()
			if q.FIFO {
				return nil, nil
			}
			return nil, errOverLimit("The queue %s has %d messages in flight, its maximum.", q.Name, limit)
		}
	}
	picked := v.pick(o.max, now)
	v.mu.Unlock()
	if len(picked) == 0 {
		return nil, nil
	}
	out := make([]*Message, len(picked))
	errs := make([]error, len(picked))
	if q.FIFO {
		// In order: a group whose message is lost stops there.
		lost := map[string]bool{}
		for i, e := range picked {
			if lost[e.group] {
				v.release(e)
				continue
			}
			out[i], errs[i] = s.claim(ctx, q, v, e, o.visibility, now)
			if out[i] == nil {
				lost[e.group] = true
			}
		}
	} else {
		var wg sync.WaitGroup
		for i, e := range picked {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i], errs[i] = s.claim(ctx, q, v, e, o.visibility, now)
			}()
		}
		wg.Wait()
	}
	var msgs []*Message
	for _, m := range out {
		if m != nil {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return nil, errors.Join(errs...)
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("receiving some of a batch failed", "queue", q.Name, "err", err)
	}
	return msgs, nil
}

// release puts back a message this node picked but did not claim.
func (v *view) release(e *entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e.busy = false
	if v.entries[e.seq] == e {
		v.place(e, nowMs())
		v.signal()
	}
}

// forget removes a message from the view.
func (v *view) forget(seq uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.remove(seq)
}

// learn records a message's state, read from or written to the stream
// just now; picked says the caller picked the message, which is put back.
// A state older than the view's is ignored; rev 0 (the message has no
// state any more: purged) is always taken.
func (v *view) learn(seq uint64, st state, rev uint64, picked bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := nowMs()
	e := v.entries[seq]
	if e == nil {
		v.setState(seq, st, rev, now)
		return
	}
	if picked {
		e.busy = false
	}
	if st.Deleted {
		v.remove(seq)
		return
	}
	if rev >= e.rev || rev == 0 {
		e.st, e.rev = st, rev
	}
	v.place(e, now)
	v.signal()
}

// claim receives one message v picked: it reads the message, then sets its
// state if no one changed it since v saw it. It returns nil (and no error)
// when the message is gone, was claimed elsewhere first, or went to the
// dead-letter queue.
func (s *Service) claim(ctx context.Context, q *queueRecord, v *view, e *entry, visibility int, now int64) (*Message, error) {
	raw, err := s.messages.GetMsg(ctx, e.seq)
	if isNotFound(err) {
		v.forget(e.seq)
		return nil, nil
	}
	if err != nil {
		v.release(e)
		return nil, fmt.Errorf("sqs: read message: %w", s.health.Check(ctx, err))
	}
	if q.Redrive != nil && e.st.Count >= q.Redrive.MaxReceiveCount {
		moved, err := s.moveDeadLetter(ctx, q, v, e, raw, now)
		if moved || err != nil {
			return nil, err
		}
	}
	st := state{Claim: newNonce(), Count: e.st.Count + 1, First: e.st.First, Claimed: now, Until: now + int64(visibility)*1000}
	if st.First == 0 {
		st.First = now
	}
	rev, err := s.putState(ctx, q.ID, e.seq, st, e.rev, stateTTL(e, st, now))
	if errors.Is(err, errLost) {
		cur, curRev, rerr := s.readState(ctx, q.ID, e.seq)
		if rerr != nil {
			v.release(e)
			return nil, rerr
		}
		v.learn(e.seq, cur, curRev, true)
		return nil, nil
	}
	if err != nil {
		v.release(e)
		return nil, err
	}
	v.learn(e.seq, st, rev, true)
	env, body, err := decodeData(raw.Data)
	if err != nil {
		return nil, err
	}
	return s.delivered(q, e, raw.Header, env, body, st), nil
}

// delivered makes the Message a receive returns.
func (s *Service) delivered(q *queueRecord, e *entry, h nats.Header, env *envelope, body string, st state) *Message {
	id := e.msgID
	if id == "" {
		id = messageID(q.ID, e.seq)
	}
	sender := e.sender
	if sender == "" {
		sender = s.cfg.AccountID
	}
	attrs := map[string]string{
		"SenderId":                         sender,
		"SentTimestamp":                    strconv.FormatInt(e.sent, 10),
		"ApproximateReceiveCount":          strconv.Itoa(st.Count),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(st.First, 10),
	}
	if env.Trace != "" {
		attrs["AWSTraceHeader"] = env.Trace
	}
	if e.group != "" {
		attrs["MessageGroupId"] = e.group
	}
	if q.FIFO {
		attrs["SequenceNumber"] = sequenceNumber(e.seq)
		attrs["MessageDeduplicationId"] = e.dedup
	}
	if e.source != "" {
		attrs["DeadLetterQueueSourceArn"] = e.source
	}
	return &Message{MessageID: id, ReceiptHandle: encodeReceipt(q.ID, e.seq, st.Claim), Body: body, MD5OfBody: md5Hex(body),
		Attributes: attrs, MessageAttributes: env.Attributes, MD5OfAttributes: attributesMD5(env.Attributes)}
}

// stateTTL is how long a message's state is kept: until its message
// expires, or its visibility ends, and a minute more.
func stateTTL(e *entry, st state, now int64) time.Duration {
	end := e.expires
	if end == 0 {
		end = e.sent + maxRetention*1000
	}
	return time.Duration(max(end-now, st.Until-now, 0))*time.Millisecond + time.Minute
}

// newNonce returns a fresh claim nonce.
func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// putState writes a message's state if its subject is still at expect (0:
// it has none), and returns the state's sequence; errLost when it is not.
func (s *Service) putState(ctx context.Context, queueID string, seq uint64, st state, expect uint64, ttl time.Duration) (uint64, error) {
	if err := s.health.Err(); err != nil {
		return 0, err
	}
	data, _ := json.Marshal(st)
	ack, err := s.js.Publish(ctx, stateSubject(queueID, seq), data,
		jetstream.WithExpectLastSequencePerSubject(expect), jetstream.WithMsgTTL(ttl))
	if isStateConflict(err) {
		return 0, errLost
	}
	if err != nil {
		if store.IsStreamFull(err) {
			return 0, &store.UnavailableError{Full: true, Err: fmt.Errorf("the storage of message states is full: %w", err)}
		}
		return 0, fmt.Errorf("sqs: write message state: %w", s.health.Check(ctx, err))
	}
	return ack.Sequence, nil
}

// readState returns a message's state as the stream holds it now, and its
// sequence (0 when it has none).
func (s *Service) readState(ctx context.Context, queueID string, seq uint64) (state, uint64, error) {
	raw, err := s.states.GetLastMsgForSubject(ctx, stateSubject(queueID, seq))
	if isNotFound(err) {
		return state{}, 0, nil
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("sqs: read message state: %w", s.health.Check(ctx, err))
	}
	var st state
	if err := json.Unmarshal(raw.Data, &st); err != nil {
		return state{}, 0, fmt.Errorf("sqs: decode message state: %w", err)
	}
	return st, raw.Sequence, nil
}

// receipt is what a receipt handle carries.
type receipt struct {
	queueID string
	seq     uint64
	claim   string
}

// encodeReceipt makes a receipt handle.
func encodeReceipt(queueID string, seq uint64, claim string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("1." + queueID + "." + strconv.FormatUint(seq, 10) + "." + claim))
}

// parseReceipt reads a receipt handle of q.
func parseReceipt(q *queueRecord, handle string) (receipt, error) {
	if handle == "" {
		return receipt{}, errMissingParameter("ReceiptHandle")
	}
	raw, err := base64.RawURLEncoding.DecodeString(handle)
	parts := strings.Split(string(raw), ".")
	if err != nil || len(parts) != 4 || parts[0] != "1" {
		return receipt{}, ErrReceiptHandleIsInvalid(handle)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || parts[1] != q.ID || parts[3] == "" {
		return receipt{}, ErrReceiptHandleIsInvalid(handle)
	}
	return receipt{queueID: parts[1], seq: seq, claim: parts[3]}, nil
}

// stateOf returns a message's state: from this node's view when it holds
// the receipt's claim, else from the stream.
func (s *Service) stateOf(ctx context.Context, r receipt, fresh bool) (state, uint64, *entry, error) {
	if v := s.loadedView(r.queueID); v != nil && !fresh {
		v.mu.Lock()
		e := v.entries[r.seq]
		var st state
		var rev uint64
		if e != nil {
			st, rev = e.st, e.rev
		}
		v.mu.Unlock()
		if e != nil && st.Claim == r.claim {
			return st, rev, e, nil
		}
	}
	st, rev, err := s.readState(ctx, r.queueID, r.seq)
	return st, rev, nil, err
}

// maxCASAttempts bounds the attempts of a change that keeps losing races.
const maxCASAttempts = 8

// deleteMessage deletes the message a receipt handle names, if that
// receipt is still the message's latest: a message received again since
// is not deleted (and the delete succeeds, as SQS's may).
func (s *Service) deleteMessage(ctx context.Context, q *queueRecord, handle string) error {
	r, err := parseReceipt(q, handle)
	if err != nil {
		return err
	}
	for attempt := range maxCASAttempts {
		st, rev, _, err := s.stateOf(ctx, r, attempt > 0)
		if err != nil {
			return err
		}
		if rev == 0 || st.Deleted || st.Claim != r.claim {
			return nil
		}
		_, err = s.putState(ctx, q.ID, r.seq, state{Deleted: true}, rev, tombstoneTTL)
		if errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.messages.DeleteMsg(ctx, r.seq); err != nil && !isNotFound(err) {
			return fmt.Errorf("sqs: delete message: %w", s.health.Check(ctx, err))
		}
		if v := s.loadedView(q.ID); v != nil {
			v.forget(r.seq)
		}
		return nil
	}
	return &store.ConflictError{Resource: "message " + strconv.FormatUint(r.seq, 10)}
}

// changeVisibility makes the message a receipt handle names invisible for
// timeout seconds from now.
func (s *Service) changeVisibility(ctx context.Context, q *queueRecord, handle string, timeout int) error {
	r, err := parseReceipt(q, handle)
	if err != nil {
		return err
	}
	if timeout < 0 || timeout > maxVisibility {
		return errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and %d.", timeout, maxVisibility)
	}
	for attempt := range maxCASAttempts {
		st, rev, e, err := s.stateOf(ctx, r, attempt > 0)
		if err != nil {
			return err
		}
		now := nowMs()
		if rev == 0 || st.Deleted || st.Claim != r.claim || st.Until <= now {
			return ErrMessageNotInflight()
		}
		until := now + int64(timeout)*1000
		if until-st.Claimed > maxVisibility*1000 {
			return errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [%d seconds]", timeout, maxVisibility)
		}
		next := st
		next.Until = until
		ttlOf := e
		if ttlOf == nil {
			ttlOf = &entry{sent: st.First}
		}
		newRev, err := s.putState(ctx, q.ID, r.seq, next, rev, stateTTL(ttlOf, next, now))
		if errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return err
		}
		if v := s.loadedView(q.ID); v != nil {
			v.learn(r.seq, next, newRev, false)
		}
		return nil
	}
	return &store.ConflictError{Resource: "message " + strconv.FormatUint(r.seq, 10)}
}

// moveDeadLetter moves a message received more than its queue's
// maxReceiveCount to the dead-letter queue: claimed first (so that no one
// receives it meanwhile), copied, then deleted. It reports false when
// the dead-letter queue does not exist, and the message is received as
// usual.
func (s *Service) moveDeadLetter(ctx context.Context, q *queueRecord, v *view, e *entry, raw *jetstream.RawStreamMsg, now int64) (bool, error) {
	name, _ := s.nameFromARN(q.Redrive.DeadLetterTargetArn)
	dlq, err := s.queueByName(ctx, name)
	if err != nil {
		s.log.Warn("the dead-letter queue does not exist; the message is received as usual", "queue", q.Name, "dead_letter_queue", q.Redrive.DeadLetterTargetArn)
		return false, nil
	}
	moving := state{Claim: newNonce(), Count: e.st.Count, First: e.st.First, Claimed: now, Until: now + 60*1000}
	rev, err := s.putState(ctx, q.ID, e.seq, moving, e.rev, stateTTL(e, moving, now))
	if errors.Is(err, errLost) {
		cur, curRev, rerr := s.readState(ctx, q.ID, e.seq)
		if rerr != nil {
			v.release(e)
			return true, rerr
		}
		v.learn(e.seq, cur, curRev, true)
		return true, nil
	}
	if err != nil {
		v.release(e)
		return true, err
	}
	v.learn(e.seq, moving, rev, true)

	msg := nats.NewMsg(messagesSubject(dlq.ID))
	for k, vals := range raw.Header {
		if strings.HasPrefix(k, "Lamina-") {
			msg.Header[k] = vals
		}
	}
	if msg.Header.Get(hdrMessageID) == "" {
		msg.Header.Set(hdrMessageID, messageID(q.ID, e.seq))
	}
	msg.Header.Set(hdrSource, s.queueARN(q.Name))
	msg.Header.Del(hdrVisible)
	// A standard queue's dead letter keeps its enqueue time, which its
	// expiry counts from; a FIFO queue's starts again.
	expires := e.sent + int64(dlq.Retention)*1000
	if dlq.FIFO {
		expires = now + int64(dlq.Retention)*1000
	}
	expires = max(expires, now+1000)
	msg.Header.Set(hdrExpires, strconv.FormatInt(expires, 10))
	msg.Data = raw.Data
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(dlq.ID+"/moved/"+q.ID+"/"+strconv.FormatUint(e.seq, 10)),
		jetstream.WithMsgTTL(time.Duration(expires-now)*time.Millisecond))
	if err != nil {
		return true, s.publishError(ctx, dlq, err)
	}
	if !ack.Duplicate {
		s.noteSent(dlq.ID, ack.Sequence, msg)
	}
	if _, err := s.putState(ctx, q.ID, e.seq, state{Deleted: true}, rev, tombstoneTTL); err != nil && !errors.Is(err, errLost) {
		return true, err
	}
	if err := s.messages.DeleteMsg(ctx, e.seq); err != nil && !isNotFound(err) {
		return true, fmt.Errorf("sqs: delete moved message: %w", s.health.Check(ctx, err))
	}
	v.forget(e.seq)
	s.log.Debug("message moved to the dead-letter queue", "queue", q.Name, "dead_letter_queue", dlq.Name, "receives", e.st.Count)
	return true, nil
}

// purge deletes every message of q sent before now.
func (s *Service) purge(ctx context.Context, q *queueRecord) error {
	if time.Since(time.UnixMilli(q.LastPurge)) < time.Minute {
		return errPurgeInProgress(s.queueARN(q.Name))
	}
	info, err := s.messages.Info(ctx)
	if err != nil {
		return fmt.Errorf("sqs: purge: %w", s.health.Check(ctx, err))
	}
	through := info.State.LastSeq
	if err := s.messages.Purge(ctx, jetstream.WithPurgeSubject(messagesSubject(q.ID)), jetstream.WithPurgeSequence(through+1)); err != nil {
		return fmt.Errorf("sqs: purge: %w", s.health.Check(ctx, err))
	}
	if err := s.states.Purge(ctx, jetstream.WithPurgeSubject(statesFilter(q.ID))); err != nil {
		return fmt.Errorf("sqs: purge: %w", s.health.Check(ctx, err))
	}
	_, err = s.queues.Update(ctx, q.Name, func(r *queueRecord) error {
		if r.ID != q.ID {
			return ErrQueueDoesNotExist()
		}
		if time.Since(time.UnixMilli(r.LastPurge)) < time.Minute {
			return errPurgeInProgress(s.queueARN(q.Name))
		}
		r.PurgedThrough, r.LastPurge = max(r.PurgedThrough, through), nowMs()
		return nil
	})
	if err != nil {
		return err
	}
	if v := s.loadedView(q.ID); v != nil {
		v.mu.Lock()
		v.purge(through)
		v.mu.Unlock()
	}
	return nil
}

// dropMessages deletes every message and state of a deleted queue.
func (s *Service) dropMessages(ctx context.Context, queueID string) error {
	s.dropView(queueID)
	if err := s.messages.Purge(ctx, jetstream.WithPurgeSubject(messagesSubject(queueID))); err != nil {
		return fmt.Errorf("sqs: delete queue: %w", s.health.Check(ctx, err))
	}
	if err := s.states.Purge(ctx, jetstream.WithPurgeSubject(statesFilter(queueID))); err != nil {
		return fmt.Errorf("sqs: delete queue: %w", s.health.Check(ctx, err))
	}
	return nil
}
