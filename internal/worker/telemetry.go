package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The Telemetry API (2022-07-01, and the Logs API 2020-08-15 it replaced)
// of an environment: an extension subscribes with PUT /telemetry to some of
// the types platform, function and extension, and the worker POSTs JSON
// arrays of {time, type, record} to the HTTP endpoint the extension serves
// in the sandbox (http://sandbox.localdomain:PORT/path), in batches as its
// buffering asks: at maxItems records, maxBytes bytes, or timeoutMs after
// the first. Records made before the subscription, since the environment
// started, are delivered too (at most maxBacklog), so that a subscriber
// sees platform.initStart.

// Bounds of the Telemetry API, as Lambda sets them.
const (
	telemetryMinItems, telemetryMaxItems, telemetryDefaultItems = 1000, 10000, 10000
	telemetryMinBytes, telemetryMaxBytes, telemetryDefaultBytes = 262144, 1048576, 262144
	telemetryMinTimeout, telemetryMaxTimeout                    = 25 * time.Millisecond, 30 * time.Second
	telemetryDefaultTimeout                                     = time.Second
	// telemetryQueueFactor bounds what a subscriber's queue holds while a
	// batch is on its way (the subscriber is slow, or the environment is
	// frozen): this many times its maxBytes; beyond, records are dropped
	// and platform.logsDropped says how many.
	telemetryQueueFactor = 4
	// maxBacklog bounds the records kept for subscribers to come.
	maxBacklog = 1000
)

// telemetryRecord is one record of the Telemetry API.
type telemetryRecord struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record any    `json:"record"`
}

// category is the subscription type a record belongs to.
func (r *telemetryRecord) category() string {
	switch r.Type {
	case "function", "extension":
		return r.Type
	}
	return "platform"
}

// telemetry fans an environment's records out to its subscribers.
type telemetry struct {
	mu      sync.Mutex
	subs    []*subscriber
	backlog []*telemetryRecord // until init ends
	keep    bool               // keep a backlog
	dial    func(ctx context.Context, addr string) (net.Conn, error)
	done    <-chan struct{} // the environment is destroyed
}

// emit records a telemetry record of type typ now.
func (t *telemetry) emit(typ string, record any) {
	t.emitAt(time.Now(), typ, record)
}

func (t *telemetry) emitAt(ts time.Time, typ string, record any) {
	t.mu.Lock()
	if !t.keep && len(t.subs) == 0 {
		t.mu.Unlock()
		return // nobody listens: the usual case costs nothing more
	}
	rec := &telemetryRecord{Time: ts.UTC().Format("2006-01-02T15:04:05.000Z"), Type: typ, Record: record}
	if t.keep && len(t.backlog) < maxBacklog {
		t.backlog = append(t.backlog, rec)
	}
	subs := t.subs
	t.mu.Unlock()
	for _, s := range subs {
		s.add(rec)
	}
}

// endBacklog stops keeping records for subscribers to come: init is over.
func (t *telemetry) endBacklog() {
	t.mu.Lock()
	t.keep, t.backlog = false, nil
	t.mu.Unlock()
}

// flush asks every subscriber to deliver what it holds now, and waits
// until they have, or until deadline.
func (t *telemetry) flush(deadline time.Time) {
	t.mu.Lock()
	subs := t.subs
	t.mu.Unlock()
	for _, s := range subs {
		s.flushBy(deadline)
	}
}

// subscriber is one subscription: its queue and its delivery loop.
type subscriber struct {
	t        *telemetry
	types    map[string]bool
	target   *url.URL
	maxItems int
	maxBytes int
	timeout  time.Duration
	client   *http.Client

	mu        sync.Mutex
	queue     []*telemetryRecord
	size      int // bytes queued, about
	dropped   int
	posting   bool          // a batch is on its way
	kick      chan struct{} // buffered 1: deliver now
	delivered chan struct{} // poked (buffered 1) after each delivery
}

func (s *subscriber) add(rec *telemetryRecord) {
	if !s.types[rec.category()] {
		return
	}
	n := approximateSize(rec)
	s.mu.Lock()
	if s.size+n > telemetryQueueFactor*s.maxBytes {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, rec)
	s.size += n
	full := len(s.queue) >= s.maxItems || s.size >= s.maxBytes
	s.mu.Unlock()
	if full {
		s.poke()
	}
}

func (s *subscriber) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// approximateSize is about the JSON size of a record.
func approximateSize(rec *telemetryRecord) int {
	if s, ok := rec.Record.(string); ok {
		return len(s) + 64
	}
	return 256
}

// run delivers batches until the environment is destroyed.
func (s *subscriber) run() {
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	for {
		select {
		case <-s.kick:
		case <-timer.C:
		case <-s.t.done:
			s.client.CloseIdleConnections()
			return
		}
		s.deliver()
		timer.Reset(s.timeout)
	}
}

// deliver POSTs what is queued, in batches of at most maxItems records.
func (s *subscriber) deliver() {
	defer func() {
		select {
		case s.delivered <- struct{}{}:
		default:
		}
	}()
	for {
		s.mu.Lock()
		if s.dropped > 0 {
			s.queue = append(s.queue, &telemetryRecord{Time: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
				Type: "platform.logsDropped", Record: map[string]any{
					"reason": "Some logs were dropped because the subscriber did not keep up.", "droppedRecords": s.dropped}})
			s.dropped = 0
		}
		n := min(len(s.queue), s.maxItems)
		batch := s.queue[:n:n]
		s.queue = s.queue[n:]
		s.size = 0
		for _, r := range s.queue {
			s.size += approximateSize(r)
		}
		s.posting = len(batch) > 0
		s.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		s.post(batch)
	}
}

func (s *subscriber) post(batch []*telemetryRecord) {
	data, err := json.Marshal(batch)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target.String(), bytes.NewReader(data))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
}

// flushBy delivers what is queued and waits until nothing is queued or on
// its way, or until deadline.
func (s *subscriber) flushBy(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		idle := len(s.queue) == 0 && s.dropped == 0 && !s.posting
		s.mu.Unlock()
		if idle {
			return
		}
		s.poke()
		select {
		case <-s.delivered:
		case <-timer.C:
			return
		}
	}
}

// subscribeRequest is the body of PUT /2022-07-01/telemetry (and of the
// Logs API's PUT /2020-08-15/logs).
type subscribeRequest struct {
	SchemaVersion string   `json:"schemaVersion"`
	Types         []string `json:"types"`
	Buffering     *struct {
		MaxItems  *int `json:"maxItems"`
		MaxBytes  *int `json:"maxBytes"`
		TimeoutMs *int `json:"timeoutMs"`
	} `json:"buffering"`
	Destination struct {
		Protocol string `json:"protocol"`
		URI      string `json:"URI"`
	} `json:"destination"`
}

// handleSubscribe subscribes an extension to the environment's telemetry.
func (env *environment) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	ext := env.extensionOf(w, r)
	if ext == nil {
		return
	}
	body, err := readBody(r, maxExtensionBody)
	if errors.Is(err, errBodyTooLarge) {
		payloadTooLarge(w, maxExtensionBody)
		return
	}
	var req subscribeRequest
	if err != nil || json.Unmarshal(body, &req) != nil {
		runtimeAPIError(w, http.StatusBadRequest, "ValidationError", "the subscription is not valid JSON")
		return
	}
	s, msg := env.newSubscriber(&req)
	if s == nil {
		runtimeAPIError(w, http.StatusBadRequest, "ValidationError", msg)
		return
	}
	t := &env.telemetry
	t.mu.Lock()
	t.subs = append(t.subs, s)
	backlog := t.backlog
	t.mu.Unlock()
	for _, rec := range backlog {
		s.add(rec)
	}
	go s.run()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
}

// newSubscriber checks a subscription and returns its subscriber, or the
// reason it is refused.
func (env *environment) newSubscriber(req *subscribeRequest) (*subscriber, string) {
	s := &subscriber{t: &env.telemetry, types: map[string]bool{}, maxItems: telemetryDefaultItems,
		maxBytes: telemetryDefaultBytes, timeout: telemetryDefaultTimeout,
		kick: make(chan struct{}, 1), delivered: make(chan struct{}, 1)}
	for _, typ := range req.Types {
		if typ != "platform" && typ != "function" && typ != "extension" {
			return nil, "Unknown telemetry type " + strconv.Quote(typ)
		}
		s.types[typ] = true
	}
	if b := req.Buffering; b != nil {
		if b.MaxItems != nil {
			if *b.MaxItems < telemetryMinItems || *b.MaxItems > telemetryMaxItems {
				return nil, "buffering.maxItems must be between 1000 and 10000"
			}
			s.maxItems = *b.MaxItems
		}
		if b.MaxBytes != nil {
			if *b.MaxBytes < telemetryMinBytes || *b.MaxBytes > telemetryMaxBytes {
				return nil, "buffering.maxBytes must be between 262144 and 1048576"
			}
			s.maxBytes = *b.MaxBytes
		}
		if b.TimeoutMs != nil {
			d := time.Duration(*b.TimeoutMs) * time.Millisecond
			if d < telemetryMinTimeout || d > telemetryMaxTimeout {
				return nil, "buffering.timeoutMs must be between 25 and 30000"
			}
			s.timeout = d
		}
	}
	if req.Destination.Protocol != "HTTP" {
		return nil, "destination.protocol must be HTTP (Lamina does not deliver over TCP)"
	}
	target, err := url.Parse(req.Destination.URI)
	if err != nil || target.Scheme != "http" || target.Port() == "" {
		return nil, "destination.URI must be http://sandbox.localdomain:PORT/PATH"
	}
	host := target.Hostname()
	if host == "sandbox.localdomain" || host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() && !ip.IsUnspecified() {
		return nil, "destination.URI must name the sandbox (sandbox.localdomain or a loopback address)"
	}
	addr := net.JoinHostPort(host, target.Port())
	dial := env.telemetry.dial
	s.client = &http.Client{Transport: &http.Transport{
		// No timeout: a frozen environment's subscriber answers once it is
		// thawed; one delivery at a time, until the environment is destroyed.
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, addr) },
		MaxIdleConnsPerHost: 1,
	}}
	s.target = target
	return s, ""
}
