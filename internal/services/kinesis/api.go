package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiService declares the Kinesis API.
func (s *Service) apiService() *awsproto.Service {
	api := &awsproto.Service{SigningName: "kinesis", TargetPrefix: "Kinesis_20131202", JSONVersion: "1.1"}
	api.Handle(
		awsproto.Op("CreateStream", s.createStream),
		awsproto.Op("DeleteStream", s.deleteStream),
		awsproto.Op("DescribeStream", s.describeStream),
		awsproto.Op("DescribeStreamSummary", s.describeStreamSummary),
		awsproto.Op("ListStreams", s.listStreams),
		awsproto.Op("ListShards", s.listShards),
		awsproto.Op("DescribeLimits", s.describeLimits),
		awsproto.Op("IncreaseStreamRetentionPeriod", s.increaseRetention),
		awsproto.Op("DecreaseStreamRetentionPeriod", s.decreaseRetention),
		awsproto.Op("PutRecord", s.putRecord).Bodies(2<<20, 2),
		// 5 MiB of data is 6.7 MiB of base64, in JSON.
		awsproto.Op("PutRecords", s.putRecords).Bodies(8<<20, 2),
		awsproto.Op("GetShardIterator", s.getShardIterator),
		awsproto.Op("GetRecords", s.getRecords),
	)
	return api
}

// streamNamePattern is what stream names must look like.
var streamNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// streamRef names a stream by name or ARN.
type streamRef struct {
	StreamName, StreamARN string
}

// epoch is a time as Kinesis's JSON has it: unix seconds, with
// milliseconds.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

type streamModeDetails struct {
	StreamMode string
}

type createStreamInput struct {
	StreamName        string
	ShardCount        *int
	StreamModeDetails *streamModeDetails
}

func (s *Service) createStream(c *awsproto.Call, in *createStreamInput) (*awsproto.Empty, error) {
	if !streamNamePattern.MatchString(in.StreamName) {
		return nil, errValidation("1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", in.StreamName)
	}
	mode := "PROVISIONED"
	if in.StreamModeDetails != nil {
		mode = in.StreamModeDetails.StreamMode
	}
	var shards int
	switch mode {
	case "PROVISIONED":
		if in.ShardCount == nil {
			return nil, errInvalidArgument("ShardCount is required for a PROVISIONED stream.")
		}
		shards = *in.ShardCount
	case "ON_DEMAND":
		if in.ShardCount != nil {
			return nil, errInvalidArgument("ShardCount is not allowed for an ON_DEMAND stream.")
		}
		shards = s.cfg.Limits.OnDemandShards
	default:
		return nil, errValidation("1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]", mode)
	}
	if shards < 1 {
		return nil, errValidation("1 validation error detected: Value '%d' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", shards)
	}
	ctx := c.Context()
	all := s.streams.List("", nil)
	used := 0
	for _, r := range all {
		used += r.Shards
	}
	if len(all) >= s.cfg.Limits.MaxStreams {
		return nil, errLimitExceeded("The account holds its maximum of %d streams.", s.cfg.Limits.MaxStreams)
	}
	if used+shards > s.cfg.Limits.MaxShards {
		return nil, errLimitExceeded("This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
			s.cfg.AccountID, s.cfg.Region, used, s.cfg.Limits.MaxShards, shards)
	}
	r := &streamRecord{Name: in.StreamName, ID: newStreamID(), Created: time.Now().UnixMilli(), Shards: shards, Mode: mode, RetentionHours: defaultRetention}
	if err := s.streams.Create(ctx, r.Name, r); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errInUse("Stream %s under account %s already exists.", r.Name, s.cfg.AccountID)
		}
		return nil, err
	}
	s.log.Info("stream created", "stream", r.Name, "shards", shards, "mode", mode)
	return &awsproto.Empty{}, nil
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion bool
}

func (s *Service) deleteStream(c *awsproto.Call, in *deleteStreamInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	r, err := s.lookup(ctx, in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if _, err := s.streams.Remove(ctx, r.Name, func(cur *streamRecord) bool { return cur.ID == r.ID }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound(s.arn(r.Name))
		}
		return nil, err
	}
	s.forgetLimiters(r)
	// The records go now; should this fail, their TTL removes them.
	if err := s.records.Purge(ctx, jetstream.WithPurgeSubject(recordsPrefix+r.ID+".*")); err != nil {
		s.log.Warn("purging a deleted stream's records failed; they expire with their retention", "stream", r.Name, "err", err)
	}
	s.log.Info("stream deleted", "stream", r.Name)
	return &awsproto.Empty{}, nil
}

type hashKeyRange struct {
	StartingHashKey, EndingHashKey string
}

type sequenceNumberRange struct {
	StartingSequenceNumber string
	EndingSequenceNumber   string `json:",omitempty"`
}

type shardJSON struct {
	ShardId             string
	HashKeyRange        hashKeyRange
	SequenceNumberRange sequenceNumberRange
}

// shard describes shard i of r.
func (r *streamRecord) shard(i int) shardJSON {
	start, end := shardRange(i, r.Shards)
	return shardJSON{ShardId: ShardID(i), HashKeyRange: hashKeyRange{start.String(), end.String()},
		SequenceNumberRange: sequenceNumberRange{StartingSequenceNumber: sequenceNumber(r.Created, 0, i)}}
}

type enhancedMetrics struct {
	ShardLevelMetrics []string
}

type describeStreamInput struct {
	streamRef
	Limit                 int
	ExclusiveStartShardId string
}

type streamDescription struct {
	StreamName, StreamARN, StreamStatus string
	StreamModeDetails                   streamModeDetails
	Shards                              []shardJSON
	HasMoreShards                       bool
	RetentionPeriodHours                int
	StreamCreationTimestamp             float64
	EnhancedMonitoring                  []enhancedMetrics
	EncryptionType                      string
}

type describeStreamOutput struct {
	StreamDescription streamDescription
}

func (s *Service) describeStream(c *awsproto.Call, in *describeStreamInput) (*describeStreamOutput, error) {
	r, err := s.lookup(c.Context(), in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	from := 0
	if in.ExclusiveStartShardId != "" {
		i, ok := parseShardID(in.ExclusiveStartShardId)
		if !ok {
			return nil, errInvalidArgument("Invalid ExclusiveStartShardId %s.", in.ExclusiveStartShardId)
		}
		from = i + 1
	}
	d := streamDescription{StreamName: r.Name, StreamARN: s.arn(r.Name), StreamStatus: "ACTIVE", StreamModeDetails: streamModeDetails{r.Mode},
		Shards: []shardJSON{}, RetentionPeriodHours: r.RetentionHours, StreamCreationTimestamp: epoch(time.UnixMilli(r.Created)),
		EnhancedMonitoring: []enhancedMetrics{{ShardLevelMetrics: []string{}}}, EncryptionType: "NONE"}
	for i := from; i < r.Shards; i++ {
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, r.shard(i))
	}
	return &describeStreamOutput{d}, nil
}

type streamSummary struct {
	StreamName, StreamARN, StreamStatus string
	StreamModeDetails                   streamModeDetails
	RetentionPeriodHours                int
	StreamCreationTimestamp             float64
	EnhancedMonitoring                  []enhancedMetrics
	EncryptionType                      string
	OpenShardCount, ConsumerCount       int
}

type describeStreamSummaryOutput struct {
	StreamDescriptionSummary streamSummary
}

func (s *Service) describeStreamSummary(c *awsproto.Call, in *streamRef) (*describeStreamSummaryOutput, error) {
	r, err := s.lookup(c.Context(), in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	return &describeStreamSummaryOutput{streamSummary{StreamName: r.Name, StreamARN: s.arn(r.Name), StreamStatus: "ACTIVE",
		StreamModeDetails: streamModeDetails{r.Mode}, RetentionPeriodHours: r.RetentionHours,
		StreamCreationTimestamp: epoch(time.UnixMilli(r.Created)), EnhancedMonitoring: []enhancedMetrics{{ShardLevelMetrics: []string{}}},
		EncryptionType: "NONE", OpenShardCount: r.Shards}}, nil
}

type listStreamsInput struct {
	Limit                    int
	ExclusiveStartStreamName string
	NextToken                string
}

type listedStream struct {
	StreamName, StreamARN, StreamStatus string
	StreamModeDetails                   streamModeDetails
	StreamCreationTimestamp             float64
}

type listStreamsOutput struct {
	StreamNames     []string
	HasMoreStreams  bool
	NextToken       string `json:",omitempty"`
	StreamSummaries []listedStream
}

func (s *Service) listStreams(c *awsproto.Call, in *listStreamsInput) (*listStreamsOutput, error) {
	limit := in.Limit
	if limit <= 0 {
		limit = defaultListStreams
	}
	if limit > maxListStreams {
		return nil, errValidation("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to %d", limit, maxListStreams)
	}
	after := in.ExclusiveStartStreamName
	if in.NextToken != "" {
		after = in.NextToken
	}
	out := &listStreamsOutput{StreamNames: []string{}, StreamSummaries: []listedStream{}}
	for _, r := range s.streams.List("", func(r *streamRecord) bool { return r.Name > after }) {
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			out.NextToken = out.StreamNames[len(out.StreamNames)-1]
			break
		}
		out.StreamNames = append(out.StreamNames, r.Name)
		out.StreamSummaries = append(out.StreamSummaries, listedStream{StreamName: r.Name, StreamARN: s.arn(r.Name), StreamStatus: "ACTIVE",
			StreamModeDetails: streamModeDetails{r.Mode}, StreamCreationTimestamp: epoch(time.UnixMilli(r.Created))})
	}
	return out, nil
}

type listShardsInput struct {
	streamRef
	NextToken             string
	ExclusiveStartShardId string
	MaxResults            int
}

type listShardsOutput struct {
	Shards    []shardJSON
	NextToken string `json:",omitempty"`
}

func (s *Service) listShards(c *awsproto.Call, in *listShardsInput) (*listShardsOutput, error) {
	name, from := in.StreamName, 0
	if in.NextToken != "" {
		tok, ok := decodeIterator(in.NextToken)
		if !ok {
			return nil, errInvalidArgument("Invalid NextToken.")
		}
		name, from = tok.Stream, tok.Shard
	} else if in.ExclusiveStartShardId != "" {
		i, ok := parseShardID(in.ExclusiveStartShardId)
		if !ok {
			return nil, errInvalidArgument("Invalid ExclusiveStartShardId %s.", in.ExclusiveStartShardId)
		}
		from = i + 1
	}
	arn := in.StreamARN
	if in.NextToken != "" {
		arn = ""
	}
	r, err := s.lookup(c.Context(), name, arn)
	if err != nil {
		return nil, err
	}
	limit := in.MaxResults
	if limit <= 0 {
		limit = defaultListShards
	}
	if limit > maxListShards {
		return nil, errValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to %d", limit, maxListShards)
	}
	out := &listShardsOutput{Shards: []shardJSON{}}
	for i := from; i < r.Shards; i++ {
		if len(out.Shards) == limit {
			// The token is an iterator-shaped cursor: the stream and the
			// next shard.
			out.NextToken = (&iterator{Stream: r.Name, ID: r.ID, Shard: i, Issued: time.Now()}).encode()
			break
		}
		out.Shards = append(out.Shards, r.shard(i))
	}
	return out, nil
}

type describeLimitsOutput struct {
	ShardLimit, OpenShardCount, OnDemandStreamCount, OnDemandStreamCountLimit int
}

func (s *Service) describeLimits(c *awsproto.Call, _ *awsproto.Empty) (*describeLimitsOutput, error) {
	out := &describeLimitsOutput{ShardLimit: s.cfg.Limits.MaxShards, OnDemandStreamCountLimit: s.cfg.Limits.MaxStreams}
	for _, r := range s.streams.List("", nil) {
		out.OpenShardCount += r.Shards
		if r.Mode == "ON_DEMAND" {
			out.OnDemandStreamCount++
		}
	}
	return out, nil
}

type retentionInput struct {
	streamRef
	RetentionPeriodHours int
}

func (s *Service) increaseRetention(c *awsproto.Call, in *retentionInput) (*awsproto.Empty, error) {
	return s.setRetention(c.Context(), in, true)
}

func (s *Service) decreaseRetention(c *awsproto.Call, in *retentionInput) (*awsproto.Empty, error) {
	return s.setRetention(c.Context(), in, false)
}

// setRetention is Increase/DecreaseStreamRetentionPeriod. Records written
// before a decrease stop being read once they are older than the new
// period; JetStream deletes them at the end of the period they were
// written with.
func (s *Service) setRetention(ctx context.Context, in *retentionInput, increase bool) (*awsproto.Empty, error) {
	cur, err := s.lookup(ctx, in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	h := in.RetentionPeriodHours
	if h < defaultRetention || h > maxRetention {
		return nil, errInvalidArgument("Minimum allowed retention period is %d hours. Maximum allowed retention period is %d hours. Requested retention period (%d hours) is out of range.", defaultRetention, maxRetention, h)
	}
	_, err = s.streams.Update(ctx, cur.Name, func(r *streamRecord) error {
		if r.ID != cur.ID {
			return errNotFound(s.arn(cur.Name))
		}
		if increase && h < r.RetentionHours {
			return errInvalidArgument("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, r.Name, r.RetentionHours)
		}
		if !increase && h > r.RetentionHours {
			return errInvalidArgument("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, r.Name, r.RetentionHours)
		}
		r.RetentionHours = h
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(s.arn(cur.Name))
	}
	if err != nil {
		return nil, err
	}
	return &awsproto.Empty{}, nil
}

// putEntry is one record to write.
type putEntry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
}

type putRecordInput struct {
	streamRef
	putEntry
	SequenceNumberForOrdering string
}

type putRecordOutput struct {
	ShardId, SequenceNumber, EncryptionType string
}

func (s *Service) putRecord(c *awsproto.Call, in *putRecordInput) (*putRecordOutput, error) {
	ctx := c.Context()
	r, err := s.lookup(ctx, in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.SequenceNumberForOrdering != "" {
		if _, _, ok := parseSequenceNumber(r.Created, in.SequenceNumberForOrdering); !ok {
			return nil, errInvalidArgument("ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account %s is invalid.", in.SequenceNumberForOrdering, r.Name, s.cfg.AccountID)
		}
	}
	results, errs := s.put(ctx, r, []putEntry{in.putEntry})
	if errs[0] != nil {
		return nil, errs[0]
	}
	return &putRecordOutput{ShardId: ShardID(results[0].shard), SequenceNumber: results[0].seq, EncryptionType: "NONE"}, nil
}

type putRecordsInput struct {
	streamRef
	Records []putEntry
}

type putResultEntry struct {
	SequenceNumber string `json:",omitempty"`
	ShardId        string `json:",omitempty"`
	ErrorCode      string `json:",omitempty"`
	ErrorMessage   string `json:",omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int
	Records           []putResultEntry
	EncryptionType    string
}

func (s *Service) putRecords(c *awsproto.Call, in *putRecordsInput) (*putRecordsOutput, error) {
	ctx := c.Context()
	r, err := s.lookup(ctx, in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if len(in.Records) < 1 || len(in.Records) > maxPutRecords {
		return nil, errValidation("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to %d, Member must have length greater than or equal to 1", maxPutRecords)
	}
	total := 0
	for _, e := range in.Records {
		total += len(e.Data) + len(e.PartitionKey)
	}
	if total > maxPutRecordsBytes {
		return nil, errInvalidArgument("Records size exceeds %d MB limit", maxPutRecordsBytes>>20)
	}
	results, errs := s.put(ctx, r, in.Records)
	out := &putRecordsOutput{Records: make([]putResultEntry, len(in.Records)), EncryptionType: "NONE"}
	for i, err := range errs {
		if err == nil {
			out.Records[i] = putResultEntry{SequenceNumber: results[i].seq, ShardId: ShardID(results[i].shard)}
			continue
		}
		var e *awsproto.Error
		if !errors.As(err, &e) || (e.Code != "ProvisionedThroughputExceededException" && e.Code != "InternalFailure") {
			if errors.As(err, &e) && e.Status < 500 {
				return nil, err // a malformed entry fails the request
			}
			s.log.Warn("writing a record failed", "stream", r.Name, "err", err)
			e = &awsproto.Error{Code: "InternalFailure", Message: "Internal service failure."}
		}
		out.FailedRecordCount++
		out.Records[i] = putResultEntry{ErrorCode: e.Code, ErrorMessage: e.Message}
	}
	return out, nil
}

// putResult is where a record was written.
type putResult struct {
	shard int
	seq   string
}

// checkEntry validates a record and returns its shard.
func (r *streamRecord) checkEntry(e *putEntry) (int, error) {
	if n := len(e.PartitionKey); n < 1 || n > maxPartitionKey {
		return 0, errValidation("1 validation error detected: Value '%s' at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to %d, Member must have length greater than or equal to 1", e.PartitionKey, maxPartitionKey)
	}
	if len(e.Data)+len(e.PartitionKey) > maxRecordSize {
		return 0, errValidation("1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to %d", maxRecordSize)
	}
	key := partitionHash(e.PartitionKey)
	if e.ExplicitHashKey != "" {
		k, ok := parseHashKey(e.ExplicitHashKey)
		if !ok {
			return 0, errInvalidArgument("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", e.ExplicitHashKey)
		}
		key = k
	}
	return shardFor(key, r.Shards), nil
}

// put writes records to their shards, in order, each bounded by its
// shard's write rate. A record over the rate, or refused by full storage,
// fails with ProvisionedThroughputExceeded; a malformed one with its
// validation error.
func (s *Service) put(ctx context.Context, r *streamRecord, entries []putEntry) ([]putResult, []error) {
	results := make([]putResult, len(entries))
	errs := make([]error, len(entries))
	if err := s.health.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return results, errs
	}
	futures := make([]jetstream.PubAckFuture, len(entries))
	for i := range entries {
		e := &entries[i]
		shard, err := r.checkEntry(e)
		if err != nil {
			errs[i] = err
			continue
		}
		results[i].shard = shard
		if !s.allowWrite(r, shard, len(e.Data)+len(e.PartitionKey)) {
			errs[i] = errThroughput(s.throughputMessage(r, shard))
			continue
		}
		msg := &nats.Msg{Subject: r.subject(shard), Data: e.Data, Header: nats.Header{partitionKeyHd: []string{e.PartitionKey}}}
		if futures[i], err = s.js.PublishMsgAsync(msg, jetstream.WithMsgTTL(r.retention()), jetstream.WithExpectStream(recordsStream)); err != nil {
			errs[i] = s.publishError(ctx, err)
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			results[i].seq = sequenceNumber(r.Created, ack.Sequence, results[i].shard)
		case err := <-f.Err():
			errs[i] = s.publishError(ctx, err)
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return results, errs
}

// publishError is the error of a write JetStream refused.
func (s *Service) publishError(ctx context.Context, err error) error {
	if store.IsStreamFull(err) {
		return errThroughput("The storage of streams is full: writes are refused until records expire.")
	}
	return fmt.Errorf("kinesis: put: %w", s.health.Check(ctx, err))
}

type getShardIteratorInput struct {
	streamRef
	ShardId                string
	ShardIteratorType      string
	StartingSequenceNumber string
	Timestamp              *float64
}

type getShardIteratorOutput struct {
	ShardIterator string
}

func (s *Service) getShardIterator(c *awsproto.Call, in *getShardIteratorInput) (*getShardIteratorOutput, error) {
	ctx := c.Context()
	r, err := s.lookup(ctx, in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	shard, ok := parseShardID(in.ShardId)
	if !ok || shard >= r.Shards {
		return nil, awsproto.Errorf(400, "ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", in.ShardId, r.Name, s.cfg.AccountID)
	}
	it := &iterator{Stream: r.Name, ID: r.ID, Shard: shard, Issued: time.Now()}
	atSeq := func() (uint64, error) {
		if in.StartingSequenceNumber == "" {
			return 0, errInvalidArgument("StartingSequenceNumber is required for %s.", in.ShardIteratorType)
		}
		seq, sh, ok := parseSequenceNumber(r.Created, in.StartingSequenceNumber)
		if !ok || sh != shard {
			return 0, errInvalidArgument("Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", in.StartingSequenceNumber, in.ShardId)
		}
		return seq, nil
	}
	switch in.ShardIteratorType {
	case "TRIM_HORIZON":
	case "LATEST":
		if it.Pos.Seq, err = s.latest(ctx); err != nil {
			return nil, err
		}
	case "AT_SEQUENCE_NUMBER":
		if it.Pos.Seq, err = atSeq(); err != nil {
			return nil, err
		}
	case "AFTER_SEQUENCE_NUMBER":
		if it.Pos.Seq, err = atSeq(); err != nil {
			return nil, err
		}
		it.Pos.Seq++
	case "AT_TIMESTAMP":
		if in.Timestamp == nil {
			return nil, errInvalidArgument("Timestamp is required for AT_TIMESTAMP.")
		}
		it.Pos.Time = time.UnixMilli(int64(math.Round(*in.Timestamp * 1000)))
		if it.Pos.Time.After(time.Now()) {
			// No record is there yet: the iterator reads what comes.
			if it.Pos.Seq, err = s.latest(ctx); err != nil {
				return nil, err
			}
			it.Pos.Time = time.Time{}
		}
	default:
		return nil, errValidation("1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]", in.ShardIteratorType)
	}
	return &getShardIteratorOutput{ShardIterator: it.encode()}, nil
}

type getRecordsInput struct {
	ShardIterator string
	Limit         int
	StreamARN     string
}

type recordJSON struct {
	SequenceNumber              string
	ApproximateArrivalTimestamp float64
	Data                        []byte
	PartitionKey                string
}

type getRecordsOutput struct {
	Records            []recordJSON
	NextShardIterator  string
	MillisBehindLatest int64
}

func (s *Service) getRecords(c *awsproto.Call, in *getRecordsInput) (*getRecordsOutput, error) {
	ctx := c.Context()
	it, ok := decodeIterator(in.ShardIterator)
	if !ok {
		return nil, errInvalidArgument("Invalid ShardIterator.")
	}
	if time.Since(it.Issued) > iteratorLifetime {
		return nil, errExpiredIterator("Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			it.Issued.UTC().Format(time.RFC1123), time.Now().UTC().Format(time.RFC1123), iteratorLifetime.Milliseconds())
	}
	r, err := s.lookup(ctx, it.Stream, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if r.ID != it.ID || it.Shard >= r.Shards {
		return nil, errNotFound(s.arn(it.Stream))
	}
	limit := in.Limit
	if limit <= 0 {
		limit = maxGetRecords
	}
	if limit > maxGetRecords {
		return nil, errInvalidArgument("Limit %d exceeds the maximum of %d.", limit, maxGetRecords)
	}
	var lim *shardLimiter
	if !s.cfg.Limits.Unthrottled {
		lim = s.limiter(r, it.Shard)
		if !allow(time.Now(), take{lim.reads, 1}) {
			return nil, errThroughput(s.throughputMessage(r, it.Shard))
		}
	}
	maxBytes := maxGetRecordsBytes
	if lim != nil {
		// What the shard's read rate has left, at least one record.
		maxBytes = max(min(maxBytes, int(lim.readBytes.Tokens())), maxStoredRecord)
	}
	records, through, pending, err := s.read(ctx, r, it.Shard, it.Pos, limit, maxBytes)
	if err != nil {
		return nil, err
	}
	out := &getRecordsOutput{Records: make([]recordJSON, len(records))}
	size := 0
	for i, rec := range records {
		out.Records[i] = recordJSON{SequenceNumber: rec.SequenceNumber, ApproximateArrivalTimestamp: epoch(rec.Arrival), Data: rec.Data, PartitionKey: rec.PartitionKey}
		size += len(rec.Data) + len(rec.PartitionKey)
	}
	if lim != nil && size > 0 {
		lim.readBytes.ReserveN(time.Now(), min(size, maxGetRecordsBytes)) // later reads wait for it
	}
	next := *it
	next.Issued = time.Now()
	if through > 0 {
		next.Pos = Position{Seq: through + 1}
	}
	if len(records) > 0 {
		if pending > 0 {
			out.MillisBehindLatest = max(time.Since(records[len(records)-1].Arrival).Milliseconds(), 0)
		}
	}
	out.NextShardIterator = next.encode()
	return out, nil
}
