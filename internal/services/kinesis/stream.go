package kinesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"
)

// Stream is one stream, for Lamina's parts that read streams without HTTP:
// event source mappings' pollers. It names the stream as it was when it
// was looked up: once the stream is deleted (even if one of the same name
// is made again), Current reports false. Its reads are not bound by the
// shards' GetRecords rates, as Lambda's pollers are not bound by
// GetRecords' rate on AWS either.
type Stream struct {
	s *Service
	r *streamRecord
}

// ErrStreamNotFound is what StreamByARN returns for a stream that does not
// exist.
var ErrStreamNotFound = errors.New("kinesis: stream not found")

// StreamByARN returns the stream an ARN of this account and region names
// (arn:aws:kinesis:<region>:<account>:stream/<name>), or
// ErrStreamNotFound.
func (s *Service) StreamByARN(ctx context.Context, arn string) (*Stream, error) {
	name, ok := s.nameFromARN(arn)
	if !ok {
		return nil, ErrStreamNotFound
	}
	r, err := s.streams.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrStreamNotFound
	}
	if err != nil {
		return nil, err
	}
	return &Stream{s: s, r: r}, nil
}

// Shards is the stream's shard count.
func (st *Stream) Shards() int { return st.r.Shards }

// ARN is the stream's ARN.
func (st *Stream) ARN() string { return st.s.arn(st.r.Name) }

// Current reports whether the stream still exists (the same one).
func (st *Stream) Current(ctx context.Context) (bool, error) {
	r, err := st.s.streams.Get(ctx, st.r.Name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.ID == st.r.ID, nil
}

// Latest is the position after every record written so far: reading
// from it reads what is written next.
func (st *Stream) Latest(ctx context.Context) (uint64, error) { return st.s.latest(ctx) }

// readerBuffer bounds the bytes a Reader holds that its caller has not
// taken, and readerRecords their count.
const (
	readerBuffer  = 8 << 20
	readerRecords = 4096
)

// Reader reads a shard's records in order as they are written, from a
// position, until it is closed. It holds at most readerBuffer bytes its
// caller has not taken.
type Reader struct {
	st      *Stream
	records chan *Record
	budget  *semaphore.Weighted
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // why reading stopped, once done is closed
}

// Read starts reading shard from p.
func (st *Stream) Read(ctx context.Context, shard int, p Position) (*Reader, error) {
	cfg := consumerConfig(st.r.subject(shard), p)
	cons, err := st.s.records.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{cfg.FilterSubject},
		DeliverPolicy: cfg.DeliverPolicy, OptStartSeq: cfg.OptStartSeq, OptStartTime: cfg.OptStartTime, InactiveThreshold: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("kinesis: read %s: %w", ShardID(shard), st.s.health.Check(ctx, err))
	}
	msgs, err := cons.Messages(jetstream.PullMaxBytes(readerBuffer / 2))
	if err != nil {
		return nil, fmt.Errorf("kinesis: read %s: %w", ShardID(shard), st.s.health.Check(ctx, err))
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rd := &Reader{st: st, records: make(chan *Record, readerRecords), budget: semaphore.NewWeighted(readerBuffer), cancel: cancel, done: make(chan struct{})}
	go func() {
		<-rctx.Done()
		msgs.Stop()
	}()
	go rd.pump(rctx, shard, msgs)
	return rd, nil
}

// pump moves records from JetStream into the reader's buffer.
func (rd *Reader) pump(ctx context.Context, shard int, msgs jetstream.MessagesContext) {
	defer close(rd.done)
	defer close(rd.records)
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() == nil {
				rd.err = err
			}
			return
		}
		meta, err := m.Metadata()
		if err != nil || rd.st.r.expired(meta.Timestamp) {
			continue
		}
		rec := rd.st.r.record(shard, meta.Sequence.Stream, m.Data(), m.Headers().Get(partitionKeyHd), meta.Timestamp)
		if err := rd.budget.Acquire(ctx, rec.weight()); err != nil {
			return
		}
		select {
		case rd.records <- rec:
		case <-ctx.Done():
			return
		}
	}
}

// weight is what a record takes of a Reader's budget.
func (r *Record) weight() int64 { return min(int64(len(r.Data)+len(r.PartitionKey)+64), readerBuffer) }

// Next returns the next record, waiting for one until ctx ends (then
// ctx's error) or reading fails.
func (rd *Reader) Next(ctx context.Context) (*Record, error) {
	select {
	case r, ok := <-rd.records:
		return rd.took(r, ok)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Poll returns the next record if one is here, else nil.
func (rd *Reader) Poll() (*Record, error) {
	select {
	case r, ok := <-rd.records:
		return rd.took(r, ok)
	default:
		return nil, nil
	}
}

func (rd *Reader) took(r *Record, ok bool) (*Record, error) {
	if !ok {
		if rd.err == nil {
			return nil, errors.New("kinesis: reader closed")
		}
		return nil, fmt.Errorf("kinesis: reading failed: %w", rd.err)
	}
	rd.budget.Release(r.weight())
	return r, nil
}

// Close stops reading.
func (rd *Reader) Close() {
	rd.cancel()
	<-rd.done
}
