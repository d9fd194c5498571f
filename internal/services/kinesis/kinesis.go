// Package kinesis is Lamina's Kinesis-compatible data streams: the Kinesis
// API (JSON 1.1, X-Amz-Target Kinesis_20131202.*) on JetStream, and the
// reading of a stream's shards that event source mappings use (Stream).
//
// Storage: one JetStream stream, lamina_kinesis_records, replicated as the
// store is, holds the records of every data stream, one subject per shard
// (lamina.kinesis.r.<stream id>.<shard>). A record is written once, with
// its partition key in a header and a per-message TTL of the stream's
// retention at the time (JetStream deletes it then), and never changed.
// JetStream's sequence orders a shard's records and is the heart of their
// sequence numbers (see shards.go). The streams themselves (name, shard
// count, retention) are records of a store Table, on every node.
//
// A stream's shard count is fixed at creation: ON_DEMAND streams get the
// shard count the node is configured with. Resharding (UpdateShardCount,
// SplitShard, MergeShards) and enhanced fan-out are not served.
package kinesis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// Storage names; part of the on-disk format.
const (
	recordsStream  = "lamina_kinesis_records"
	recordsPrefix  = "lamina.kinesis.r."
	streamsBucket  = "lamina_kinesis_streams"
	partitionKeyHd = "Lamina-Partition-Key"
)

// Bounds of Kinesis itself.
const (
	maxRecordSize       = 1 << 20 // data and partition key of one record
	maxPutRecords       = 500
	maxPutRecordsBytes  = 5 << 20
	maxPartitionKey     = 256
	maxGetRecords       = 10000
	maxGetRecordsBytes  = 10 << 20
	iteratorLifetime    = 5 * time.Minute
	defaultRetention    = 24 // hours
	maxRetention        = 8760
	maxStoredRecord     = maxRecordSize + 4096 // with headers
	maxListStreams      = 10000
	defaultListStreams  = 100
	maxListShards       = 10000
	defaultListShards   = 1000
	shardWriteRecords   = 1000    // records/s a shard takes
	shardWriteBytes     = 1 << 20 // bytes/s a shard takes
	shardReadCalls      = 5       // GetRecords/s a shard serves
	shardReadBytes      = 2 << 20 // bytes/s GetRecords returns from a shard
	defaultOnDemandSize = 4
)

// Limits bound what clients can make grow.
type Limits struct {
	// MaxStreams bounds the account's streams.
	MaxStreams int
	// MaxShards bounds the shards of all the account's streams together.
	MaxShards int
	// OnDemandShards is the shard count of an ON_DEMAND stream.
	OnDemandShards int
	// Unthrottled lifts the per-shard read and write rates (1,000 records
	// and 1 MiB written, 5 GetRecords and 2 MiB read per second).
	Unthrottled bool
}

// DefaultLimits are the bounds when none are given.
var DefaultLimits = Limits{MaxStreams: 50, MaxShards: 200, OnDemandShards: defaultOnDemandSize}

// Config is what the service needs.
type Config struct {
	Region, AccountID string
	Store             *store.Store
	// MaxBytes bounds the records of all streams together, on disk; zero
	// bounds nothing but the store. Writes are refused once it is reached,
	// until records expire.
	MaxBytes int64
	// Limits; zero values take DefaultLimits'.
	Limits Limits
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Service is the stream service of one node.
type Service struct {
	cfg     Config
	log     *slog.Logger
	js      jetstream.JetStream
	health  *store.Health
	streams *store.Table[streamRecord]
	records jetstream.Stream
	api     *awsproto.Service

	mu       sync.Mutex
	limiters map[string]*shardLimiter // by stream id and shard
}

// streamRecord is a stream as the store keeps it.
type streamRecord struct {
	Name string
	// ID names the stream's subjects; a stream made again under the same
	// name gets another.
	ID      string
	Created int64 // unix ms
	Shards  int
	// Mode is PROVISIONED or ON_DEMAND.
	Mode           string
	RetentionHours int
}

// arn is the stream's ARN.
func (s *Service) arn(name string) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + s.cfg.AccountID + ":stream/" + name
}

// subject is the subject of a shard's records.
func (r *streamRecord) subject(shard int) string {
	return recordsPrefix + r.ID + "." + strconv.Itoa(shard)
}

// retention is the stream's retention period.
func (r *streamRecord) retention() time.Duration {
	return time.Duration(r.RetentionHours) * time.Hour
}

// Open opens (creating) the service's stream and table.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def, l := DefaultLimits, &cfg.Limits
	for _, f := range []struct {
		v *int
		d int
	}{{&l.MaxStreams, def.MaxStreams}, {&l.MaxShards, def.MaxShards}, {&l.OnDemandShards, def.OnDemandShards}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	l.MaxShards = min(l.MaxShards, maxSeqShards)
	st := cfg.Store
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	records, err := st.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        recordsStream,
		Description: "Kinesis records, one subject per shard",
		Subjects:    []string{recordsPrefix + "*.*"},
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    maxBytes,
		MaxMsgSize:  maxStoredRecord,
		AllowMsgTTL: true,
		Replicas:    max(st.Replicas(), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("kinesis: stream %s: %w", recordsStream, st.Health().Check(ctx, err))
	}
	streams, err := store.OpenTable[streamRecord](ctx, st, streamsBucket, "stream")
	if err != nil {
		return nil, fmt.Errorf("kinesis: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("part", "kinesis"), js: st.JetStream(), health: st.Health(),
		streams: streams, records: records, limiters: map[string]*shardLimiter{}}
	s.api = s.apiService()
	return s, nil
}

// API is the service as the API listener's dispatcher serves it.
func (s *Service) API() *awsproto.Service { return s.api }

// newStreamID returns a fresh stream id.
func newStreamID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lookup returns the stream named by name or ARN (either may be given,
// as the API takes StreamName or StreamARN), or ResourceNotFound.
func (s *Service) lookup(ctx context.Context, name, arn string) (*streamRecord, error) {
	if arn != "" {
		n, ok := s.nameFromARN(arn)
		if !ok || (name != "" && name != n) {
			return nil, errNotFound(arn)
		}
		name = n
	}
	if name == "" {
		return nil, errInvalidArgument("Either StreamName or StreamARN should be provided.")
	}
	r, err := s.streams.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(s.arn(name))
	}
	return r, err
}

// nameFromARN reads the stream name of an ARN of this account and region.
func (s *Service) nameFromARN(arn string) (string, bool) {
	prefix := "arn:aws:kinesis:" + s.cfg.Region + ":" + s.cfg.AccountID + ":stream/"
	if len(arn) <= len(prefix) || arn[:len(prefix)] != prefix {
		return "", false
	}
	return arn[len(prefix):], true
}

// shardLimiter is a shard's rates on this node.
type shardLimiter struct {
	writeRecords, writeBytes, reads, readBytes *rate.Limiter
}

// limiter returns the rates of a shard.
func (s *Service) limiter(r *streamRecord, shard int) *shardLimiter {
	key := r.ID + "." + strconv.Itoa(shard)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[key]
	if l == nil {
		l = &shardLimiter{
			writeRecords: rate.NewLimiter(shardWriteRecords, shardWriteRecords),
			writeBytes:   rate.NewLimiter(shardWriteBytes, shardWriteBytes+4096),
			reads:        rate.NewLimiter(shardReadCalls, shardReadCalls),
			readBytes:    rate.NewLimiter(shardReadBytes, maxGetRecordsBytes),
		}
		s.limiters[key] = l
	}
	return l
}

// forgetLimiters drops the rates of a deleted stream's shards.
func (s *Service) forgetLimiters(r *streamRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range r.Shards {
		delete(s.limiters, r.ID+"."+strconv.Itoa(i))
	}
}

// allowWrite takes a record of size bytes from a shard's write rates.
func (s *Service) allowWrite(r *streamRecord, shard, size int) bool {
	if s.cfg.Limits.Unthrottled {
		return true
	}
	l := s.limiter(r, shard)
	return allow(time.Now(), take{l.writeRecords, 1}, take{l.writeBytes, size})
}

// take is tokens to take from a limiter.
type take struct {
	lim *rate.Limiter
	n   int
}

// allow takes every take's tokens if all are there now; otherwise it takes
// none.
func allow(now time.Time, takes ...take) bool {
	var held []*rate.Reservation
	for _, t := range takes {
		res := t.lim.ReserveN(now, t.n)
		if res.OK() && res.DelayFrom(now) == 0 {
			held = append(held, res)
			continue
		}
		res.CancelAt(now)
		for _, h := range held {
			h.CancelAt(now)
		}
		return false
	}
	return true
}
