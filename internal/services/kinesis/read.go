package kinesis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Position is where reading a shard starts: at a JetStream sequence (the
// first record at or after it), or at a time (the first record that
// arrived at or after it).
type Position struct {
	Seq  uint64
	Time time.Time // when set, Seq is ignored
}

// Record is a record read from a shard.
type Record struct {
	// Seq is the record's JetStream sequence: reading from Seq+1 reads
	// what follows it.
	Seq            uint64
	SequenceNumber string
	PartitionKey   string
	Data           []byte
	Arrival        time.Time
}

// record turns a stored message into a Record.
func (r *streamRecord) record(shard int, seq uint64, data []byte, pk string, at time.Time) *Record {
	return &Record{Seq: seq, SequenceNumber: sequenceNumber(r.Created, seq, shard), PartitionKey: pk, Data: data, Arrival: at}
}

// expired reports whether a record arrived before the stream's retention
// (which may have been shortened since it was written).
func (r *streamRecord) expired(at time.Time) bool {
	return time.Since(at) > r.retention()
}

// consumerConfig is the configuration of a consumer of a shard's records
// from p.
func consumerConfig(subject string, p Position) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true,
		InactiveThreshold: time.Minute, Replicas: 1}
	switch {
	case !p.Time.IsZero():
		t := p.Time
		c.DeliverPolicy, c.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case p.Seq > 1:
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Seq
	default:
		c.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	return c
}

// read reads up to limit records (and about maxBytes) of a shard from p,
// without waiting for more. It returns them (less those past the stream's
// retention), the sequence of the last it read (zero when none) and how
// many records of the shard follow it.
func (s *Service) read(ctx context.Context, r *streamRecord, shard int, p Position, limit, maxBytes int) (out []*Record, through, pending uint64, err error) {
	cons, err := s.records.CreateConsumer(ctx, consumerConfig(r.subject(shard), p))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("kinesis: read: %w", s.health.Check(ctx, err))
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.records.DeleteConsumer(dctx, name)
	}()
	pending = cons.CachedInfo().NumPending
	if pending == 0 {
		return nil, 0, 0, nil
	}
	batch, err := cons.Fetch(int(min(pending, uint64(limit))), jetstream.FetchMaxBytes(maxBytes), jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("kinesis: read: %w", s.health.Check(ctx, err))
	}
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		through, pending = meta.Sequence.Stream, meta.NumPending
		if r.expired(meta.Timestamp) {
			continue
		}
		out = append(out, r.record(shard, meta.Sequence.Stream, m.Data(), m.Headers().Get(partitionKeyHd), meta.Timestamp))
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return out, through, pending, fmt.Errorf("kinesis: read: %w", s.health.Check(ctx, err))
	}
	return out, through, pending, nil
}

// latest is the position after the last record of every stream now.
func (s *Service) latest(ctx context.Context) (uint64, error) {
	info, err := s.records.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("kinesis: %w", s.health.Check(ctx, err))
	}
	return info.State.LastSeq + 1, nil
}

// iterator is a shard iterator: a position in a shard of a stream, issued
// at a time (it expires iteratorLifetime later).
type iterator struct {
	Stream, ID string
	Shard      int
	Pos        Position
	Issued     time.Time
}

// encode returns the iterator as clients hold it: opaque, at most 512
// characters.
func (it *iterator) encode() string {
	at := "s" + strconv.FormatUint(it.Pos.Seq, 10)
	if !it.Pos.Time.IsZero() {
		at = "t" + strconv.FormatInt(it.Pos.Time.UnixMilli(), 10)
	}
	raw := strings.Join([]string{"1", it.ID, strconv.Itoa(it.Shard), at, strconv.FormatInt(it.Issued.UnixMilli(), 10), it.Stream}, "|")
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

// decodeIterator reads an iterator a client holds.
func decodeIterator(s string) (*iterator, bool) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	f := strings.SplitN(string(raw), "|", 6)
	if len(f) != 6 || f[0] != "1" || len(f[3]) < 2 {
		return nil, false
	}
	it := &iterator{ID: f[1], Stream: f[5]}
	var err1, err2, err3 error
	it.Shard, err1 = strconv.Atoi(f[2])
	n, err2 := strconv.ParseInt(f[3][1:], 10, 64)
	issued, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || n < 0 {
		return nil, false
	}
	switch f[3][0] {
	case 's':
		it.Pos.Seq = uint64(n)
	case 't':
		it.Pos.Time = time.UnixMilli(n)
	default:
		return nil, false
	}
	it.Issued = time.UnixMilli(issued)
	return it, true
}
