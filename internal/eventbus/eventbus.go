// Package eventbus is EventBridge's event buses: the default bus and custom
// ones (kept in the store), PutEvents, and the routing of each event to the
// targets of the rules on its bus whose event patterns it matches
// (internal/eventpattern), with each target's Input, InputPath or
// InputTransformer applied. Targets are functions (asynchronous
// invocations, when their policies allow events.amazonaws.com for the
// rule), SQS queues, SNS topics and other buses, all through
// targets.Router.
//
// Delivery is durable before PutEvents answers: every matching target's
// delivery is stored (a queued invocation, a queue message, a topic's own
// deliveries) before the entry's EventId is returned.
package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventpattern"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// DefaultBus is the name of the bus every account has.
const DefaultBus = "default"

// busesBucket holds the custom buses; part of the on-disk format.
const busesBucket = "lamina_event_buses"

// Bounds.
const (
	// DefaultMaxBuses bounds the account's custom buses (EventBridge's
	// quota is 100).
	DefaultMaxBuses = 100
	maxEntries      = 10
	maxEntriesSize  = 256 * 1024
	// maxHops bounds how many buses one event passes through (a rule
	// whose target is another bus), so that buses targeting each other
	// cannot loop.
	maxHops = 5
)

// Deliverer sends a delivery to a target (*targets.Router).
type Deliverer interface {
	Deliver(ctx context.Context, arn string, m *targets.Message) error
}

// Config is what the service needs.
type Config struct {
	Region, AccountID string
	Store             *store.Store
	Targets           Deliverer
	// MaxBuses bounds the custom buses; zero means DefaultMaxBuses.
	MaxBuses int
	Logger   *slog.Logger
}

// Service is the event buses of one node.
type Service struct {
	cfg   Config
	log   *slog.Logger
	buses *store.Table[busRecord]

	mu       sync.Mutex
	patterns map[string]*eventpattern.Pattern // compiled, by pattern text
}

// busRecord is a custom bus as stored, under its name.
type busRecord struct {
	Name        string
	Description string `json:",omitempty"`
	Created     int64
}

// Open opens (creating) the buses' bucket.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBuses <= 0 {
		cfg.MaxBuses = DefaultMaxBuses
	}
	buses, err := store.OpenTable[busRecord](ctx, cfg.Store, busesBucket, "event bus")
	if err != nil {
		return nil, fmt.Errorf("eventbus: %w", err)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("part", "eventbus"), buses: buses, patterns: map[string]*eventpattern.Pattern{}}, nil
}

// RuleKey is the store key of the rule called name on bus: its name on the
// default bus, "<bus>/<name>" on a custom one.
func RuleKey(bus, name string) string {
	if bus == "" || bus == DefaultBus {
		return name
	}
	return bus + "/" + name
}

// RuleARN is the ARN of a rule: rule/<name> on the default bus,
// rule/<bus>/<name> on a custom one.
func (s *Service) RuleARN(bus, name string) string {
	return lamina.RuleARN(s.cfg.Region, s.cfg.AccountID, RuleKey(bus, name))
}

// BusARN is the ARN of a bus.
func (s *Service) BusARN(name string) string {
	return "arn:aws:events:" + s.cfg.Region + ":" + s.cfg.AccountID + ":event-bus/" + name
}

var busNameRE = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,256}$`)

// BusName returns the name of the bus a request's EventBusName (a name or
// an ARN; empty means the default bus) names, or ResourceNotFoundException
// when there is no such bus.
func (s *Service) BusName(ctx context.Context, nameOrARN string) (string, error) {
	name := nameOrARN
	if strings.HasPrefix(name, "arn:") {
		rest, ok := strings.CutPrefix(name, s.BusARN(""))
		if !ok {
			return "", notFound("Event bus %s does not exist.", nameOrARN)
		}
		name = rest
	}
	if name == "" || name == DefaultBus {
		return DefaultBus, nil
	}
	if _, err := s.buses.Get(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", notFound("Event bus %s does not exist.", nameOrARN)
		}
		return "", err
	}
	return name, nil
}

func notFound(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusBadRequest, "ResourceNotFoundException", format, args...)
}

func validation(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

// Pattern returns a compiled event pattern, or InvalidEventPatternException.
func (s *Service) Pattern(text string) (*eventpattern.Pattern, error) {
	s.mu.Lock()
	p := s.patterns[text]
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := eventpattern.Compile(text)
	if err != nil {
		return nil, awsproto.Errorf(http.StatusBadRequest, "InvalidEventPatternException", "Event pattern is not valid. Reason: %v", err)
	}
	s.mu.Lock()
	if len(s.patterns) >= 10000 {
		clear(s.patterns)
	}
	s.patterns[text] = p
	s.mu.Unlock()
	return p, nil
}

// Event is an EventBridge event as targets receive it.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// newEvent returns an event of this account and region.
func (s *Service) newEvent(source, detailType string, detail []byte, resources []string, at time.Time) *Event {
	if resources == nil {
		resources = []string{}
	}
	return &Event{Version: "0", ID: uuid.NewString(), DetailType: detailType, Source: source, Account: s.cfg.AccountID,
		Time: at.UTC().Format("2006-01-02T15:04:05Z"), Region: s.cfg.Region, Resources: resources, Detail: detail}
}

// PutTo puts m on the bus arn names as an event of m's Source and
// DetailType whose detail is m's Payload (a JSON object, or else a string
// in {"message": …}): the buses as targets.Buses, for destinations.
func (s *Service) PutTo(ctx context.Context, arn string, m *targets.Message) error {
	bus, err := s.BusName(ctx, arn)
	if err != nil {
		return err
	}
	detail := m.Payload
	if d, err := eventpattern.Decode(detail); err != nil || !isObject(d) {
		detail, _ = json.Marshal(map[string]string{"message": string(m.Payload)}) // a string always encodes
	}
	return s.route(ctx, bus, s.newEvent(m.Source, m.DetailType, detail, m.Resources, time.Now()), 0)
}

func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// route delivers an event to the targets of the enabled rules of bus it
// matches. hops counts the buses it came through.
func (s *Service) route(ctx context.Context, bus string, ev *Event, hops int) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	event, err := eventpattern.Decode(data)
	if err != nil {
		return err
	}
	ingested := time.Now()
	var first error
	for _, rule := range s.cfg.Store.ListRules(ctx, "") {
		if rule.State != "ENABLED" || rule.EventPattern == "" || orDefault(rule.EventBusName) != bus {
			continue
		}
		p, err := s.Pattern(rule.EventPattern)
		if err != nil || !p.Match(event) {
			continue
		}
		for _, t := range rule.Targets {
			if err := s.deliver(ctx, rule, t, ev, event, data, ingested, hops); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func orDefault(bus string) string {
	if bus == "" {
		return DefaultBus
	}
	return bus
}

// deliver sends an event to one rule target. A target that refuses it (a
// function whose policy does not allow the rule, a queue that does not
// exist) is logged, as EventBridge counts a failed invocation; a failure
// of Lamina's is returned.
func (s *Service) deliver(ctx context.Context, rule *lamina.Rule, t lamina.Target, ev *Event, event any, data []byte, ingested time.Time, hops int) error {
	log := s.log.With("rule", rule.Name, "bus", orDefault(rule.EventBusName), "target", t.Arn, "event_id", ev.ID)
	kind, err := targets.Parse(s.cfg.Region, s.cfg.AccountID, t.Arn)
	if err != nil {
		log.Warn("rule target not invoked", "err", err)
		return nil
	}
	if kind == targets.Bus {
		bus, err := s.BusName(ctx, t.Arn)
		if err == nil && hops+1 >= maxHops {
			err = fmt.Errorf("the event passed through %d buses", maxHops)
		}
		if err == nil {
			return s.route(ctx, bus, ev, hops+1)
		}
		log.Warn("rule target not invoked", "err", err)
		return nil
	}
	payload, err := Input(t, event, data, rule, ingested)
	if err != nil {
		log.Warn("rule target not invoked: its input could not be made", "err", err)
		return nil
	}
	m := &targets.Message{
		ID:      uuid.NewSHA1(uuid.NameSpaceURL, []byte("lamina:events/"+ev.ID+"/"+rule.Arn+"/"+t.Id)).String(),
		Payload: payload, Principal: policy.PrincipalEvents, SourceArn: rule.Arn,
	}
	err = s.cfg.Targets.Deliver(ctx, t.Arn, m)
	var ae *awsproto.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, targets.ErrNotPermitted), errors.As(err, &ae) && ae.Status < 500:
		log.Warn("rule target not invoked", "err", err)
		return nil
	}
	return err
}
