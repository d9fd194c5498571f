package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventpattern"
	"github.com/lamina-project/lamina/internal/store"
)

// Operations are the EventBridge API's bus and event operations (JSON 1.1,
// AWSEvents.*), for the service that serves EventBridge's rule operations
// to add.
func (s *Service) Operations() []*awsproto.Operation {
	return []*awsproto.Operation{
		awsproto.Op("CreateEventBus", s.createEventBus),
		awsproto.Op("DeleteEventBus", s.deleteEventBus),
		awsproto.Op("DescribeEventBus", s.describeEventBus),
		awsproto.Op("ListEventBuses", s.listEventBuses),
		awsproto.Op("PutEvents", s.putEvents).Bodies(4*maxEntriesSize, 3),
		awsproto.Op("TestEventPattern", s.testEventPattern),
	}
}

type busInput struct {
	Name        string
	Description string
}

type busOutput struct {
	Name             string
	Arn              string
	Description      string  `json:",omitempty"`
	CreationTime     float64 `json:",omitempty"`
	LastModifiedTime float64 `json:",omitempty"`
}

func (s *Service) createEventBus(c *awsproto.Call, in *busInput) (*struct{ EventBusArn string }, error) {
	switch {
	case !busNameRE.MatchString(in.Name):
		return nil, validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+", in.Name)
	case in.Name == DefaultBus || strings.HasPrefix(in.Name, "aws."):
		return nil, validation("Event bus name %s is reserved.", in.Name)
	}
	if len(s.buses.Keys("")) >= s.cfg.MaxBuses {
		return nil, awsproto.Errorf(http.StatusBadRequest, "LimitExceededException", "The account holds its maximum of %d event buses.", s.cfg.MaxBuses)
	}
	err := s.buses.Create(c.Context(), in.Name, &busRecord{Name: in.Name, Description: in.Description, Created: time.Now().UnixMilli()})
	if errors.Is(err, store.ErrExists) {
		return nil, awsproto.Errorf(http.StatusBadRequest, "ResourceAlreadyExistsException", "Event bus %s already exists.", in.Name)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("event bus created", "bus", in.Name)
	return &struct{ EventBusArn string }{s.BusARN(in.Name)}, nil
}

func (s *Service) deleteEventBus(c *awsproto.Call, in *busInput) (*awsproto.Empty, error) {
	if in.Name == DefaultBus {
		return nil, validation("Cannot delete event bus default.")
	}
	ctx := c.Context()
	if _, err := s.buses.Remove(ctx, in.Name, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// Its rules go with it.
	for _, r := range s.cfg.Store.ListRules(ctx, in.Name+"/") {
		if r.EventBusName == in.Name {
			if err := s.cfg.Store.DeleteRule(ctx, RuleKey(in.Name, r.Name)); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
	}
	return &awsproto.Empty{}, nil
}

func (s *Service) describe(name string) (*busOutput, error) {
	if name == DefaultBus {
		return &busOutput{Name: DefaultBus, Arn: s.BusARN(DefaultBus)}, nil
	}
	b, err := s.buses.Get(context.Background(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Event bus %s does not exist.", name)
	}
	if err != nil {
		return nil, err
	}
	t := float64(b.Created) / 1000
	return &busOutput{Name: b.Name, Arn: s.BusARN(b.Name), Description: b.Description, CreationTime: t, LastModifiedTime: t}, nil
}

func (s *Service) describeEventBus(c *awsproto.Call, in *busInput) (*busOutput, error) {
	name, err := s.BusName(c.Context(), in.Name)
	if err != nil {
		return nil, err
	}
	return s.describe(name)
}

type listBusesInput struct {
	NamePrefix string
	NextToken  string
	Limit      int
}

type listBusesOutput struct {
	EventBuses []*busOutput
	NextToken  string `json:",omitempty"`
}

func (s *Service) listEventBuses(c *awsproto.Call, in *listBusesInput) (*listBusesOutput, error) {
	names := append([]string{DefaultBus}, s.buses.Keys("")...)
	limit := in.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	out := &listBusesOutput{EventBuses: []*busOutput{}}
	for _, name := range names {
		if !strings.HasPrefix(name, in.NamePrefix) || (in.NextToken != "" && name <= in.NextToken && name != DefaultBus) ||
			(in.NextToken != "" && name == DefaultBus) {
			continue
		}
		if len(out.EventBuses) == limit {
			out.NextToken = out.EventBuses[limit-1].Name
			break
		}
		b, err := s.describe(name)
		if err != nil {
			continue // deleted meanwhile
		}
		out.EventBuses = append(out.EventBuses, b)
	}
	return out, nil
}

// putEventsEntry is one event of PutEvents.
type putEventsEntry struct {
	Source       string
	DetailType   string
	Detail       string
	Resources    []string
	Time         *float64
	EventBusName string
	TraceHeader  string
}

type putEventsResult struct {
	EventId      string `json:",omitempty"`
	ErrorCode    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

type putEventsOutput struct {
	FailedEntryCount int
	Entries          []putEventsResult
}

func (s *Service) putEvents(c *awsproto.Call, in *struct{ Entries []putEventsEntry }) (*putEventsOutput, error) {
	if len(in.Entries) == 0 || len(in.Entries) > maxEntries {
		return nil, validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and %d", maxEntries)
	}
	size := 0
	for _, e := range in.Entries {
		size += len(e.Source) + len(e.DetailType) + len(e.Detail) + 14
		for _, r := range e.Resources {
			size += len(r)
		}
	}
	if size > maxEntriesSize {
		return nil, validation("Total size of the entries in the request is over the limit.")
	}
	out := &putEventsOutput{Entries: make([]putEventsResult, len(in.Entries))}
	for i, e := range in.Entries {
		id, code, msg := s.putEntry(c, e)
		if code == "" {
			out.Entries[i] = putEventsResult{EventId: id}
			continue
		}
		out.FailedEntryCount++
		out.Entries[i] = putEventsResult{ErrorCode: code, ErrorMessage: msg}
	}
	return out, nil
}

// putEntry puts one event and returns its id, or an error code and
// message.
func (s *Service) putEntry(c *awsproto.Call, e putEventsEntry) (id, code, message string) {
	ctx := c.Context()
	switch {
	case e.Source == "":
		return "", "InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."
	case e.DetailType == "":
		return "", "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."
	case e.Detail == "":
		return "", "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."
	case strings.HasPrefix(e.Source, "aws."):
		return "", "NotAuthorizedForSourceException", "Not authorized for the source."
	}
	var detail map[string]json.RawMessage
	if json.Unmarshal([]byte(e.Detail), &detail) != nil || detail == nil {
		return "", "MalformedDetail", "Detail is malformed."
	}
	bus, err := s.BusName(ctx, e.EventBusName)
	if err != nil {
		var ae *awsproto.Error
		if errors.As(err, &ae) {
			return "", ae.Code, ae.Message
		}
		return "", "InternalFailure", "The event could not be put; try again."
	}
	at := time.Now()
	if e.Time != nil {
		at = time.Unix(0, int64(*e.Time*1e9))
	}
	ev := s.newEvent(e.Source, e.DetailType, []byte(e.Detail), e.Resources, at)
	if err := s.route(ctx, bus, ev, 0); err != nil {
		s.log.Warn("an event could not be delivered to every target", "bus", bus, "event_id", ev.ID, "err", err)
		return "", "InternalFailure", "The event could not be delivered to every target; put it again."
	}
	return ev.ID, "", ""
}

type testEventPatternInput struct {
	EventPattern string
	Event        string
}

func (s *Service) testEventPattern(c *awsproto.Call, in *testEventPatternInput) (*struct{ Result bool }, error) {
	p, err := s.Pattern(in.EventPattern)
	if err != nil {
		return nil, err
	}
	event, err := eventpattern.Decode([]byte(in.Event))
	if err != nil || !isObject(event) {
		return nil, validation("Parameter Event is not valid: it is not a JSON object.")
	}
	return &struct{ Result bool }{p.Match(event)}, nil
}
