package sns

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// messageAttributeValue is a message attribute as Publish takes it.
type messageAttributeValue struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

type publishInput struct {
	TopicArn               string
	TargetArn              string
	PhoneNumber            string
	Message                string
	Subject                string
	MessageStructure       string
	MessageDeduplicationId string
	MessageGroupId         string
	MessageAttributes      map[string]messageAttributeValue `query:"MessageAttributes,key=Name,value=Value"`
}

type publishOutput struct {
	MessageId string
}

// message is one message being published.
type message struct {
	id, topicARN, subject, body string
	// structure is the per-protocol messages of MessageStructure json.
	structure  map[string]string
	attributes map[string]messageAttributeValue
	timestamp  time.Time
	// trace is the publisher's trace header (X-Amzn-Trace-Id), whose
	// lineage counts the rounds of a recursive loop (see
	// targets.Message.Trace).
	trace string
}

// traceHeader carries the publisher's trace context, with the lineage of a
// function that publishes (its SDK sends _X_AMZN_TRACE_ID there).
const traceHeader = "X-Amzn-Trace-Id"

func (s *Service) publish(c *awsproto.Call, in *publishInput) (*publishOutput, error) {
	arn := in.TopicArn
	switch {
	case in.PhoneNumber != "":
		return nil, errInvalidParameter("PhoneNumber Reason: Lamina does not send SMS messages")
	case arn == "" && in.TargetArn != "":
		arn = in.TargetArn // a topic's ARN is a target too; endpoints are not
	}
	t, err := s.topic(c.Context(), arn)
	if err != nil {
		return nil, err
	}
	m, err := s.newMessage(arn, in.Message, in.Subject, in.MessageStructure, in.MessageAttributes)
	if err != nil {
		return nil, err
	}
	m.trace = c.Request.Header.Get(traceHeader)
	if err := s.fanOut(c.Context(), t, m); err != nil {
		return nil, err
	}
	return &publishOutput{MessageId: m.id}, nil
}

type publishBatchEntry struct {
	Id                     string
	Message                string
	Subject                string
	MessageStructure       string
	MessageDeduplicationId string
	MessageGroupId         string
	MessageAttributes      map[string]messageAttributeValue `query:"MessageAttributes,key=Name,value=Value"`
}

type publishBatchInput struct {
	TopicArn                   string
	PublishBatchRequestEntries []publishBatchEntry
}

type batchResultEntry struct {
	Id, MessageId string
}

type batchErrorEntry struct {
	Id, Code, Message string
	SenderFault       bool
}

type publishBatchOutput struct {
	Successful []batchResultEntry `query:",empty"`
	Failed     []batchErrorEntry  `query:",empty"`
}

var batchIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func (s *Service) publishBatch(c *awsproto.Call, in *publishBatchInput) (*publishBatchOutput, error) {
	ctx := c.Context()
	t, err := s.topic(ctx, in.TopicArn)
	if err != nil {
		return nil, err
	}
	entries := in.PublishBatchRequestEntries
	switch {
	case len(entries) == 0:
		return nil, errBatch("EmptyBatchRequest", "The batch request doesn't contain any entries.")
	case len(entries) > maxBatchEntries:
		return nil, errBatch("TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.")
	}
	seen := map[string]bool{}
	total := 0
	for _, e := range entries {
		if !batchIDRE.MatchString(e.Id) {
			return nil, errBatch("InvalidBatchEntryId", "The Id of a batch entry in a batch request doesn't abide by the specification.")
		}
		if seen[e.Id] {
			return nil, errBatch("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
		}
		seen[e.Id] = true
		total += messageSize(e.Message, e.MessageAttributes)
	}
	if total > maxMessageSize {
		return nil, errBatch("BatchRequestTooLong", "The length of all the messages put together is more than the limit.")
	}
	out := &publishBatchOutput{Successful: []batchResultEntry{}, Failed: []batchErrorEntry{}}
	for _, e := range entries {
		m, err := s.newMessage(in.TopicArn, e.Message, e.Subject, e.MessageStructure, e.MessageAttributes)
		if m != nil {
			m.trace = c.Request.Header.Get(traceHeader)
		}
		if err == nil {
			err = s.fanOut(ctx, t, m)
		}
		var ae *awsproto.Error
		switch {
		case err == nil:
			out.Successful = append(out.Successful, batchResultEntry{Id: e.Id, MessageId: m.id})
		case errors.As(err, &ae) && ae.Status < 500:
			out.Failed = append(out.Failed, batchErrorEntry{Id: e.Id, Code: ae.Code, Message: ae.Message, SenderFault: true})
		case len(out.Successful) == 0:
			return nil, err // nothing was published: the whole request failed
		default:
			s.log.Warn("a batch entry could not be published", "topic", t.Name, "err", err)
			out.Failed = append(out.Failed, batchErrorEntry{Id: e.Id, Code: "InternalError", Message: "The entry could not be published; try again."})
		}
	}
	return out, nil
}

// PublishTo publishes a message to the topic arn names, as Publish does:
// the topic as targets.Topics, for destinations and rule targets.
func (s *Service) PublishTo(ctx context.Context, arn string, tm *targets.Message) error {
	t, err := s.topic(ctx, arn)
	if err != nil {
		return err
	}
	attrs := make(map[string]messageAttributeValue, len(tm.Attributes))
	for name, a := range tm.Attributes {
		attrs[name] = messageAttributeValue{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
	}
	m, err := s.newMessage(arn, string(tm.Payload), tm.Subject, "", attrs)
	if err != nil {
		return err
	}
	m.trace = tm.Trace
	return s.fanOut(ctx, t, m)
}

// topic returns the topic a topic ARN names, or NotFound.
func (s *Service) topic(ctx context.Context, arn string) (*topicRecord, error) {
	name, err := s.topicName(arn)
	if err != nil {
		return nil, err
	}
	t, err := s.topics.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTopicNotFound()
	}
	return t, err
}

var attributeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// messageSize is a message's size as SNS counts it: its body, and its
// attributes' names, types and values.
func messageSize(body string, attrs map[string]messageAttributeValue) int {
	n := len(body)
	for name, a := range attrs {
		n += len(name) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

// newMessage validates a message to publish.
func (s *Service) newMessage(topicARN, body, subject, structure string, attrs map[string]messageAttributeValue) (*message, error) {
	if body == "" {
		return nil, errInvalidParameter("Empty message")
	}
	if messageSize(body, attrs) > maxMessageSize {
		return nil, errInvalidParameter("Message too long")
	}
	if len(subject) > 100 || strings.ContainsAny(subject, "\r\n") {
		return nil, errInvalidParameter("Subject")
	}
	for name, a := range attrs {
		if err := checkAttribute(name, a); err != nil {
			return nil, err
		}
	}
	m := &message{id: uuid.NewString(), topicARN: topicARN, subject: subject, body: body, attributes: attrs, timestamp: time.Now().UTC()}
	switch structure {
	case "":
	case "json":
		var parts map[string]any
		if err := json.Unmarshal([]byte(body), &parts); err != nil {
			return nil, errInvalidParameter("Message Structure - JSON message body failed to parse")
		}
		if _, ok := parts["default"].(string); !ok {
			return nil, errInvalidParameter("Message Structure - No default entry in JSON message body")
		}
		m.structure = map[string]string{}
		for k, v := range parts {
			if s, ok := v.(string); ok {
				m.structure[k] = s
			}
		}
		m.body = m.structure["default"]
	default:
		return nil, errInvalidParameter("MessageStructure Reason: only json is a valid MessageStructure")
	}
	return m, nil
}

// checkAttribute checks a message attribute as SNS does.
func checkAttribute(name string, a messageAttributeValue) error {
	lower := strings.ToLower(name)
	if len(name) > maxAttributeName || !attributeNameRE.MatchString(name) || strings.HasPrefix(lower, "aws.") ||
		strings.HasPrefix(lower, "amazon.") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return awsproto.Errorf(400, "ParameterValueInvalid", "The message attribute name '%s' is invalid.", name)
	}
	base, _, _ := strings.Cut(a.DataType, ".")
	switch {
	case base != "String" && base != "Number" && base != "Binary":
		return awsproto.Errorf(400, "ParameterValueInvalid", "The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
	case base == "Binary" && len(a.BinaryValue) == 0, base != "Binary" && a.StringValue == "":
		return awsproto.Errorf(400, "ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
	case base == "Number":
		if _, err := strconv.ParseFloat(a.StringValue, 64); err != nil {
			return awsproto.Errorf(400, "ParameterValueInvalid", "Could not cast message attribute '%s' value to number.", name)
		}
	case a.DataType == "String.Array":
		var list []any
		if json.Unmarshal([]byte(a.StringValue), &list) != nil {
			return awsproto.Errorf(400, "ParameterValueInvalid", "The message attribute '%s' with type 'String.Array' has an invalid value: it must be a JSON array.", name)
		}
	}
	return nil
}

// fanOut delivers a message to each subscription of t whose filter policy
// it matches, and returns once every delivery is stored. A delivery that
// its endpoint refuses (a function whose policy does not allow SNS, a queue
// that does not exist) is logged and dropped, as SNS does; a failure of
// Lamina's is returned, for the client to publish again.
func (s *Service) fanOut(ctx context.Context, t *topicRecord, m *message) error {
	subs := s.subscriptions.List(t.Name+"/", func(sub *subscriptionRecord) bool { return sub.TopicID == t.ID })
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, sub := range subs {
		f, err := compileFilter(sub.Attributes)
		if err != nil {
			s.log.Warn("subscription's filter policy no longer compiles; message not delivered", "subscription", sub.ID, "err", err)
			continue
		}
		if f != nil && !f.match(m) {
			continue
		}
		if sub.Attributes["RawMessageDelivery"] == "true" && m.structure == nil && len(m.attributes) > maxRawAttributes {
			s.log.Warn("delivery failed: a raw delivery to a queue carries at most 10 message attributes", "topic", t.Name,
				"subscription", s.subscriptionARN(sub), "message_id", m.id)
			continue
		}
		if err := s.deliveries.Acquire(ctx, 1); err != nil {
			wg.Wait()
			return errThrottled()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.deliveries.Release(1)
			arn := s.subscriptionARN(sub)
			err := s.cfg.Targets.Deliver(ctx, sub.Endpoint, s.delivery(sub, arn, m))
			var ae *awsproto.Error
			switch {
			case err == nil:
			case errors.Is(err, targets.ErrNotPermitted), errors.As(err, &ae) && ae.Status < 500:
				s.log.Warn("delivery failed", "topic", t.Name, "subscription", arn, "endpoint", sub.Endpoint, "message_id", m.id, "err", err)
			default:
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// delivery is what a subscription receives of a message.
func (s *Service) delivery(sub *subscriptionRecord, subARN string, m *message) *targets.Message {
	body := m.body
	if p, ok := m.structure[sub.Protocol]; ok {
		body = p
	}
	attrs := m.attributes
	if m.structure != nil {
		attrs = nil // a message of MessageStructure json carries no attributes
	}
	n := notification{Type: "Notification", MessageId: m.id, TopicArn: m.topicARN, Message: body,
		Timestamp: m.timestamp.Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "1",
		Signature:      base64.StdEncoding.EncodeToString(s.sign(canonical(m, body))),
		SigningCertUrl: s.cfg.Endpoint + "/SimpleNotificationService-lamina.pem",
		UnsubscribeUrl: s.cfg.Endpoint + "/?Action=Unsubscribe&SubscriptionArn=" + url.QueryEscape(subARN),
	}
	if m.subject != "" {
		n.Subject = &m.subject
	}
	if len(attrs) > 0 {
		n.MessageAttributes = make(map[string]notificationAttribute, len(attrs))
		for name, a := range attrs {
			n.MessageAttributes[name] = envelopeAttribute(a)
		}
	}
	if sub.Protocol == "lambda" {
		payload := marshal(lambdaEvent{Records: []lambdaRecord{{EventVersion: "1.0", EventSource: "aws:sns",
			EventSubscriptionArn: subARN, Sns: n}}})
		return &targets.Message{
			ID:      uuid.NewSHA1(uuid.NameSpaceURL, []byte("lamina:sns/"+m.id+"/"+sub.ID)).String(),
			Payload: payload, Principal: policy.PrincipalSNS, SourceArn: m.topicARN, Trace: m.trace,
		}
	}
	if sub.Attributes["RawMessageDelivery"] == "true" {
		tm := &targets.Message{ID: m.id, Payload: []byte(body)}
		if len(attrs) > 0 {
			tm.Attributes = make(map[string]targets.Attribute, len(attrs))
			for name, a := range attrs {
				tm.Attributes[name] = targets.Attribute{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
			}
		}
		return tm
	}
	return &targets.Message{ID: m.id, Payload: marshal(queueEnvelope(n))}
}

// marshal encodes a notification as SNS does: without escaping <, > and &.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // plain values always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// canonical is the string a notification's Signature signs (SNS's
// SignatureVersion 1 string).
func canonical(m *message, body string) string {
	var b strings.Builder
	b.WriteString("Message\n" + body + "\nMessageId\n" + m.id + "\n")
	if m.subject != "" {
		b.WriteString("Subject\n" + m.subject + "\n")
	}
	b.WriteString("Timestamp\n" + m.timestamp.Format("2006-01-02T15:04:05.000Z") + "\nTopicArn\n" + m.topicARN + "\nType\nNotification\n")
	return b.String()
}

// envelopeAttribute is an attribute as notifications show it: Binary values
// in base64, every other (Number and String.Array too) as a String.
func envelopeAttribute(a messageAttributeValue) notificationAttribute {
	if strings.HasPrefix(a.DataType, "Binary") {
		return notificationAttribute{Type: "Binary", Value: base64.StdEncoding.EncodeToString(a.BinaryValue)}
	}
	return notificationAttribute{Type: "String", Value: a.StringValue}
}

// notification is the Sns member of a function's SNS event.
type notification struct {
	Type              string
	MessageId         string
	TopicArn          string
	Subject           *string
	Message           string
	Timestamp         string
	SignatureVersion  string
	Signature         string
	SigningCertUrl    string
	UnsubscribeUrl    string
	MessageAttributes map[string]notificationAttribute `json:",omitempty"`
}

type notificationAttribute struct {
	Type, Value string
}

type lambdaRecord struct {
	EventVersion         string
	EventSubscriptionArn string
	EventSource          string
	Sns                  notification
}

type lambdaEvent struct {
	Records []lambdaRecord
}

// queueMessage is the JSON envelope a queue receives (without
// RawMessageDelivery); its URL members are spelt …URL.
type queueMessage struct {
	Type              string
	MessageId         string
	TopicArn          string
	Subject           string `json:",omitempty"`
	Message           string
	Timestamp         string
	SignatureVersion  string
	Signature         string
	SigningCertURL    string
	UnsubscribeURL    string
	MessageAttributes map[string]notificationAttribute `json:",omitempty"`
}

func queueEnvelope(n notification) queueMessage {
	q := queueMessage{Type: n.Type, MessageId: n.MessageId, TopicArn: n.TopicArn, Message: n.Message, Timestamp: n.Timestamp,
		SignatureVersion: n.SignatureVersion, Signature: n.Signature, SigningCertURL: n.SigningCertUrl, UnsubscribeURL: n.UnsubscribeUrl,
		MessageAttributes: n.MessageAttributes}
	if n.Subject != nil {
		q.Subject = *n.Subject
	}
	return q
}
