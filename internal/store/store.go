// Package store keeps every durable thing of Lamina in NATS JetStream:
// function configurations in key-value buckets, code in an object store
// (content-addressed by SHA-256) and platform secrets. Nothing durable lives
// anywhere else, so a second node sees what the first one wrote.
package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"
)

// Bucket names. They are part of the on-disk format: renaming one loses data.
const (
	functionsBucket     = "lamina_functions"
	versionsBucket      = "lamina_function_versions"
	aliasesBucket       = "lamina_aliases"
	layersBucket        = "lamina_layer_versions"
	layerCountersBucket = "lamina_layers"
	provisionedBucket   = "lamina_provisioned_concurrency"
	urlsBucket          = "lamina_function_urls"
	apisBucket          = "lamina_http_apis"
	rulesBucket         = "lamina_rules"
	eventInvokeBucket   = "lamina_event_invoke_configs"
	policiesBucket      = "lamina_function_policies"
	codeBucket          = "lamina_code"
	systemBucket        = "lamina_system"
)

var (
	// ErrNotFound is returned when the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating a record whose key is taken.
	ErrExists = errors.New("store: already exists")
)

// Options tune how buckets are created.
type Options struct {
	// Replicas is the JetStream replication factor of every bucket; zero
	// means 1 (a single node).
	Replicas int
	// CodeMaxBytes bounds the code store (zipped code and layers); zero
	// means no bound of its own.
	CodeMaxBytes int64
	// Health is where storage failures are reported; nil makes one.
	Health *Health
}

// Store is Lamina's durable state. It is safe for concurrent use.
type Store struct {
	js            jetstream.JetStream
	health        *Health
	replicas      int
	functions     *records[functionRecord]
	versions      *records[functionRecord]
	aliases       *records[aliasRecord]
	layers        *records[lamina.LayerVersion]
	layerCounters *records[layerCounter]
	provisioned   *records[provisionedRecord]
	urls          *records[urlRecord]
	apis          *records[lamina.HTTPAPI]
	rules         *records[lamina.Rule]
	eventInvoke   *records[eventInvokeRecord]
	policies      *records[policyRecord]
	code          jetstream.ObjectStore
	codePuts      keyedLocks          // by digest: puts of one archive, one at a time
	codePutBudget *semaphore.Weighted // bytes of archives being put at once
	system        jetstream.KeyValue

	watchCtx  context.Context
	stopWatch context.CancelFunc
	changes   subscribers // of OnFunctionChange

	tablesMu sync.Mutex
	tables   []watched // the services' tables (OpenTable)
}

// watched is a cache kept current by a watch of its bucket.
type watched interface {
	watch(ctx, watchCtx context.Context) error
}

// Open connects to JetStream through nc and creates the buckets Lamina needs
// if they do not exist yet. The store keeps functions in memory, current
// with the bucket, until Close.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("store: jetstream: %w", err)
	}
	if opts.Health == nil {
		opts.Health = NewHealth(nil)
	}
	replicas := max(opts.Replicas, 1)
	s := &Store{js: js, health: opts.Health, replicas: replicas, codePutBudget: semaphore.NewWeighted(CodePutBudget)}
	kvs := map[string]jetstream.KeyValue{}
	for _, bucket := range []string{functionsBucket, versionsBucket, aliasesBucket, layersBucket, layerCountersBucket,
		provisionedBucket, urlsBucket, apisBucket, rulesBucket, eventInvokeBucket, policiesBucket, systemBucket} {
		if kvs[bucket], err = openKV(ctx, js, bucket, replicas); err != nil {
			return nil, err
		}
	}
	h := s.health
	s.functions = newRecords[functionRecord](kvs[functionsBucket], "function", h)
	s.versions = newRecords[functionRecord](kvs[versionsBucket], "function version", h)
	s.aliases = newRecords[aliasRecord](kvs[aliasesBucket], "alias", h)
	s.layers = newRecords[lamina.LayerVersion](kvs[layersBucket], "layer version", h)
	s.layerCounters = newRecords[layerCounter](kvs[layerCountersBucket], "layer", h)
	s.provisioned = newRecords[provisionedRecord](kvs[provisionedBucket], "provisioned concurrency config", h)
	s.urls = newRecords[urlRecord](kvs[urlsBucket], "function URL", h)
	s.apis = newRecords[lamina.HTTPAPI](kvs[apisBucket], "HTTP API", h)
	s.rules = newRecords[lamina.Rule](kvs[rulesBucket], "rule", h)
	s.eventInvoke = newRecords[eventInvokeRecord](kvs[eventInvokeBucket], "event invoke config", h)
	s.policies = newRecords[policyRecord](kvs[policiesBucket], "policy", h)
	s.notifyFunctionChanges()
	s.system = kvs[systemBucket]
	maxBytes := opts.CodeMaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	if s.code, err = openObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      codeBucket,
		Description: "function code and layer archives, named by hex SHA-256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Compression: true,
		MaxBytes:    maxBytes,
	}); err != nil {
		return nil, fmt.Errorf("store: object store %s: %w", codeBucket, err)
	}
	s.watchCtx, s.stopWatch = context.WithCancel(context.Background())
	if err := s.watch(ctx); err != nil {
		s.stopWatch()
		return nil, err
	}
	return s, nil
}

// watch (re)starts the watches that keep the in-memory records current.
func (s *Store) watch(ctx context.Context) error {
	s.tablesMu.Lock()
	tables := slices.Clone(s.tables)
	s.tablesMu.Unlock()
	for _, w := range append([]watched{s.functions, s.versions, s.aliases, s.layers, s.layerCounters,
		s.provisioned, s.urls, s.apis, s.rules, s.eventInvoke, s.policies}, tables...) {
		if err := w.watch(ctx, s.watchCtx); err != nil {
			return err
		}
	}
	return nil
}

// Reopen re-establishes the watches after JetStream reopened its streams
// (the consumers behind them are gone then). Records changed meanwhile are
// brought up to date; reads keep being served from memory throughout.
func (s *Store) Reopen(ctx context.Context) error {
	return s.watch(ctx)
}

// Probe writes to the store and reports whether JetStream took the write.
func (s *Store) Probe(ctx context.Context) error {
	_, err := s.system.Put(ctx, "probe", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return fmt.Errorf("store: probe: %w", err)
	}
	return nil
}

// Close stops keeping the in-memory view current.
func (s *Store) Close() {
	s.stopWatch()
}

// openKV opens a key-value bucket, creating it if it does not exist.
func openKV(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (jetstream.KeyValue, error) {
	_, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bucket,
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil // another node created it first
		}
	}
	if err == nil {
		err = ReadFromLeader(ctx, js, "KV_"+bucket, func(c *jetstream.StreamConfig) { c.Replicas = replicas })
	}
	var kv jetstream.KeyValue
	if err == nil {
		kv, err = js.KeyValue(ctx, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("store: bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// openObjectStore opens an object store as cfg says, creating it if it
// does not exist.
func openObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	_, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil // another node created it first
		}
	}
	if err == nil {
		err = ReadFromLeader(ctx, js, "OBJ_"+cfg.Bucket, func(c *jetstream.StreamConfig) {
			c.Replicas, c.MaxBytes = cfg.Replicas, cfg.MaxBytes
		})
	}
	if err != nil {
		return nil, err
	}
	return js.ObjectStore(ctx, cfg.Bucket)
}

// ReadFromLeader applies change to the configuration of the stream under a
// bucket, and turns its direct gets off, so that the bucket's reads go to
// the stream's leader. With direct gets, which JetStream turns on for
// buckets, any replica answers a read, and one that has not applied the
// latest write yet answers with what was there before: a node would not
// find a record it has just written, or update one from an old revision.
// The bucket must be bound (js.KeyValue, js.ObjectStore) after this: a
// binding keeps whether the stream had direct gets then.
func ReadFromLeader(ctx context.Context, js jetstream.JetStream, name string, change func(*jetstream.StreamConfig)) error {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	cfg := stream.CachedInfo().Config
	want := cfg
	want.AllowDirect = false
	change(&want)
	if reflect.DeepEqual(cfg, want) {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// JetStream returns the JetStream context the store uses, for parts that keep
// their own streams (queues, logs).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Replicas is the replication of the store's buckets, which parts that keep
// their own streams give theirs too.
func (s *Store) Replicas() int { return s.replicas }

// Health is where the store reports storage failures; parts that keep their
// own streams report theirs there too.
func (s *Store) Health() *Health { return s.health }

// Secret returns the random secret stored under name, creating one of size
// bytes on first use. Every node gets the same value.
func (s *Store) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	secret := make([]byte, size)
	rand.Read(secret)
	value, _, err := s.Shared(ctx, "secret."+name, secret)
	return value, err
}

// Shared returns the value stored under key, storing proposal there first
// if there is none: the first node to ask decides, and every node gets the
// same value. stored reports that proposal was stored by this call.
func (s *Store) Shared(ctx context.Context, key string, proposal []byte) (value []byte, stored bool, err error) {
	for {
		entry, err := s.system.Get(ctx, key)
		if err == nil {
			return entry.Value(), false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, false, wrapErr(s.health, ctx, err, "store: %s", key)
		}
		_, err = s.system.Create(ctx, key, proposal)
		if err == nil {
			return proposal, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, wrapErr(s.health, ctx, err, "store: %s", key)
		}
		// Another node stored its value first: read theirs.
	}
}

// ExistingReplicas returns the replication of the store JetStream holds
// through js, or 0 when there is none yet.
func ExistingReplicas(ctx context.Context, js jetstream.JetStream) (int, error) {
	stream, err := js.Stream(ctx, "KV_"+systemBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return stream.CachedInfo().Config.Replicas, nil
}

// getJSON reads key from kv into v and returns the entry's revision.
func (s *Store) getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, wrapErr(s.health, ctx, err, "store: get %s", key)
	}
	if err := json.Unmarshal(entry.Value(), v); err != nil {
		return 0, fmt.Errorf("store: decode %s: %w", key, err)
	}
	return entry.Revision(), nil
}
