package sqs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// queuesBucket holds every queue's record, by name; part of the on-disk
// format.
const queuesBucket = "lamina_sqs_queues"

// queueRecord is a queue as the store keeps it.
type queueRecord struct {
	Name string
	// ID names the queue's subjects in the message and state streams; a
	// queue made again after a delete gets a new one, so it never sees
	// the old queue's messages.
	ID   string
	FIFO bool
	// Created and Modified are unix seconds, as SQS shows them.
	Created, Modified int64
	// Attributes holds every settable attribute as set (defaults filled
	// in), in SQS's string form; the fields below are their parsed values.
	Attributes map[string]string
	Tags       map[string]string `json:",omitempty"`

	// Seconds, but MaxMessageSize (bytes).
	Delay, MaxMessageSize, Retention, WaitTime, Visibility int

	Redrive       *redrivePolicy `json:",omitempty"`
	ContentDedup  bool
	DedupPerGroup bool // DeduplicationScope messageGroup

	// PurgedThrough is the last message stream sequence a PurgeQueue
	// removed; LastPurge (unix ms) when, for PurgeQueueInProgress.
	PurgedThrough uint64 `json:",omitempty"`
	LastPurge     int64  `json:",omitempty"`
}

// redrivePolicy is a queue's RedrivePolicy: messages received more than
// MaxReceiveCount times move to the dead-letter queue.
type redrivePolicy struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	MaxReceiveCount     int    `json:"maxReceiveCount"`
}

// Names and limits of attributes, from SQS's documentation.
const (
	attrDelay            = "DelaySeconds"
	attrMaxMessageSize   = "MaximumMessageSize"
	attrRetention        = "MessageRetentionPeriod"
	attrWaitTime         = "ReceiveMessageWaitTimeSeconds"
	attrVisibility       = "VisibilityTimeout"
	attrRedrivePolicy    = "RedrivePolicy"
	attrRedriveAllow     = "RedriveAllowPolicy"
	attrPolicy           = "Policy"
	attrKmsKey           = "KmsMasterKeyId"
	attrKmsReuse         = "KmsDataKeyReusePeriodSeconds"
	attrSSE              = "SqsManagedSseEnabled"
	attrFifo             = "FifoQueue"
	attrContentDedup     = "ContentBasedDeduplication"
	attrDedupScope       = "DeduplicationScope"
	attrThroughputLimit  = "FifoThroughputLimit"
	attrArn              = "QueueArn"
	attrMessages         = "ApproximateNumberOfMessages"
	attrMessagesInFlight = "ApproximateNumberOfMessagesNotVisible"
	attrMessagesDelayed  = "ApproximateNumberOfMessagesDelayed"
	attrCreated          = "CreatedTimestamp"
	attrModified         = "LastModifiedTimestamp"

	maxVisibility  = 43200   // 12 hours
	maxDelay       = 900     // 15 minutes
	maxWait        = 20      // seconds of long polling
	maxMessageSize = 1 << 20 // 1 MiB, SQS's limit since 2025
	minMessageSize = 1024
	minRetention   = 60
	maxRetention   = 1209600 // 14 days
	maxReceives    = 1000    // RedrivePolicy maxReceiveCount
	maxQueueName   = 80
	maxTags        = 50
)

// Attributes a queue reports but no one sets.
var readOnlyAttributes = []string{attrArn, attrMessages, attrMessagesInFlight, attrMessagesDelayed, attrCreated, attrModified}

// fifoOnlyAttributes may only be given to FIFO queues.
var fifoOnlyAttributes = []string{attrContentDedup, attrDedupScope, attrThroughputLimit}

var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// validQueueName reports whether name is a queue name SQS allows.
func validQueueName(name string) bool {
	return queueNameRE.MatchString(strings.TrimSuffix(name, ".fifo")) && len(name) <= maxQueueName
}

// newQueueID returns a fresh ID for a queue's subjects.
func newQueueID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newQueue returns the record of a queue called name with its defaults, and
// attrs applied.
func (s *Service) newQueue(ctx context.Context, name string, attrs, tags map[string]string) (*queueRecord, error) {
	if !validQueueName(name) {
		return nil, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	fifo := strings.HasSuffix(name, ".fifo")
	switch attrs[attrFifo] {
	case "":
	case "true":
		if !fifo {
			return nil, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
	case "false":
		if fifo {
			return nil, errInvalidAttributeValue("Invalid value for the parameter FifoQueue. Reason: a queue whose name ends with .fifo is a FIFO queue.")
		}
	default:
		return nil, errInvalidAttributeValue("Invalid value for the parameter FifoQueue.")
	}
	if !fifo && strings.Contains(name, ".") {
		return nil, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if len(tags) > maxTags {
		return nil, errInvalidParameter("Too many tags: a queue has at most %d.", maxTags)
	}
	now := time.Now().Unix()
	q := &queueRecord{Name: name, ID: newQueueID(), FIFO: fifo, Created: now, Modified: now, Tags: tags,
		Attributes: map[string]string{
			attrDelay: "0", attrMaxMessageSize: strconv.Itoa(maxMessageSize), attrRetention: "345600",
			attrWaitTime: "0", attrVisibility: "30", attrSSE: "true",
		}}
	if fifo {
		q.Attributes[attrFifo] = "true"
		q.Attributes[attrContentDedup] = "false"
		q.Attributes[attrDedupScope] = "queue"
		q.Attributes[attrThroughputLimit] = "perQueue"
	}
	given := copyAttrs(attrs)
	delete(given, attrFifo)
	if err := s.applyAttributes(ctx, q, given); err != nil {
		return nil, err
	}
	return q, nil
}

// copyAttrs returns a copy of m that is never nil.
func copyAttrs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// applyAttributes checks attrs and sets them on q.
func (s *Service) applyAttributes(ctx context.Context, q *queueRecord, attrs map[string]string) error {
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		value := attrs[name]
		if slices.Contains(readOnlyAttributes, name) || name == attrFifo {
			return errInvalidAttributeName("Unknown Attribute %s.", name)
		}
		if slices.Contains(fifoOnlyAttributes, name) && !q.FIFO {
			return errInvalidAttributeName("Unknown Attribute %s.", name)
		}
		if err := s.checkAttribute(ctx, q, name, value); err != nil {
			return err
		}
		if name == attrRedrivePolicy && value != "" {
			// Stored as SQS shows it, whatever spelling was given.
			p, _ := parseRedrivePolicy(value)
			data, _ := json.Marshal(p)
			value = string(data)
		}
		if value == "" && (name == attrRedrivePolicy || name == attrRedriveAllow || name == attrPolicy || name == attrKmsKey) {
			delete(q.Attributes, name)
		} else {
			q.Attributes[name] = value
		}
	}
	q.Delay, _ = strconv.Atoi(q.Attributes[attrDelay])
	q.MaxMessageSize, _ = strconv.Atoi(q.Attributes[attrMaxMessageSize])
	q.Retention, _ = strconv.Atoi(q.Attributes[attrRetention])
	q.WaitTime, _ = strconv.Atoi(q.Attributes[attrWaitTime])
	q.Visibility, _ = strconv.Atoi(q.Attributes[attrVisibility])
	q.ContentDedup = q.Attributes[attrContentDedup] == "true"
	q.DedupPerGroup = q.Attributes[attrDedupScope] == "messageGroup"
	q.Redrive = nil
	if p := q.Attributes[attrRedrivePolicy]; p != "" {
		q.Redrive, _ = parseRedrivePolicy(p)
	}
	return nil
}

// checkAttribute checks one attribute's value.
func (s *Service) checkAttribute(ctx context.Context, q *queueRecord, name, value string) error {
	invalid := func(reason string) error {
		return errInvalidAttributeValue("Invalid value for the parameter %s. Reason: %s", name, reason)
	}
	intIn := func(lo, hi int) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return invalid(fmt.Sprintf("Must be an integer from %d to %d.", lo, hi))
		}
		return nil
	}
	boolean := func() error {
		if value != "true" && value != "false" {
			return invalid("Must be true or false.")
		}
		return nil
	}
	switch name {
	case attrDelay:
		return intIn(0, maxDelay)
	case attrMaxMessageSize:
		return intIn(minMessageSize, maxMessageSize)
	case attrRetention:
		return intIn(minRetention, maxRetention)
	case attrWaitTime:
		return intIn(0, maxWait)
	case attrVisibility:
		return intIn(0, maxVisibility)
	case attrKmsReuse:
		return intIn(60, 86400)
	case attrSSE, attrContentDedup:
		return boolean()
	case attrDedupScope:
		if value != "queue" && value != "messageGroup" {
			return invalid("Must be queue or messageGroup.")
		}
	case attrThroughputLimit:
		if value != "perQueue" && value != "perMessageGroupId" {
			return invalid("Must be perQueue or perMessageGroupId.")
		}
	case attrKmsKey:
	case attrPolicy, attrRedriveAllow:
		if value != "" && !json.Valid([]byte(value)) {
			return invalid("Must be a JSON document.")
		}
	case attrRedrivePolicy:
		if value == "" {
			return nil
		}
		p, err := parseRedrivePolicy(value)
		if err != nil {
			return invalid(err.Error())
		}
		name, ok := s.nameFromARN(p.DeadLetterTargetArn)
		if !ok {
			return invalid("Dead-letter target must be an ARN of a queue of this account and region.")
		}
		dlq, err := s.queues.Get(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("Dead letter target does not exist.")
		}
		if err != nil {
			return err
		}
		if dlq.FIFO != q.FIFO {
			return invalid("Dead-letter queue must be same type of queue as the source.")
		}
		if dlq.Name == q.Name {
			return invalid("A queue cannot be its own dead-letter queue.")
		}
		if !redriveAllowed(dlq, s.queueARN(q.Name)) {
			return invalid("The dead-letter queue's RedriveAllowPolicy does not allow this queue as a source.")
		}
	default:
		return errInvalidAttributeName("Unknown Attribute %s.", name)
	}
	return nil
}

// parseRedrivePolicy reads a RedrivePolicy; maxReceiveCount may be a
// number or a string of one, as clients send both.
func parseRedrivePolicy(value string) (*redrivePolicy, error) {
	var raw struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(value), &raw); err != nil {
		return nil, errors.New("Must be a JSON object with deadLetterTargetArn and maxReceiveCount.")
	}
	count, err := strconv.Atoi(strings.Trim(string(raw.MaxReceiveCount), `"`))
	if err != nil || count < 1 || count > maxReceives {
		return nil, fmt.Errorf("maxReceiveCount must be an integer from 1 to %d.", maxReceives)
	}
	if raw.DeadLetterTargetArn == "" {
		return nil, errors.New("deadLetterTargetArn must be given.")
	}
	return &redrivePolicy{DeadLetterTargetArn: raw.DeadLetterTargetArn, MaxReceiveCount: count}, nil
}

// redriveAllowed reports whether dlq's RedriveAllowPolicy lets source send
// it its dead letters.
func redriveAllowed(dlq *queueRecord, source string) bool {
	policy := dlq.Attributes[attrRedriveAllow]
	if policy == "" {
		return true
	}
	var p struct {
		RedrivePermission string   `json:"redrivePermission"`
		SourceQueueArns   []string `json:"sourceQueueArns"`
	}
	if json.Unmarshal([]byte(policy), &p) != nil {
		return true
	}
	switch p.RedrivePermission {
	case "denyAll":
		return false
	case "byQueue":
		return slices.Contains(p.SourceQueueArns, source)
	}
	return true
}

// queueARN is the ARN of the queue called name.
func (s *Service) queueARN(name string) string {
	return "arn:aws:sqs:" + s.cfg.Region + ":" + s.cfg.AccountID + ":" + name
}

// nameFromARN returns the name of the queue an ARN of this account and
// region names.
func (s *Service) nameFromARN(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, "arn:aws:sqs:"+s.cfg.Region+":"+s.cfg.AccountID+":")
	return name, ok && validQueueName(name)
}

// queueURL is the URL of the queue called name, on host (the host the
// client called, so that clients that send requests to the queue's URL
// reach this endpoint).
func (s *Service) queueURL(host, name string) string {
	return "http://" + host + "/" + s.cfg.AccountID + "/" + name
}

// nameFromURL returns the name of the queue a queue URL names: its path is
// /<account>/<name>, on any host.
func (s *Service) nameFromURL(queueURL string) (string, bool) {
	u, err := url.Parse(queueURL)
	if err != nil {
		return "", false
	}
	account, name, ok := strings.Cut(strings.Trim(u.Path, "/"), "/")
	return name, ok && account == s.cfg.AccountID && validQueueName(name)
}

// queueByURL returns the record of the queue a QueueUrl names.
func (s *Service) queueByURL(ctx context.Context, queueURL string) (*queueRecord, error) {
	if queueURL == "" {
		return nil, errMissingParameter("QueueUrl")
	}
	name, ok := s.nameFromURL(queueURL)
	if !ok {
		return nil, ErrQueueDoesNotExist()
	}
	return s.queueByName(ctx, name)
}

// queueByName returns the record of the queue called name.
func (s *Service) queueByName(ctx context.Context, name string) (*queueRecord, error) {
	q, err := s.queues.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrQueueDoesNotExist()
	}
	return q, err
}

// sameAttributes returns the first attribute in attrs whose value differs
// from q's, or "".
func sameAttributes(q *queueRecord, attrs map[string]string) string {
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if q.Attributes[name] != attrs[name] {
			return name
		}
	}
	return ""
}
