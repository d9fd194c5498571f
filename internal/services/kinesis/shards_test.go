package kinesis

import (
	"math/big"
	"testing"
	"time"
)

func TestShardRangesCoverTheHashSpace(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 500} {
		next := big.NewInt(0)
		for i := range n {
			start, end := shardRange(i, n)
			if start.Cmp(next) != 0 || end.Cmp(start) < 0 {
				t.Fatalf("%d shards: shard %d is [%v, %v], want it to start at %v", n, i, start, end, next)
			}
			next = new(big.Int).Add(end, big.NewInt(1))
			if shardFor(start, n) != i || shardFor(end, n) != i {
				t.Fatalf("%d shards: the ends of shard %d route to %d and %d", n, i, shardFor(start, n), shardFor(end, n))
			}
		}
		if next.Cmp(hashSpace) != 0 {
			t.Fatalf("%d shards end at %v, want 2^128", n, next)
		}
	}
	// Two shards split at 2^127, as Kinesis's do.
	if _, end := shardRange(0, 2); end.String() != "170141183460469231731687303715884105727" {
		t.Errorf("shard 0 of 2 ends at %v", end)
	}
}

func TestPartitionKeysHashAsKinesis(t *testing.T) {
	// MD5("a") = 0cc175b9c0f1b6a831c399e269772661, big-endian.
	want, _ := new(big.Int).SetString("0cc175b9c0f1b6a831c399e269772661", 16)
	if h := partitionHash("a"); h.Cmp(want) != 0 {
		t.Fatalf("hash of a: %v, want %v", h, want)
	}
	// It is below 2^128/4, so the first of four shards.
	if s := shardFor(partitionHash("a"), 4); s != 0 {
		t.Errorf("a goes to shard %d of 4", s)
	}
	for _, bad := range []string{"-1", "01", "340282366920938463463374607431768211456", "x"} {
		if _, ok := parseHashKey(bad); ok {
			t.Errorf("ExplicitHashKey %q accepted", bad)
		}
	}
	if k, ok := parseHashKey("340282366920938463463374607431768211455"); !ok || shardFor(k, 3) != 2 {
		t.Errorf("the largest hash key: %v %v", k, ok)
	}
}

func TestSequenceNumbers(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()
	a, b := sequenceNumber(created, 9, 3), sequenceNumber(created, 10, 3)
	if len(a) != 56 || a >= b || a[:2] != "49" {
		t.Fatalf("sequence numbers %s, %s", a, b)
	}
	seq, shard, ok := parseSequenceNumber(created, b)
	if !ok || seq != 10 || shard != 3 {
		t.Fatalf("parse %s: %d %d %v", b, seq, shard, ok)
	}
	if _, _, ok := parseSequenceNumber(created+time.Hour.Milliseconds(), b); ok {
		t.Errorf("a sequence number of another stream of the same name was taken")
	}
	if seq, _, ok := parseSequenceNumber(created, sequenceNumber(created, 0, 1)); !ok || seq != 0 {
		t.Errorf("a shard's starting sequence number: %d %v", seq, ok)
	}
}

func TestIteratorsRoundTrip(t *testing.T) {
	it := &iterator{Stream: "s.1", ID: "abc", Shard: 2, Pos: Position{Seq: 77}, Issued: time.UnixMilli(1700000000123)}
	got, ok := decodeIterator(it.encode())
	if !ok || *got != *it || len(it.encode()) > 512 {
		t.Fatalf("iterator %+v came back as %+v", it, got)
	}
	at := &iterator{Stream: "s", ID: "abc", Pos: Position{Time: time.UnixMilli(1700000000456)}, Issued: time.UnixMilli(1)}
	if got, ok := decodeIterator(at.encode()); !ok || !got.Pos.Time.Equal(at.Pos.Time) {
		t.Fatalf("time iterator: %+v", got)
	}
	if _, ok := decodeIterator("not an iterator"); ok {
		t.Error("garbage decoded")
	}
}
