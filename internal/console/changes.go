package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lamina-project/lamina"
)

// Bounds of the change streams.
const (
	// maxStreams bounds the change streams a node serves at once.
	maxStreams = 64
	// maxStreamsPerSession bounds those of one session (a few tabs).
	maxStreamsPerSession = 4
	// streamBuffer is how many changes wait for a slow stream; past it the
	// stream is told to read everything again ("resync").
	streamBuffer = 64
	// heartbeatInterval is how often an idle stream sends a comment, which
	// also ends it once its session has.
	heartbeatInterval = 20 * time.Second
)

// change is one event of the stream: a function record changed.
type change struct {
	Function string `json:"function"`
	Version  string `json:"version"`
}

// subscriber is one open stream.
type subscriber struct {
	ch     chan change
	missed bool // changes were dropped: the stream must resync
}

// hub fans the store's change notifications out to the open streams.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	done   chan struct{}
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}, done: make(chan struct{})} }

// publish hands a change to every stream without blocking: it runs on the
// store's goroutine.
func (h *hub) publish(function, version string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- change{Function: function, Version: version}:
		default:
			s.missed = true
		}
	}
}

// subscribe opens a stream, or returns nil when maxStreams are open or the
// hub is closed.
func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= maxStreams {
		return nil
	}
	s := &subscriber{ch: make(chan change, streamBuffer)}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// takeMissed reports whether s dropped changes since the last call.
func (h *hub) takeMissed(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	missed := s.missed
	s.missed = false
	return missed
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

var errTooManyStreams = &lamina.Error{Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Type: "User",
	Message: "Too many live streams are open; close another console tab."}

// changes streams the store's changes of functions as server-sent events:
// "function" events with {"function", "version"}, and "resync" when changes
// were dropped and the page must read everything again.
func (c *Console) changes(w http.ResponseWriter, r *http.Request, sess *session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, lamina.ErrService("Streaming is not available."))
		return
	}
	if !c.sessions.openStream(sess) {
		writeError(w, errTooManyStreams)
		return
	}
	defer c.sessions.closeStream(sess)
	sub := c.hub.subscribe()
	if sub == nil {
		writeError(w, errTooManyStreams)
		return
	}
	defer c.hub.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": lamina console changes\n\n")
	flusher.Flush()
	heartbeat := time.NewTicker(heartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.hub.done:
			return
		case <-heartbeat.C:
			if !c.sessions.alive(sess) {
				return
			}
			fmt.Fprint(w, ": heartbeat\n\n")
		case ch := <-sub.ch:
			if c.hub.takeMissed(sub) {
				fmt.Fprint(w, "event: resync\ndata: {}\n\n")
			}
			data, _ := json.Marshal(ch)
			fmt.Fprintf(w, "event: function\ndata: %s\n\n", data)
		}
		flusher.Flush()
	}
}
