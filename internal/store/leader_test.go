package store

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestBucketsReadFromTheLeader checks that the buckets' streams have no
// direct gets, whatever they had, and that opening the store again (another
// node starting) keeps it so and keeps what it holds.
func TestBucketsReadFromTheLeader(t *testing.T) {
	_, nc := startJetStream(t)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A bucket as an earlier Lamina created it: with direct gets.
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: functionsBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "kept", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		st, err := Open(ctx, nc, Options{CodeMaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	for _, name := range []string{"KV_" + functionsBucket, "KV_" + systemBucket, "OBJ_" + codeBucket} {
		if mustStream(t, js, name).Config.AllowDirect {
			t.Errorf("stream %s has direct gets: a replica behind the leader would answer reads", name)
		}
	}
	if cfg := mustStream(t, js, "OBJ_"+codeBucket).Config; cfg.MaxBytes != 1<<20 {
		t.Errorf("the code store's MaxBytes is %d, want 1 MiB", cfg.MaxBytes)
	}
	kv, err := js.KeyValue(ctx, functionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "kept"); err != nil {
		t.Errorf("the record stored before: %v", err)
	}
}

func mustStream(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	stream, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return stream.CachedInfo()
}
