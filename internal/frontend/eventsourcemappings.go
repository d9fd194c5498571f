package frontend

import (
	"context"
	"net/http"
	"strconv"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/eventsource"
)

// EventSources manages event source mappings (*eventsource.Service).
type EventSources interface {
	Create(ctx context.Context, in *eventsource.Input) (*eventsource.Configuration, error)
	Get(ctx context.Context, uuid string) (*eventsource.Configuration, error)
	Update(ctx context.Context, uuid string, in *eventsource.Input) (*eventsource.Configuration, error)
	Delete(ctx context.Context, uuid string) (*eventsource.Configuration, error)
	List(ctx context.Context, sourceARN, function, marker string, maxItems int) ([]eventsource.Configuration, string, error)
}

// eventSources returns the node's event source mappings, or refuses the
// operation when the node has none.
func (f *Frontend) eventSources() (EventSources, error) {
	if f.sources == nil {
		return nil, lamina.ErrUnknownOperation()
	}
	return f.sources, nil
}

func (f *Frontend) createEventSourceMapping(rq *request) error {
	es, err := f.eventSources()
	if err != nil {
		return err
	}
	var in eventsource.Input
	if err := rq.decode(&in); err != nil {
		return err
	}
	c, err := es.Create(rq.r.Context(), &in)
	if err != nil {
		return err
	}
	return rq.json(http.StatusAccepted, c)
}

func (f *Frontend) getEventSourceMapping(rq *request) error {
	es, err := f.eventSources()
	if err != nil {
		return err
	}
	c, err := es.Get(rq.r.Context(), rq.r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, c)
}

func (f *Frontend) updateEventSourceMapping(rq *request) error {
	es, err := f.eventSources()
	if err != nil {
		return err
	}
	var in eventsource.Input
	if err := rq.decode(&in); err != nil {
		return err
	}
	c, err := es.Update(rq.r.Context(), rq.r.PathValue("uuid"), &in)
	if err != nil {
		return err
	}
	return rq.json(http.StatusAccepted, c)
}

func (f *Frontend) deleteEventSourceMapping(rq *request) error {
	es, err := f.eventSources()
	if err != nil {
		return err
	}
	c, err := es.Delete(rq.r.Context(), rq.r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return rq.json(http.StatusAccepted, c)
}

func (f *Frontend) listEventSourceMappings(rq *request) error {
	es, err := f.eventSources()
	if err != nil {
		return err
	}
	q := rq.r.URL.Query()
	maxItems := 0
	if s := q.Get("MaxItems"); s != "" {
		if maxItems, err = strconv.Atoi(s); err != nil || maxItems < 1 || maxItems > 10000 {
			return lamina.ErrInvalidParameter("MaxItems must be between 1 and 10000.")
		}
	}
	list, next, err := es.List(rq.r.Context(), q.Get("EventSourceArn"), q.Get("FunctionName"), q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := struct {
		EventSourceMappings []eventsource.Configuration
		NextMarker          string `json:",omitempty"`
	}{list, next}
	if out.EventSourceMappings == nil {
		out.EventSourceMappings = []eventsource.Configuration{}
	}
	return rq.json(http.StatusOK, out)
}
