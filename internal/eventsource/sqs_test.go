package eventsource

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/services/sqs"
)

func batchOf(ids ...string) []*sqs.Message {
	var out []*sqs.Message
	for _, id := range ids {
		out = append(out, &sqs.Message{MessageID: id, Attributes: map[string]string{"MessageGroupId": id[:1]}})
	}
	return out
}

func TestBatchItemFailures(t *testing.T) {
	for _, tc := range []struct {
		payload string
		failed  []string
		ok      bool
	}{
		{``, nil, true},
		{`null`, nil, true},
		{`{}`, nil, true},
		{`"done"`, nil, true},
		{`{"batchItemFailures":null}`, nil, true},
		{`{"batchItemFailures":[]}`, nil, true},
		{`{"batchItemFailures":[{"itemIdentifier":"a2"}]}`, []string{"a2"}, true},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifier":null}]}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifer":"a2"}]}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifier":"zz"}]}`, nil, false},
		{`{"batchItemFailures":"a2"}`, nil, false},
		{`{not json`, nil, false},
	} {
		failed, ok := batchItemFailures([]byte(tc.payload), map[string]bool{"a1": true, "a2": true, "b1": true})
		var ids []string
		for id := range failed {
			ids = append(ids, id)
		}
		if ok != tc.ok || !slices.Equal(ids, tc.failed) {
			t.Errorf("%s: failed %v ok %v, want %v %v", tc.payload, ids, ok, tc.failed, tc.ok)
		}
	}
}

func TestSucceededKeepsFIFOGroupsInOrder(t *testing.T) {
	batch := batchOf("a1", "a2", "a3", "b1", "b2")
	failed := map[string]bool{"a2": true}
	ids := func(msgs []*sqs.Message) (out []string) {
		for _, m := range msgs {
			out = append(out, m.MessageID)
		}
		return out
	}
	if got := ids(succeeded(batch, failed, false)); !slices.Equal(got, []string{"a1", "a3", "b1", "b2"}) {
		t.Errorf("standard: %v", got)
	}
	if got := ids(succeeded(batch, failed, true)); !slices.Equal(got, []string{"a1", "b1", "b2"}) {
		t.Errorf("FIFO: %v (a3 must wait behind a2)", got)
	}
}

func TestRecordShape(t *testing.T) {
	p := &sqsPoller{m: &Mapping{Configuration: Configuration{EventSourceArn: "arn:aws:sqs:us-east-1:000000000000:q"}}, region: "us-east-1"}
	r := p.record(&sqs.Message{MessageID: "id", ReceiptHandle: "rh", Body: "hi", MD5OfBody: "md5",
		Attributes:        map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "5", "Unlisted": "x"},
		MessageAttributes: map[string]sqs.MessageAttribute{"k": {DataType: "String", StringValue: "v"}, "b": {DataType: "Binary", BinaryValue: []byte{1}}}})
	data, _ := json.Marshal(r)
	want := `{"messageId":"id","receiptHandle":"rh","body":"hi","attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"5"},` +
		`"messageAttributes":{"b":{"binaryValue":"AQ==","stringListValues":[],"binaryListValues":[],"dataType":"Binary"},` +
		`"k":{"stringValue":"v","stringListValues":[],"binaryListValues":[],"dataType":"String"}},` +
		`"md5OfBody":"md5","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:000000000000:q","awsRegion":"us-east-1"}`
	if string(data) != want {
		t.Errorf("record\n%s\nwant\n%s", data, want)
	}
}

func TestOldestAge(t *testing.T) {
	now := time.Now()
	msg := func(ago time.Duration) *sqs.Message {
		return &sqs.Message{Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(now.Add(-ago).UnixMilli(), 10)}}
	}
	if got := oldestAge(nil); got != 0 {
		t.Errorf("empty batch: %v, want 0", got)
	}
	got := oldestAge([]*sqs.Message{msg(2 * time.Second), msg(90 * time.Second), msg(time.Second)})
	if got < 90*time.Second || got > 100*time.Second {
		t.Errorf("oldest of 2 s, 90 s and 1 s: %v", got)
	}
}
