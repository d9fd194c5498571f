package kinesis

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// hashSpace is 2^128: hash keys are unsigned 128-bit integers, and a
// stream's shards split [0, 2^128) evenly.
var hashSpace = new(big.Int).Lsh(big.NewInt(1), 128)

// maxHashKey is the largest hash key, 2^128 − 1.
var maxHashKey = new(big.Int).Sub(hashSpace, big.NewInt(1))

// hashKeyPattern is what ExplicitHashKey must look like.
var hashKeyPattern = regexp.MustCompile(`^(0|[1-9]\d{0,38})$`)

// shardRange returns the hash key range of shard i of n: shards split the
// space evenly, the last taking what the division leaves.
func shardRange(i, n int) (start, end *big.Int) {
	start = new(big.Int).Div(new(big.Int).Mul(hashSpace, big.NewInt(int64(i))), big.NewInt(int64(n)))
	end = new(big.Int).Div(new(big.Int).Mul(hashSpace, big.NewInt(int64(i+1))), big.NewInt(int64(n)))
	return start, end.Sub(end, big.NewInt(1))
}

// partitionHash is the hash key of a partition key, as Kinesis computes
// it: the MD5 of its UTF-8 bytes as a big-endian unsigned 128-bit integer.
func partitionHash(partitionKey string) *big.Int {
	sum := md5.Sum([]byte(partitionKey))
	return new(big.Int).SetBytes(sum[:])
}

// parseHashKey reads an ExplicitHashKey.
func parseHashKey(s string) (*big.Int, bool) {
	if !hashKeyPattern.MatchString(s) {
		return nil, false
	}
	k, ok := new(big.Int).SetString(s, 10)
	if !ok || k.Cmp(maxHashKey) > 0 {
		return nil, false
	}
	return k, true
}

// shardFor returns the shard of n whose hash key range holds key.
func shardFor(key *big.Int, n int) int {
	i := int(new(big.Int).Div(new(big.Int).Mul(key, big.NewInt(int64(n))), hashSpace).Int64())
	// The ranges' ends are floored, so key may sit in a neighbour.
	for i > 0 {
		if start, _ := shardRange(i, n); key.Cmp(start) >= 0 {
			break
		}
		i--
	}
	for i < n-1 {
		if _, end := shardRange(i, n); key.Cmp(end) <= 0 {
			break
		}
		i++
	}
	return i
}

// ShardID is the id Kinesis gives shard i: shardId-000000000000.
func ShardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// parseShardID reads a shard id (shardId-000000000003, or as Kinesis
// also accepts, the bare number).
func parseShardID(s string) (int, bool) {
	digits := strings.TrimPrefix(s, "shardId-")
	if digits == "" || len(digits) > 12 {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	return i, err == nil && i >= 0
}

// Sequence numbers are 56 decimal digits, as Kinesis's are:
//
//	49 | the stream's creation (10 digits, unix seconds) | the record's
//	JetStream sequence (40 digits) | the shard (4 digits)
//
// They increase within a shard (and, as Kinesis's roughly do, across a
// stream's shards in the order records arrived), differ between a stream
// and a stream made again under its name, and compare as numbers and as
// strings alike.
const (
	seqPrefix    = "49"
	seqLen       = 56
	seqEpochLen  = 10
	seqStoreLen  = 40
	seqShardLen  = 4
	maxSeqShards = 10000
)

// sequenceNumber formats the sequence number of the record stored at
// JetStream sequence seq in shard of the stream created at created (unix
// ms).
func sequenceNumber(created int64, seq uint64, shard int) string {
	return fmt.Sprintf("%s%0*d%0*d%0*d", seqPrefix, seqEpochLen, (created/1000)%1e10, seqStoreLen, seq, seqShardLen, shard)
}

// parseSequenceNumber reads a sequence number of the stream created at
// created: the JetStream sequence and the shard. ok is false when it is
// not one of this stream's.
func parseSequenceNumber(created int64, s string) (seq uint64, shard int, ok bool) {
	if len(s) != seqLen || !strings.HasPrefix(s, seqPrefix) {
		return 0, 0, false
	}
	if s[len(seqPrefix):len(seqPrefix)+seqEpochLen] != fmt.Sprintf("%0*d", seqEpochLen, (created/1000)%1e10) {
		return 0, 0, false
	}
	body := s[len(seqPrefix)+seqEpochLen:]
	seq, err := strconv.ParseUint(body[:seqStoreLen], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	shard, err = strconv.Atoi(body[seqStoreLen:])
	return seq, shard, err == nil
}
