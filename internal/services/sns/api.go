package sns

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// The SNS API's topic, subscription and tag operations: their shapes, as
// SNS's query protocol names their members, and their handlers.

// pageSize is how many topics or subscriptions a List operation returns at
// once, as SNS does.
const pageSize = 100

// apiService is the SNS API on its query protocol.
func (s *Service) apiService() *awsproto.Service {
	api := &awsproto.Service{SigningName: "sns", QueryVersion: "2010-03-31", XMLNamespace: "http://sns.amazonaws.com/doc/2010-03-31/"}
	api.Handle(
		awsproto.Op("CreateTopic", s.createTopic),
		awsproto.Op("DeleteTopic", s.deleteTopic),
		awsproto.Op("ListTopics", s.listTopics),
		awsproto.Op("GetTopicAttributes", s.getTopicAttributes),
		awsproto.Op("SetTopicAttributes", s.setTopicAttributes),
		awsproto.Op("Subscribe", s.subscribe),
		awsproto.Op("Unsubscribe", s.unsubscribe),
		awsproto.Op("ListSubscriptions", s.listSubscriptions),
		awsproto.Op("ListSubscriptionsByTopic", s.listSubscriptionsByTopic),
		awsproto.Op("GetSubscriptionAttributes", s.getSubscriptionAttributes),
		awsproto.Op("SetSubscriptionAttributes", s.setSubscriptionAttributes),
		awsproto.Op("Publish", s.publish).Bodies(maxPublishBody, publishBodyCopies),
		awsproto.Op("PublishBatch", s.publishBatch).Bodies(maxPublishBody, publishBodyCopies),
		awsproto.Op("TagResource", s.tagResource),
		awsproto.Op("UntagResource", s.untagResource),
		awsproto.Op("ListTagsForResource", s.listTagsForResource),
	)
	return api
}

// Body limits of Publish and PublishBatch: a message of maxMessageSize,
// percent-encoded (three times its size at worst), with its attributes.
const (
	maxPublishBody    = 4 * maxMessageSize
	publishBodyCopies = 3
)

var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// tag is one of a resource's tags.
type tag struct {
	Key, Value string
}

type topicARNInput struct {
	TopicArn string
}

type topicARNOutput struct {
	TopicArn string
}

type createTopicInput struct {
	Name       string
	Attributes map[string]string
	Tags       []tag
}

// Topic attributes that may be set; the others are read-only.
var settableTopicAttributes = map[string]bool{
	"DisplayName": true, "Policy": true, "DeliveryPolicy": true, "KmsMasterKeyId": true, "TracingConfig": true,
	"SignatureVersion": true, "DataProtectionPolicy": true, "ArchivePolicy": true,
}

func (s *Service) createTopic(c *awsproto.Call, in *createTopicInput) (*topicARNOutput, error) {
	ctx := c.Context()
	if in.Name == "" {
		return nil, errMissing("Name")
	}
	fifo := strings.HasSuffix(in.Name, ".fifo") || in.Attributes["FifoTopic"] == "true"
	if fifo {
		return nil, errInvalidParameter("FifoTopic Reason: Lamina does not support FIFO topics; create a standard topic (a name without .fifo).")
	}
	if !topicNameRE.MatchString(in.Name) {
		return nil, errInvalidParameter("Topic Name")
	}
	attrs := map[string]string{}
	for name, value := range in.Attributes {
		switch {
		case name == "FifoTopic" && value == "false":
		case !settableTopicAttributes[name]:
			return nil, errInvalidParameter("Attributes Reason: Unknown attribute %s", name)
		default:
			attrs[name] = value
		}
	}
	tags, err := tagMap(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	out := &topicARNOutput{TopicArn: s.topicARN(in.Name)}
	rec := &topicRecord{Name: in.Name, ID: uuid.NewString(), Attributes: attrs, Tags: tags, Created: time.Now().UnixMilli()}
	for attempt := 0; ; attempt++ {
		old, err := s.topics.Get(ctx, in.Name)
		if err == nil {
			// Creating a topic that exists with the same attributes returns
			// it.
			for name, value := range attrs {
				if old.Attributes[name] != value {
					return nil, errInvalidParameter("Attributes Reason: Topic already exists with different attributes")
				}
			}
			return out, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if len(s.topics.Keys("")) >= s.cfg.Limits.MaxTopics {
			return nil, errLimit("TopicLimitExceeded", "Topic limit exceeded: the account holds its maximum of %d topics.", s.cfg.Limits.MaxTopics)
		}
		err = s.topics.Create(ctx, in.Name, rec)
		if err == nil {
			s.log.Info("topic created", "topic", in.Name)
			return out, nil
		}
		if !errors.Is(err, store.ErrExists) || attempt > 0 {
			return nil, err
		}
	}
}

// topicName returns the name of the topic a topic ARN of this deployment
// names, or NotFound.
func (s *Service) topicName(arn string) (string, error) {
	if arn == "" {
		return "", errMissing("TopicArn")
	}
	name, ok := strings.CutPrefix(arn, s.topicARN(""))
	if !ok || !topicNameRE.MatchString(name) {
		if !strings.HasPrefix(arn, "arn:") {
			return "", errInvalidParameter("TopicArn")
		}
		return "", errTopicNotFound()
	}
	return name, nil
}

func (s *Service) deleteTopic(c *awsproto.Call, in *topicARNInput) (*awsproto.Empty, error) {
	ctx := c.Context()
	name, err := s.topicName(in.TopicArn)
	var e *awsproto.Error
	if errors.As(err, &e) && e.Code == "NotFound" {
		return &awsproto.Empty{}, nil // deleting a missing topic succeeds, as on SNS
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.topics.Remove(ctx, name, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// Its subscriptions go with it.
	for _, key := range s.subscriptions.Keys(name + "/") {
		if _, err := s.subscriptions.Remove(ctx, key, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	s.log.Info("topic deleted", "topic", name)
	return &awsproto.Empty{}, nil
}

type listInput struct {
	NextToken string
}

type listTopicsOutput struct {
	Topics    []topicARNOutput `query:",empty"`
	NextToken string           `json:",omitempty"`
}

func (s *Service) listTopics(c *awsproto.Call, in *listInput) (*listTopicsOutput, error) {
	out := &listTopicsOutput{Topics: []topicARNOutput{}}
	for _, name := range s.topics.Keys("") {
		if in.NextToken != "" && name <= in.NextToken {
			continue
		}
		if len(out.Topics) == pageSize {
			out.NextToken = out.Topics[pageSize-1].TopicArn[len(s.topicARN("")):]
			break
		}
		out.Topics = append(out.Topics, topicARNOutput{TopicArn: s.topicARN(name)})
	}
	return out, nil
}

type attributesOutput struct {
	Attributes map[string]string
}

func (s *Service) getTopicAttributes(c *awsproto.Call, in *topicARNInput) (*attributesOutput, error) {
	t, err := s.topic(c.Context(), in.TopicArn)
	if err != nil {
		return nil, err
	}
	arn := s.topicARN(t.Name)
	confirmed := len(s.subscriptions.Keys(t.Name + "/"))
	attrs := map[string]string{
		"TopicArn":                arn,
		"Owner":                   s.cfg.AccountID,
		"Policy":                  defaultTopicPolicy(arn, s.cfg.AccountID),
		"DisplayName":             "",
		"SubscriptionsConfirmed":  strconv.Itoa(confirmed),
		"SubscriptionsPending":    "0",
		"SubscriptionsDeleted":    "0",
		"EffectiveDeliveryPolicy": `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`,
	}
	maps.Copy(attrs, t.Attributes)
	if attrs["DisplayName"] == "" {
		delete(attrs, "DisplayName") // an empty value has no query element
	}
	return &attributesOutput{Attributes: attrs}, nil
}

// defaultTopicPolicy is the access policy SNS gives a new topic.
func defaultTopicPolicy(arn, account string) string {
	policy := map[string]any{
		"Version": "2008-10-17",
		"Id":      "__default_policy_ID",
		"Statement": []any{map[string]any{
			"Sid":       "__default_statement_ID",
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": "*"},
			"Action": []string{"SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
				"SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"},
			"Resource":  arn,
			"Condition": map[string]any{"StringEquals": map[string]any{"AWS:SourceOwner": account}},
		}},
	}
	data, _ := json.Marshal(policy) // plain values always encode
	return string(data)
}

type setAttributeInput struct {
	TopicArn        string
	SubscriptionArn string
	AttributeName   string
	AttributeValue  string
}

func (s *Service) setTopicAttributes(c *awsproto.Call, in *setAttributeInput) (*awsproto.Empty, error) {
	t, err := s.topic(c.Context(), in.TopicArn)
	if err != nil {
		return nil, err
	}
	if !settableTopicAttributes[in.AttributeName] {
		return nil, errInvalidParameter("AttributeName")
	}
	_, err = s.topics.Update(c.Context(), t.Name, func(r *topicRecord) error {
		if r.ID != t.ID {
			return errTopicNotFound()
		}
		r.Attributes = maps.Clone(r.Attributes)
		if r.Attributes == nil {
			r.Attributes = map[string]string{}
		}
		r.Attributes[in.AttributeName] = in.AttributeValue
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTopicNotFound()
	}
	return &awsproto.Empty{}, err
}

type subscribeInput struct {
	TopicArn              string
	Protocol              string
	Endpoint              string
	Attributes            map[string]string
	ReturnSubscriptionArn bool
}

type subscriptionARNOutput struct {
	SubscriptionArn string
}

// Subscription attributes that may be set; the others are read-only.
var settableSubscriptionAttributes = map[string]bool{
	"FilterPolicy": true, "FilterPolicyScope": true, "RawMessageDelivery": true, "RedrivePolicy": true,
	"DeliveryPolicy": true, "SubscriptionRoleArn": true, "ReplayPolicy": true,
}

func (s *Service) subscribe(c *awsproto.Call, in *subscribeInput) (*subscriptionARNOutput, error) {
	ctx := c.Context()
	t, err := s.topic(c.Context(), in.TopicArn)
	if err != nil {
		return nil, err
	}
	var want targets.Kind
	switch in.Protocol {
	case "lambda":
		want = targets.Function
	case "sqs":
		want = targets.Queue
	case "":
		return nil, errMissing("Protocol")
	default:
		return nil, errInvalidParameter("Protocol Reason: Lamina delivers to the lambda and sqs protocols only, not %s", in.Protocol)
	}
	if kind, err := targets.Parse(s.cfg.Region, s.cfg.AccountID, in.Endpoint); err != nil || kind != want {
		return nil, errInvalidParameter("Endpoint Reason: %s is not the ARN of a %s of this deployment", in.Endpoint, want)
	}
	attrs := map[string]string{}
	for name, value := range in.Attributes {
		if err := checkSubscriptionAttribute(in.Protocol, name, value); err != nil {
			return nil, err
		}
		attrs[name] = value
	}
	if err := checkFilter(attrs); err != nil {
		return nil, err
	}
	// Subscribing the same endpoint again returns its subscription.
	for _, old := range s.subscriptions.List(t.Name+"/", nil) {
		if old.TopicID == t.ID && old.Protocol == in.Protocol && old.Endpoint == in.Endpoint {
			if !maps.Equal(old.Attributes, attrs) && len(attrs) > 0 {
				return nil, errInvalidParameter("Attributes Reason: Subscription already exists with different attributes")
			}
			return &subscriptionARNOutput{SubscriptionArn: s.subscriptionARN(old)}, nil
		}
	}
	if len(s.subscriptions.Keys(t.Name+"/")) >= s.cfg.Limits.MaxSubscriptionsPerTopic {
		return nil, errLimit("SubscriptionLimitExceeded", "Subscription limit exceeded: the topic holds its maximum of %d subscriptions.",
			s.cfg.Limits.MaxSubscriptionsPerTopic)
	}
	sub := &subscriptionRecord{ID: uuid.NewString(), Topic: t.Name, TopicID: t.ID, Protocol: in.Protocol, Endpoint: in.Endpoint,
		Attributes: attrs, Created: time.Now().UnixMilli()}
	if err := s.subscriptions.Create(ctx, t.Name+"/"+sub.ID, sub); err != nil {
		return nil, err
	}
	s.log.Info("subscription created", "topic", t.Name, "protocol", in.Protocol, "endpoint", in.Endpoint)
	// Subscriptions of this account's functions and queues are confirmed
	// at once.
	return &subscriptionARNOutput{SubscriptionArn: s.subscriptionARN(sub)}, nil
}

// checkSubscriptionAttribute checks a subscription attribute's name and
// value.
func checkSubscriptionAttribute(protocol, name, value string) error {
	switch {
	case !settableSubscriptionAttributes[name]:
		return errInvalidParameter("Attributes Reason: Unknown attribute %s", name)
	case name == "FilterPolicyScope" && value != "MessageAttributes" && value != "MessageBody":
		return errInvalidParameter("Attributes Reason: FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", value)
	case name == "RawMessageDelivery" && value != "true" && value != "false":
		return errInvalidParameter("Attributes Reason: RawMessageDelivery: Invalid value [%s]. Must be true or false.", value)
	case name == "RawMessageDelivery" && value == "true" && protocol != "sqs":
		return errInvalidParameter("Attributes Reason: Delivery protocol [%s] does not support raw message delivery.", protocol)
	}
	return nil
}

// subscriptionKey returns the key of the subscription an ARN names, or
// NotFound.
func (s *Service) subscriptionKey(arn string) (string, error) {
	if arn == "" {
		return "", errMissing("SubscriptionArn")
	}
	rest, ok := strings.CutPrefix(arn, s.topicARN(""))
	topic, id, found := strings.Cut(rest, ":")
	if !ok || !found || !topicNameRE.MatchString(topic) || uuid.Validate(id) != nil {
		if !strings.HasPrefix(arn, "arn:") {
			return "", errInvalidParameter("SubscriptionArn")
		}
		return "", errSubscriptionNotFound()
	}
	return topic + "/" + id, nil
}

type subscriptionARNInput struct {
	SubscriptionArn string
}

func (s *Service) unsubscribe(c *awsproto.Call, in *subscriptionARNInput) (*awsproto.Empty, error) {
	key, err := s.subscriptionKey(in.SubscriptionArn)
	if err != nil {
		return nil, err
	}
	if _, err := s.subscriptions.Remove(c.Context(), key, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return &awsproto.Empty{}, nil
}

// subscriptionOutput is an entry of ListSubscriptions.
type subscriptionOutput struct {
	SubscriptionArn, Owner, Protocol, Endpoint, TopicArn string
}

type listSubscriptionsOutput struct {
	Subscriptions []subscriptionOutput `query:",empty"`
	NextToken     string               `json:",omitempty"`
}

// listSubscriptionsFrom lists the subscriptions whose keys start with
// prefix, a page after next.
func (s *Service) listSubscriptionsFrom(prefix, next string) *listSubscriptionsOutput {
	out := &listSubscriptionsOutput{Subscriptions: []subscriptionOutput{}}
	for _, key := range s.subscriptions.Keys(prefix) {
		if next != "" && key <= next {
			continue
		}
		if len(out.Subscriptions) == pageSize {
			break
		}
		sub, err := s.subscriptions.Get(context.Background(), key)
		if err != nil {
			continue
		}
		out.Subscriptions = append(out.Subscriptions, subscriptionOutput{SubscriptionArn: s.subscriptionARN(sub), Owner: s.cfg.AccountID,
			Protocol: sub.Protocol, Endpoint: sub.Endpoint, TopicArn: s.topicARN(sub.Topic)})
		if len(out.Subscriptions) == pageSize {
			out.NextToken = key
		}
	}
	return out
}

func (s *Service) listSubscriptions(c *awsproto.Call, in *listInput) (*listSubscriptionsOutput, error) {
	return s.listSubscriptionsFrom("", in.NextToken), nil
}

type listByTopicInput struct {
	TopicArn, NextToken string
}

func (s *Service) listSubscriptionsByTopic(c *awsproto.Call, in *listByTopicInput) (*listSubscriptionsOutput, error) {
	t, err := s.topic(c.Context(), in.TopicArn)
	if err != nil {
		return nil, err
	}
	return s.listSubscriptionsFrom(t.Name+"/", in.NextToken), nil
}

func (s *Service) getSubscriptionAttributes(c *awsproto.Call, in *subscriptionARNInput) (*attributesOutput, error) {
	key, err := s.subscriptionKey(in.SubscriptionArn)
	if err != nil {
		return nil, err
	}
	sub, err := s.subscriptions.Get(c.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errSubscriptionNotFound()
	}
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{
		"SubscriptionArn":              s.subscriptionARN(sub),
		"TopicArn":                     s.topicARN(sub.Topic),
		"Owner":                        s.cfg.AccountID,
		"Protocol":                     sub.Protocol,
		"Endpoint":                     sub.Endpoint,
		"ConfirmationWasAuthenticated": "true",
		"PendingConfirmation":          "false",
		"RawMessageDelivery":           "false",
		"SubscriptionPrincipal":        "arn:aws:iam::" + s.cfg.AccountID + ":root",
	}
	maps.Copy(attrs, sub.Attributes)
	if attrs["FilterPolicy"] != "" && attrs["FilterPolicyScope"] == "" {
		attrs["FilterPolicyScope"] = "MessageAttributes"
	}
	for name, value := range attrs {
		if value == "" {
			delete(attrs, name)
		}
	}
	return &attributesOutput{Attributes: attrs}, nil
}

func (s *Service) setSubscriptionAttributes(c *awsproto.Call, in *setAttributeInput) (*awsproto.Empty, error) {
	key, err := s.subscriptionKey(in.SubscriptionArn)
	if err != nil {
		return nil, err
	}
	_, err = s.subscriptions.Update(c.Context(), key, func(sub *subscriptionRecord) error {
		if err := checkSubscriptionAttribute(sub.Protocol, in.AttributeName, in.AttributeValue); err != nil {
			return err
		}
		attrs := maps.Clone(sub.Attributes)
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[in.AttributeName] = in.AttributeValue
		if in.AttributeValue == "" {
			delete(attrs, in.AttributeName)
		}
		if err := checkFilter(attrs); err != nil {
			return err
		}
		sub.Attributes = attrs
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errSubscriptionNotFound()
	}
	return &awsproto.Empty{}, err
}

type tagResourceInput struct {
	ResourceArn string
	Tags        []tag
	TagKeys     []string
}

type tagsOutput struct {
	Tags []tag `query:",empty"`
}

// tagMap returns tags with more added, within SNS's bounds.
func tagMap(tags map[string]string, more []tag) (map[string]string, error) {
	out := maps.Clone(tags)
	if out == nil {
		out = map[string]string{}
	}
	for _, t := range more {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return nil, errInvalidParameter("Tags Reason: a tag key must have 1 to 128 characters and its value at most 256")
		}
		out[t.Key] = t.Value
	}
	if len(out) > maxTagsPerResource {
		return nil, awsproto.Errorf(400, "TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
	}
	return out, nil
}

// updateTags applies change to the tags of the topic an ARN names.
func (s *Service) updateTags(c *awsproto.Call, arn string, change func(map[string]string) (map[string]string, error)) error {
	name, err := s.topicName(arn)
	if err != nil {
		return awsproto.Errorf(404, "ResourceNotFound", "Resource does not exist")
	}
	_, err = s.topics.Update(c.Context(), name, func(r *topicRecord) error {
		tags, err := change(r.Tags)
		r.Tags = tags
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return awsproto.Errorf(404, "ResourceNotFound", "Resource does not exist")
	}
	return err
}

// emptyResult is the output of an operation whose reply has an empty Result
// element, which botocore expects.
type emptyResult struct{}

func (s *Service) tagResource(c *awsproto.Call, in *tagResourceInput) (*emptyResult, error) {
	err := s.updateTags(c, in.ResourceArn, func(tags map[string]string) (map[string]string, error) {
		return tagMap(tags, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func (s *Service) untagResource(c *awsproto.Call, in *tagResourceInput) (*emptyResult, error) {
	err := s.updateTags(c, in.ResourceArn, func(tags map[string]string) (map[string]string, error) {
		tags = maps.Clone(tags)
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
		return tags, nil
	})
	if err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func (s *Service) listTagsForResource(c *awsproto.Call, in *tagResourceInput) (*tagsOutput, error) {
	name, err := s.topicName(in.ResourceArn)
	if err != nil {
		return nil, awsproto.Errorf(404, "ResourceNotFound", "Resource does not exist")
	}
	t, err := s.topics.Get(c.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, awsproto.Errorf(404, "ResourceNotFound", "Resource does not exist")
	}
	if err != nil {
		return nil, err
	}
	out := &tagsOutput{Tags: []tag{}}
	for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
		out.Tags = append(out.Tags, tag{k, t.Tags[k]})
	}
	return out, nil
}
