// Package sns is Lamina's SNS-compatible topic service: the SNS API on its
// query protocol (what the AWS CLI, boto3 and aws-sdk-go-v2 send), topics
// and their subscriptions kept in the store (store.Table, so every node of
// a cluster serves them), and publishing that fans a message out to the
// subscriptions whose filter policies it matches.
//
// Delivery is durable before Publish answers: each matching subscription's
// delivery is handed to targets.Router — a function's as an asynchronous
// invocation queued on JetStream (whose retries, destinations and
// dead-letter target then apply), a queue's as an SQS message — and
// Publish returns its MessageId only once every one of them is stored. A
// node killed after Publish answered loses no delivery; one killed before
// may have made some of them, and the client's retry makes them again
// (function deliveries carry an ID derived from the message and the
// subscription, which the async queue deduplicates).
package sns

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
	"golang.org/x/sync/semaphore"
)

// Buckets; part of the on-disk format.
const (
	topicsBucket        = "lamina_sns_topics"
	subscriptionsBucket = "lamina_sns_subscriptions"
)

// Limits bound what clients can make grow.
type Limits struct {
	// MaxTopics bounds the account's topics.
	MaxTopics int
	// MaxSubscriptionsPerTopic bounds one topic's subscriptions.
	MaxSubscriptionsPerTopic int
	// MaxDeliveries bounds the deliveries this node makes at once for all
	// publishes; a publish waits for room, and is refused with Throttled
	// when its request ends first.
	MaxDeliveries int
}

// DefaultLimits are the bounds when none are given.
var DefaultLimits = Limits{MaxTopics: 1000, MaxSubscriptionsPerTopic: 1000, MaxDeliveries: 256}

// Bounds of SNS itself.
const (
	maxMessageSize     = 256 * 1024 // a message with its attributes, and a batch
	maxBatchEntries    = 10
	maxFilterPolicy    = 256 * 1024
	maxAttributeName   = 256
	maxRawAttributes   = 10 // message attributes a raw SQS delivery carries
	maxPolicyKeys      = 5
	maxTagsPerResource = 50
)

// Deliverer sends a delivery to a function or queue (*targets.Router).
type Deliverer interface {
	Deliver(ctx context.Context, arn string, m *targets.Message) error
}

// Config is what the service needs.
type Config struct {
	Region, AccountID string
	Store             *store.Store
	// Targets delivers to subscriptions' endpoints.
	Targets Deliverer
	// Endpoint is the node's API endpoint (http://host:port): the base of
	// the UnsubscribeUrl and SigningCertUrl in messages.
	Endpoint string
	// SigningKey keys the Signature of messages.
	SigningKey []byte
	// Limits; zero values take DefaultLimits'.
	Limits Limits
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Service is the topic service of one node.
type Service struct {
	cfg           Config
	log           *slog.Logger
	topics        *store.Table[topicRecord]
	subscriptions *store.Table[subscriptionRecord]
	deliveries    *semaphore.Weighted
	api           *awsproto.Service
}

// topicRecord is a topic as stored, under its name.
type topicRecord struct {
	Name string
	// ID tells a topic from an earlier one of the same name.
	ID         string
	Attributes map[string]string `json:",omitempty"`
	Tags       map[string]string `json:",omitempty"`
	Created    int64
}

// subscriptionRecord is a subscription as stored, under
// "<topic name>/<id>".
type subscriptionRecord struct {
	ID, Topic, TopicID string
	Protocol, Endpoint string
	// Attributes are the settable attributes (FilterPolicy,
	// FilterPolicyScope, RawMessageDelivery, RedrivePolicy,
	// DeliveryPolicy…), as given.
	Attributes map[string]string `json:",omitempty"`
	Created    int64
}

// Open opens (creating) the service's buckets.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := DefaultLimits
	l := &cfg.Limits
	for _, f := range []struct {
		v *int
		d int
	}{{&l.MaxTopics, def.MaxTopics}, {&l.MaxSubscriptionsPerTopic, def.MaxSubscriptionsPerTopic}, {&l.MaxDeliveries, def.MaxDeliveries}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	topics, err := store.OpenTable[topicRecord](ctx, cfg.Store, topicsBucket, "topic")
	if err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	subs, err := store.OpenTable[subscriptionRecord](ctx, cfg.Store, subscriptionsBucket, "subscription")
	if err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("part", "sns"), topics: topics, subscriptions: subs,
		deliveries: semaphore.NewWeighted(int64(cfg.Limits.MaxDeliveries))}
	s.api = s.apiService()
	return s, nil
}

// API is the service as the API listener's dispatcher serves it.
func (s *Service) API() *awsproto.Service { return s.api }

// topicARN is the ARN of the topic called name.
func (s *Service) topicARN(name string) string {
	return "arn:aws:sns:" + s.cfg.Region + ":" + s.cfg.AccountID + ":" + name
}

// subscriptionARN is a subscription's ARN.
func (s *Service) subscriptionARN(sub *subscriptionRecord) string {
	return s.topicARN(sub.Topic) + ":" + sub.ID
}

// sign returns the Signature of a message's canonical string: an
// HMAC-SHA256 under the deployment's key (not an RSA signature an SNS
// certificate verifies).
func (s *Service) sign(canonical string) []byte {
	mac := hmac.New(sha256.New, s.cfg.SigningKey)
	mac.Write([]byte(canonical))
	return mac.Sum(nil)
}
