package sqs

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
)

// The SQS API: its operations' shapes, as SQS's model names their members
// in JSON and (by `query` tags) in the query protocol, and their handlers.

// Body limits of the operations that carry messages: a message of
// maxMessageSize, escaped (JSON escapes or percent-encoding triple it at
// worst), with its attributes.
const (
	maxSendBody    = 4 * maxMessageSize
	sendBodyCopies = 3
)

// apiService is the SQS API on its JSON 1.0 and query protocols.
func (s *Service) apiService() *awsproto.Service {
	api := &awsproto.Service{SigningName: "sqs", TargetPrefix: "AmazonSQS", JSONVersion: "1.0",
		ErrorNamespace: "com.amazonaws.sqs#", QueryCompatible: true,
		QueryVersion: "2012-11-05", XMLNamespace: "http://queue.amazonaws.com/doc/2012-11-05/"}
	api.Handle(
		awsproto.Op("CreateQueue", s.createQueue),
		awsproto.Op("DeleteQueue", s.deleteQueue),
		awsproto.Op("GetQueueUrl", s.getQueueURL),
		awsproto.Op("ListQueues", s.listQueues),
		awsproto.Op("GetQueueAttributes", s.getQueueAttributes),
		awsproto.Op("SetQueueAttributes", s.setQueueAttributes),
		awsproto.Op("TagQueue", s.tagQueue),
		awsproto.Op("UntagQueue", s.untagQueue),
		awsproto.Op("ListQueueTags", s.listQueueTags),
		awsproto.Op("ListDeadLetterSourceQueues", s.listDeadLetterSourceQueues),
		awsproto.Op("PurgeQueue", s.purgeQueue),
		awsproto.Op("SendMessage", s.sendMessage).Bodies(maxSendBody, sendBodyCopies),
		awsproto.Op("SendMessageBatch", s.sendMessageBatch).Bodies(maxSendBody, sendBodyCopies),
		awsproto.Op("ReceiveMessage", s.receiveMessage),
		awsproto.Op("DeleteMessage", s.deleteMessageOp),
		awsproto.Op("DeleteMessageBatch", s.deleteMessageBatch),
		awsproto.Op("ChangeMessageVisibility", s.changeMessageVisibility),
		awsproto.Op("ChangeMessageVisibilityBatch", s.changeMessageVisibilityBatch),
	)
	return api
}

// queueURLInput is the input of operations that name only a queue.
type queueURLInput struct {
	QueueUrl string
}

// queueURLOutput is an output that is a queue's URL.
type queueURLOutput struct {
	QueueUrl string
}

type createQueueInput struct {
	QueueName  string
	Attributes map[string]string `query:"Attribute,flat,key=Name,value=Value"`
	Tags       map[string]string `json:"tags" query:"Tag,flat,key=Key,value=Value"`
}

func (s *Service) createQueue(c *awsproto.Call, in *createQueueInput) (*queueURLOutput, error) {
	ctx := c.Context()
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	q, err := s.newQueue(ctx, in.QueueName, in.Attributes, in.Tags)
	if err != nil {
		return nil, err
	}
	out := &queueURLOutput{QueueUrl: s.queueURL(c.Request.Host, in.QueueName)}
	for attempt := 0; ; attempt++ {
		old, err := s.queues.Get(ctx, in.QueueName)
		if err == nil {
			// Creating a queue that exists with the same attributes (those
			// given, as they were stored) returns it.
			given := map[string]string{}
			for name := range in.Attributes {
				given[name] = q.Attributes[name]
			}
			if name := sameAttributes(old, given); name != "" {
				return nil, errQueueNameExists(name)
			}
			return out, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if n := len(s.queues.Keys("")); n >= s.cfg.Limits.MaxQueues {
			return nil, errOverLimit("The account holds its maximum of %d queues.", s.cfg.Limits.MaxQueues)
		}
		err = s.queues.Create(ctx, in.QueueName, q)
		if err == nil {
			s.log.Info("queue created", "queue", q.Name, "fifo", q.FIFO)
			return out, nil
		}
		if !errors.Is(err, store.ErrExists) || attempt > 0 {
			return nil, err
		}
		// Another request created it meanwhile: compare with that one.
	}
}

func (s *Service) deleteQueue(c *awsproto.Call, in *queueURLInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if _, err := s.queues.Remove(ctx, q.Name, func(r *queueRecord) bool { return r.ID == q.ID }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrQueueDoesNotExist()
		}
		return nil, err
	}
	if err := s.dropMessages(ctx, q.ID); err != nil {
		// The queue is gone; its messages are unreachable and expire.
		s.log.Warn("deleting a deleted queue's messages failed", "queue", q.Name, "err", err)
	}
	s.log.Info("queue deleted", "queue", q.Name)
	return &awsproto.Empty{}, nil
}

type getQueueURLInput struct {
	QueueName              string
	QueueOwnerAWSAccountId string
}

func (s *Service) getQueueURL(c *awsproto.Call, in *getQueueURLInput) (*queueURLOutput, error) {
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != s.cfg.AccountID {
		return nil, ErrQueueDoesNotExist()
	}
	q, err := s.queueByName(c.Context(), in.QueueName)
	if err != nil {
		return nil, err
	}
	return &queueURLOutput{QueueUrl: s.queueURL(c.Request.Host, q.Name)}, nil
}

type listQueuesInput struct {
	QueueNamePrefix string
	MaxResults      *int
	NextToken       string
}

type listQueuesOutput struct {
	QueueUrls []string `json:",omitempty" query:"QueueUrl,flat"`
	NextToken string   `json:",omitempty"`
}

// maxListResults bounds a page of ListQueues and ListDeadLetterSourceQueues.
const maxListResults = 1000

// page returns the names after token (a name), at most limit of them, and
// the token of the next page.
func page(names []string, maxResults *int, token string) ([]string, string, error) {
	limit := maxListResults
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > maxListResults {
			return nil, "", errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.", *maxResults)
		}
		limit = *maxResults
	}
	if token != "" {
		i, _ := slices.BinarySearch(names, token)
		for i < len(names) && names[i] <= token {
			i++
		}
		names = names[i:]
	}
	next := ""
	if len(names) > limit {
		names = names[:limit]
		// Only a caller that asked for pages gets a token, as SQS does.
		if maxResults != nil {
			next = names[limit-1]
		}
	}
	return names, next, nil
}

func (s *Service) listQueues(c *awsproto.Call, in *listQueuesInput) (*listQueuesOutput, error) {
	names, next, err := page(s.queues.Keys(in.QueueNamePrefix), in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &listQueuesOutput{NextToken: next}
	for _, name := range names {
		out.QueueUrls = append(out.QueueUrls, s.queueURL(c.Request.Host, name))
	}
	return out, nil
}

type getQueueAttributesInput struct {
	QueueUrl       string
	AttributeNames []string `query:"AttributeName,flat"`
}

type attributesOutput struct {
	Attributes map[string]string `json:",omitempty" query:"Attribute,flat,key=Name,value=Value"`
}

// The names GetQueueAttributes knows, settable or not.
var knownAttributes = []string{
	attrDelay, attrMaxMessageSize, attrRetention, attrWaitTime, attrVisibility, attrRedrivePolicy, attrRedriveAllow,
	attrPolicy, attrKmsKey, attrKmsReuse, attrSSE, attrFifo, attrContentDedup, attrDedupScope, attrThroughputLimit,
	attrArn, attrMessages, attrMessagesInFlight, attrMessagesDelayed, attrCreated, attrModified,
}

func (s *Service) getQueueAttributes(c *awsproto.Call, in *getQueueAttributesInput) (*attributesOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, name := range in.AttributeNames {
		switch {
		case name == "All":
			for _, n := range knownAttributes {
				want[n] = true
			}
		case slices.Contains(knownAttributes, name):
			want[name] = true
		default:
			return nil, errInvalidAttributeName("Unknown Attribute %s.", name)
		}
	}
	out := &attributesOutput{Attributes: map[string]string{}}
	for name := range want {
		if v, ok := q.Attributes[name]; ok {
			out.Attributes[name] = v
		}
	}
	if want[attrArn] {
		out.Attributes[attrArn] = s.queueARN(q.Name)
	}
	if want[attrCreated] {
		out.Attributes[attrCreated] = strconv.FormatInt(q.Created, 10)
	}
	if want[attrModified] {
		out.Attributes[attrModified] = strconv.FormatInt(q.Modified, 10)
	}
	if want[attrMessages] || want[attrMessagesInFlight] || want[attrMessagesDelayed] {
		visible, inFlight, delayed, err := s.counts(ctx, q)
		if err != nil {
			return nil, err
		}
		for name, n := range map[string]int{attrMessages: visible, attrMessagesInFlight: inFlight, attrMessagesDelayed: delayed} {
			if want[name] {
				out.Attributes[name] = strconv.Itoa(n)
			}
		}
	}
	return out, nil
}

// counts returns how many of q's messages are receivable, in flight and
// delayed, as this node's view sees them once caught up with the streams.
func (s *Service) counts(ctx context.Context, q *queueRecord) (visible, inFlight, delayed int, err error) {
	v, err := s.view(ctx, q)
	if err != nil {
		return 0, 0, 0, err
	}
	s.catchUp(ctx, v)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.purge(q.PurgedThrough)
	visible, inFlight, delayed = v.counts(nowMs())
	return visible, inFlight, delayed, nil
}

type setQueueAttributesInput struct {
	QueueUrl   string
	Attributes map[string]string `query:"Attribute,flat,key=Name,value=Value"`
}

func (s *Service) setQueueAttributes(c *awsproto.Call, in *setQueueAttributesInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if len(in.Attributes) == 0 {
		return nil, errMissingParameter("Attributes")
	}
	// Check once outside the update: checking a RedrivePolicy reads
	// another queue's record.
	check := *q
	check.Attributes = copyAttrs(q.Attributes)
	if err := s.applyAttributes(ctx, &check, in.Attributes); err != nil {
		return nil, err
	}
	_, err = s.queues.Update(ctx, q.Name, func(r *queueRecord) error {
		if r.ID != q.ID {
			return ErrQueueDoesNotExist()
		}
		r.Attributes = copyAttrs(r.Attributes)
		r.Modified = time.Now().Unix()
		return s.applyAttributes(ctx, r, in.Attributes)
	})
	return &awsproto.Empty{}, err
}

type tagQueueInput struct {
	QueueUrl string
	Tags     map[string]string `query:"Tag,flat,key=Key,value=Value"`
}

var tagKeyRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)

// checkTags validates tags as SQS does.
func checkTags(tags map[string]string) error {
	for k, v := range tags {
		if !tagKeyRE.MatchString(k) || strings.HasPrefix(strings.ToLower(k), "aws:") || len(v) > 256 {
			return errInvalidParameter("Tag %q is invalid: keys are 1 to 128 letters, digits, spaces and _.:/=+-@, not starting with aws:, values at most 256.", k)
		}
	}
	return nil
}

func (s *Service) tagQueue(c *awsproto.Call, in *tagQueueInput) (*awsproto.Empty, error) {
	if len(in.Tags) == 0 {
		return nil, errMissingParameter("Tags")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return s.changeTags(c.Context(), in.QueueUrl, func(tags map[string]string) {
		for k, v := range in.Tags {
			tags[k] = v
		}
	})
}

type untagQueueInput struct {
	QueueUrl string
	TagKeys  []string `query:"TagKey,flat"`
}

func (s *Service) untagQueue(c *awsproto.Call, in *untagQueueInput) (*awsproto.Empty, error) {
	if len(in.TagKeys) == 0 {
		return nil, errMissingParameter("TagKeys")
	}
	return s.changeTags(c.Context(), in.QueueUrl, func(tags map[string]string) {
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
	})
}

// changeTags applies change to the tags of the queue queueURL names.
func (s *Service) changeTags(ctx context.Context, queueURL string, change func(map[string]string)) (*awsproto.Empty, error) {
	q, err := s.queueByURL(ctx, queueURL)
	if err != nil {
		return nil, err
	}
	_, err = s.queues.Update(ctx, q.Name, func(r *queueRecord) error {
		if r.ID != q.ID {
			return ErrQueueDoesNotExist()
		}
		tags := copyAttrs(r.Tags)
		change(tags)
		if len(tags) > maxTags {
			return errInvalidParameter("Too many tags: a queue has at most %d.", maxTags)
		}
		r.Tags = tags
		return nil
	})
	return &awsproto.Empty{}, err
}

type tagsOutput struct {
	Tags map[string]string `json:",omitempty" query:"Tag,flat,key=Key,value=Value"`
}

func (s *Service) listQueueTags(c *awsproto.Call, in *queueURLInput) (*tagsOutput, error) {
	q, err := s.queueByURL(c.Context(), in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return &tagsOutput{Tags: q.Tags}, nil
}

type listSourcesInput struct {
	QueueUrl   string
	MaxResults *int
	NextToken  string
}

type listSourcesOutput struct {
	QueueUrls []string `json:"queueUrls" query:"QueueUrl,flat"`
	NextToken string   `json:",omitempty"`
}

func (s *Service) listDeadLetterSourceQueues(c *awsproto.Call, in *listSourcesInput) (*listSourcesOutput, error) {
	q, err := s.queueByURL(c.Context(), in.QueueUrl)
	if err != nil {
		return nil, err
	}
	arn := s.queueARN(q.Name)
	var sources []string
	for _, r := range s.queues.List("", func(r *queueRecord) bool { return r.Redrive != nil && r.Redrive.DeadLetterTargetArn == arn }) {
		sources = append(sources, r.Name)
	}
	names, next, err := page(sources, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &listSourcesOutput{QueueUrls: []string{}, NextToken: next}
	for _, name := range names {
		out.QueueUrls = append(out.QueueUrls, s.queueURL(c.Request.Host, name))
	}
	return out, nil
}

func (s *Service) purgeQueue(c *awsproto.Call, in *queueURLInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return &awsproto.Empty{}, s.purge(ctx, q)
}

// systemAttributeValue is a MessageSystemAttributeValue: only
// AWSTraceHeader, a String, is sent.
type systemAttributeValue struct {
	DataType    string
	StringValue string `json:",omitempty"`
}

// sendFields are what SendMessage and a SendMessageBatch entry share.
type sendFields struct {
	MessageBody             string
	DelaySeconds            *int
	MessageAttributes       map[string]MessageAttribute     `query:"MessageAttribute,flat,key=Name,value=Value"`
	MessageSystemAttributes map[string]systemAttributeValue `query:"MessageSystemAttribute,flat,key=Name,value=Value"`
	MessageDeduplicationId  string
	MessageGroupId          string
}

// outgoing returns the message the fields describe. trace is the
// request's X-Amzn-Trace-Id: as SQS does, it becomes the message's
// AWSTraceHeader unless the message names one itself.
func (f *sendFields) outgoing(trace string) (*OutgoingMessage, error) {
	m := &OutgoingMessage{Body: f.MessageBody, DelaySeconds: f.DelaySeconds, Attributes: f.MessageAttributes,
		GroupID: f.MessageGroupId, DeduplicationID: f.MessageDeduplicationId, TraceHeader: trace}
	for name, v := range f.MessageSystemAttributes {
		if name != "AWSTraceHeader" || v.DataType != "String" || v.StringValue == "" {
			return nil, errInvalidParameter("Message system attribute %s is invalid: only AWSTraceHeader, a String, may be sent.", name)
		}
		m.TraceHeader = v.StringValue
	}
	return m, nil
}

type sendMessageInput struct {
	QueueUrl string
	sendFields
}

type sendMessageOutput struct {
	MessageId                    string
	MD5OfMessageBody             string
	MD5OfMessageAttributes       string `json:",omitempty"`
	MD5OfMessageSystemAttributes string `json:",omitempty"`
	SequenceNumber               string `json:",omitempty"`
}

func (s *Service) sendMessage(c *awsproto.Call, in *sendMessageInput) (*sendMessageOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	m, err := in.outgoing(c.Request.Header.Get("X-Amzn-Trace-Id"))
	if err != nil {
		return nil, err
	}
	results, errs := s.send(ctx, q, c.AccessKeyID, []*OutgoingMessage{m})
	if errs[0] != nil {
		return nil, errs[0]
	}
	r := results[0]
	return &sendMessageOutput{MessageId: r.MessageID, MD5OfMessageBody: r.MD5OfBody, MD5OfMessageAttributes: r.MD5OfAttributes,
		MD5OfMessageSystemAttributes: r.MD5OfSystemAttributes, SequenceNumber: r.SequenceNumber}, nil
}

type sendBatchEntry struct {
	Id string
	sendFields
}

type sendBatchInput struct {
	QueueUrl string
	Entries  []sendBatchEntry `query:"SendMessageBatchRequestEntry,flat"`
}

type sendBatchResultEntry struct {
	Id string
	sendMessageOutput
}

// batchError is a BatchResultErrorEntry.
type batchError struct {
	Id          string
	SenderFault bool
	Code        string
	Message     string `json:",omitempty"`
}

type sendBatchOutput struct {
	Successful []sendBatchResultEntry `query:"SendMessageBatchResultEntry,flat"`
	Failed     []batchError           `query:"BatchResultErrorEntry,flat"`
}

var batchIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// checkBatch checks a batch's entry ids.
func checkBatch(ids []string) error {
	if len(ids) == 0 {
		return errEmptyBatch()
	}
	if len(ids) > maxBatchEntries {
		return errTooManyEntries(len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDRE.MatchString(id) {
			return errInvalidBatchEntryID(id)
		}
		if seen[id] {
			return errBatchIDsNotDistinct(id)
		}
		seen[id] = true
	}
	return nil
}

// entryError is the BatchResultErrorEntry of an entry that failed with
// err: SQS's code for the caller's errors, InternalError for Lamina's.
func entryError(id string, err error) batchError {
	var e *awsproto.Error
	if errors.As(err, &e) {
		code := e.QueryCode
		if code == "" {
			code = e.Code
		}
		return batchError{Id: id, SenderFault: !e.Receiver, Code: code, Message: e.Message}
	}
	var ue *store.UnavailableError
	if errors.As(err, &ue) {
		return batchError{Id: id, Code: "ServiceUnavailable", Message: "The storage of queues is unavailable or full; retry later."}
	}
	return batchError{Id: id, Code: "InternalError", Message: "An internal error occurred."}
}

func (s *Service) sendMessageBatch(c *awsproto.Call, in *sendBatchInput) (*sendBatchOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	size := 0
	for i, e := range in.Entries {
		ids[i] = e.Id
		size += len(e.MessageBody)
		for name, a := range e.MessageAttributes {
			size += len(name) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
		}
	}
	if err := checkBatch(ids); err != nil {
		return nil, err
	}
	if size > maxMessageSize {
		return nil, errBatchTooLong(size, maxMessageSize)
	}
	out := &sendBatchOutput{Successful: []sendBatchResultEntry{}, Failed: []batchError{}}
	var msgs []*OutgoingMessage
	var sentIDs []string
	for _, e := range in.Entries {
		m, err := e.outgoing(c.Request.Header.Get("X-Amzn-Trace-Id"))
		if err != nil {
			out.Failed = append(out.Failed, entryError(e.Id, err))
			continue
		}
		msgs = append(msgs, m)
		sentIDs = append(sentIDs, e.Id)
	}
	results, errs := s.send(ctx, q, c.AccessKeyID, msgs)
	for i, r := range results {
		if errs[i] != nil {
			out.Failed = append(out.Failed, entryError(sentIDs[i], errs[i]))
			continue
		}
		out.Successful = append(out.Successful, sendBatchResultEntry{Id: sentIDs[i], sendMessageOutput: sendMessageOutput{
			MessageId: r.MessageID, MD5OfMessageBody: r.MD5OfBody, MD5OfMessageAttributes: r.MD5OfAttributes,
			MD5OfMessageSystemAttributes: r.MD5OfSystemAttributes, SequenceNumber: r.SequenceNumber}})
	}
	return out, nil
}

type receiveMessageInput struct {
	QueueUrl                    string
	AttributeNames              []string `query:"AttributeName,flat"`
	MessageSystemAttributeNames []string `query:"-"` // the query protocol sends them as AttributeName
	MessageAttributeNames       []string `query:"MessageAttributeName,flat"`
	MaxNumberOfMessages         *int
	VisibilityTimeout           *int
	WaitTimeSeconds             *int
	ReceiveRequestAttemptId     string
}

// apiMessage is a Message as ReceiveMessage returns it.
type apiMessage struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string           `json:",omitempty" query:"Attribute,flat,key=Name,value=Value"`
	MD5OfMessageAttributes string                      `json:",omitempty"`
	MessageAttributes      map[string]MessageAttribute `json:",omitempty" query:"MessageAttribute,flat,key=Name,value=Value"`
}

type receiveMessageOutput struct {
	Messages []apiMessage `json:",omitempty" query:"Message,flat"`
}

// systemAttributeNames are the system attributes a receive may ask for.
var systemAttributeNames = []string{"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
	"SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn"}

func (s *Service) receiveMessage(c *awsproto.Call, in *receiveMessageInput) (*receiveMessageOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	o := receiveOptions{max: 1, visibility: q.Visibility, wait: time.Duration(q.WaitTime) * time.Second}
	if n := in.MaxNumberOfMessages; n != nil {
		if *n < 1 || *n > maxReceiveMessage {
			return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", *n)
		}
		o.max = *n
	}
	if v := in.VisibilityTimeout; v != nil {
		if *v < 0 || *v > maxVisibility {
			return nil, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", *v)
		}
		o.visibility = *v
	}
	if w := in.WaitTimeSeconds; w != nil {
		if *w < 0 || *w > maxWait {
			return nil, errInvalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *w)
		}
		o.wait = time.Duration(*w) * time.Second
	}
	systemNames := append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...)
	for _, name := range systemNames {
		if name != "All" && !slices.Contains(systemAttributeNames, name) {
			return nil, errInvalidAttributeName("Unknown Attribute %s.", name)
		}
	}
	msgs, err := s.receive(ctx, q, o)
	if err != nil {
		return nil, err
	}
	out := &receiveMessageOutput{}
	for _, m := range msgs {
		am := apiMessage{MessageId: m.MessageID, ReceiptHandle: m.ReceiptHandle, MD5OfBody: m.MD5OfBody, Body: m.Body,
			Attributes: pickSystemAttributes(m.Attributes, systemNames), MessageAttributes: pickMessageAttributes(m.MessageAttributes, in.MessageAttributeNames)}
		am.MD5OfMessageAttributes = attributesMD5(am.MessageAttributes)
		out.Messages = append(out.Messages, am)
	}
	return out, nil
}

// pickSystemAttributes returns the system attributes names ask for.
func pickSystemAttributes(all map[string]string, names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	if slices.Contains(names, "All") {
		return all
	}
	out := map[string]string{}
	for _, name := range names {
		if v, ok := all[name]; ok {
			out[name] = v
		}
	}
	return out
}

// pickMessageAttributes returns the message attributes names ask for:
// All or .* for every one, prefix.* for those that start with prefix.
func pickMessageAttributes(all map[string]MessageAttribute, names []string) map[string]MessageAttribute {
	out := map[string]MessageAttribute{}
	for _, name := range names {
		if name == "All" || name == ".*" {
			return all
		}
		if prefix, ok := strings.CutSuffix(name, ".*"); ok {
			for k, v := range all {
				if strings.HasPrefix(k, prefix+".") || k == prefix {
					out[k] = v
				}
			}
		} else if v, ok := all[name]; ok {
			out[name] = v
		}
	}
	return out
}

type deleteMessageInput struct {
	QueueUrl      string
	ReceiptHandle string
}

func (s *Service) deleteMessageOp(c *awsproto.Call, in *deleteMessageInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return &awsproto.Empty{}, s.deleteMessage(ctx, q, in.ReceiptHandle)
}

type deleteBatchEntry struct {
	Id            string
	ReceiptHandle string
}

type deleteBatchInput struct {
	QueueUrl string
	Entries  []deleteBatchEntry `query:"DeleteMessageBatchRequestEntry,flat"`
}

// batchResultEntry is a successful entry of a batch that returns only ids.
type batchResultEntry struct {
	Id string
}

type deleteBatchOutput struct {
	Successful []batchResultEntry `query:"DeleteMessageBatchResultEntry,flat"`
	Failed     []batchError       `query:"BatchResultErrorEntry,flat"`
}

// eachEntry runs do for each of n batch entries at once, and returns the
// successful ids and the failures in the entries' order.
func eachEntry(ids []string, do func(i int) error) ([]batchResultEntry, []batchError) {
	errs := make([]error, len(ids))
	done := make(chan int)
	for i := range ids {
		go func() {
			errs[i] = do(i)
			done <- i
		}()
	}
	for range ids {
		<-done
	}
	ok, failed := []batchResultEntry{}, []batchError{}
	for i, id := range ids {
		if errs[i] != nil {
			failed = append(failed, entryError(id, errs[i]))
		} else {
			ok = append(ok, batchResultEntry{Id: id})
		}
	}
	return ok, failed
}

func (s *Service) deleteMessageBatch(c *awsproto.Call, in *deleteBatchInput) (*deleteBatchOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(ids); err != nil {
		return nil, err
	}
	ok, failed := eachEntry(ids, func(i int) error { return s.deleteMessage(ctx, q, in.Entries[i].ReceiptHandle) })
	return &deleteBatchOutput{Successful: ok, Failed: failed}, nil
}

type changeVisibilityInput struct {
	QueueUrl          string
	ReceiptHandle     string
	VisibilityTimeout *int
}

func (s *Service) changeMessageVisibility(c *awsproto.Call, in *changeVisibilityInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.VisibilityTimeout == nil {
		return nil, errMissingParameter("VisibilityTimeout")
	}
	return &awsproto.Empty{}, s.changeVisibility(ctx, q, in.ReceiptHandle, *in.VisibilityTimeout)
}

type changeVisibilityBatchEntry struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout *int
}

type changeVisibilityBatchInput struct {
	QueueUrl string
	Entries  []changeVisibilityBatchEntry `query:"ChangeMessageVisibilityBatchRequestEntry,flat"`
}

type changeVisibilityBatchOutput struct {
	Successful []batchResultEntry `query:"ChangeMessageVisibilityBatchResultEntry,flat"`
	Failed     []batchError       `query:"BatchResultErrorEntry,flat"`
}

func (s *Service) changeMessageVisibilityBatch(c *awsproto.Call, in *changeVisibilityBatchInput) (*changeVisibilityBatchOutput, error) {
	ctx := c.Context()
	q, err := s.queueByURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(ids); err != nil {
		return nil, err
	}
	ok, failed := eachEntry(ids, func(i int) error {
		e := in.Entries[i]
		if e.VisibilityTimeout == nil {
			return errMissingParameter("VisibilityTimeout")
		}
		return s.changeVisibility(ctx, q, e.ReceiptHandle, *e.VisibilityTimeout)
	})
	return &changeVisibilityBatchOutput{Successful: ok, Failed: failed}, nil
}
