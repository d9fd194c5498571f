package console

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Bounds of the samples the console keeps in memory. A sample is 8 bytes of
// time and 14 float32 figures (64 bytes), so the whole is at most
// (MaxFunctions + 1 for the node) × SampleCount × 64 bytes: with the
// defaults 257 × 720 × 64 B ≈ 11.8 MB, plus each function's last counters
// (about 0.5 KB).
const (
	// SampleCount is how many samples a series keeps: an hour at the
	// default interval.
	SampleCount = 720
	// DefaultSampleInterval is how often the node's metrics are sampled.
	DefaultSampleInterval = 5 * time.Second
	// MaxFunctions bounds the functions that have series; past it the
	// series of the function idle longest is dropped.
	MaxFunctions = 256
	// MaxMappings bounds the event source mappings that have a lag series
	// (8 bytes of time and 4 of lag a sample: 256 × 720 × 16 B ≈ 2.9 MB);
	// past it the series of the mapping polled least recently is dropped.
	MaxMappings = 256
)

// sample is what one interval of one function (or of the node) shows.
// Counts are of the interval; durations are milliseconds, NaN when the
// interval had no invocation (or no cold start); gauges are as sampled.
type sample struct {
	at                                         int64 // unix milliseconds
	invocations, errors, throttles, coldStarts float32
	durationP50, durationP99                   float32
	initP50, initMax                           float32
	concurrent, busy, warm, frozen             float32
	asyncDepth, asyncAge                       float32
}

// ring is a series: the last SampleCount samples.
type ring struct {
	samples    [SampleCount]sample
	next, size int
	lastActive int64 // when it last had an invocation, throttle or environment
}

func (r *ring) add(s sample) {
	r.samples[r.next] = s
	r.next = (r.next + 1) % SampleCount
	r.size = min(r.size+1, SampleCount)
}

// cumulative is what a function's counters and histograms stood at when last
// sampled.
type cumulative struct {
	invocations, errors, throttles, coldStarts float64
	duration, init                             histogram
}

// histogram is a cumulative Prometheus histogram: upper bounds and counts.
type histogram struct {
	bounds []float64
	counts []uint64 // cumulative, as Prometheus keeps them
	total  uint64
}

// Sampler keeps recent samples of the node's metrics, per function and for
// the node, read from the same registry /metrics serves: the console's
// charts show the figures Prometheus would, without Prometheus.
type Sampler struct {
	gatherer prometheus.Gatherer
	interval time.Duration

	mu        sync.Mutex
	functions map[string]*ring
	node      ring
	last      map[string]*cumulative
	mappings  map[string]*lagRing
}

// lagSample is a mapping's lag in one interval, in seconds; NaN when this
// node did not poll it.
type lagSample struct {
	at  int64
	lag float32
}

// lagRing is a mapping's lag series: the last SampleCount samples.
type lagRing struct {
	samples    [SampleCount]lagSample
	next, size int
	lastPolled int64
}

func (r *lagRing) add(s lagSample) {
	r.samples[r.next] = s
	r.next = (r.next + 1) % SampleCount
	r.size = min(r.size+1, SampleCount)
}

// NewSampler returns a sampler of gatherer every interval (zero means
// DefaultSampleInterval). Run samples.
func NewSampler(gatherer prometheus.Gatherer, interval time.Duration) *Sampler {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	return &Sampler{gatherer: gatherer, interval: interval, functions: map[string]*ring{}, last: map[string]*cumulative{},
		mappings: map[string]*lagRing{}}
}

// Run samples every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// reading is one function's figures in one gathering.
type reading struct {
	cumulative
	concurrent, busy, warm, frozen, asyncDepth, asyncAge float64
}

// Sample gathers the metrics once and adds a sample to every series.
func (s *Sampler) Sample(now time.Time) {
	families, _ := s.gatherer.Gather() // a failing collector leaves its figures out
	readings := map[string]*reading{}
	lags := map[string]float64{} // by mapping
	get := func(m *dto.Metric) *reading {
		fn := label(m, "function")
		r := readings[fn]
		if r == nil {
			r = &reading{}
			readings[fn] = r
		}
		return r
	}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			if label(m, "function") == "" {
				continue
			}
			r := get(m)
			switch fam.GetName() {
			case "lamina_invocations_total":
				r.invocations += m.GetCounter().GetValue()
			case "lamina_invocation_errors_total":
				r.errors += m.GetCounter().GetValue()
			case "lamina_throttles_total":
				r.throttles += m.GetCounter().GetValue()
			case "lamina_cold_starts_total":
				r.coldStarts += m.GetCounter().GetValue()
			case "lamina_invocation_duration_seconds":
				r.duration = histogramOf(m.GetHistogram())
			case "lamina_init_duration_seconds":
				r.init = histogramOf(m.GetHistogram())
			case "lamina_concurrent_executions":
				r.concurrent += m.GetGauge().GetValue()
			case "lamina_environments":
				switch label(m, "state") {
				case "busy":
					r.busy += m.GetGauge().GetValue()
				case "warm":
					r.warm += m.GetGauge().GetValue()
				case "frozen":
					r.frozen += m.GetGauge().GetValue()
				}
			case "lamina_async_queue_depth":
				r.asyncDepth += m.GetGauge().GetValue()
			case "lamina_async_queue_oldest_age_seconds":
				r.asyncAge = max(r.asyncAge, m.GetGauge().GetValue())
			case "lamina_event_source_lag_seconds":
				lags[label(m, "mapping")] = m.GetGauge().GetValue()
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := now.UnixMilli()
	var nodeDelta sample
	var nodeDuration, nodeInit histogram
	nodeDelta.at = at
	names := make([]string, 0, len(readings))
	for fn := range readings {
		names = append(names, fn)
	}
	sort.Strings(names)
	for _, fn := range names {
		r := readings[fn]
		prev := s.last[fn]
		if prev == nil {
			prev = &cumulative{}
		}
		d := sample{
			at:          at,
			invocations: float32(r.invocations - prev.invocations),
			errors:      float32(r.errors - prev.errors),
			throttles:   float32(r.throttles - prev.throttles),
			coldStarts:  float32(r.coldStarts - prev.coldStarts),
			concurrent:  float32(r.concurrent), busy: float32(r.busy), warm: float32(r.warm), frozen: float32(r.frozen),
			asyncDepth: float32(r.asyncDepth), asyncAge: float32(r.asyncAge),
		}
		dur, init := r.duration.minus(prev.duration), r.init.minus(prev.init)
		d.durationP50, d.durationP99 = dur.quantileMs(0.5), dur.quantileMs(0.99)
		d.initP50, d.initMax = init.quantileMs(0.5), init.quantileMs(1)
		cum := r.cumulative
		s.last[fn] = &cum
		nodeDuration = nodeDuration.plus(dur)
		nodeInit = nodeInit.plus(init)
		nodeDelta.invocations += d.invocations
		nodeDelta.errors += d.errors
		nodeDelta.throttles += d.throttles
		nodeDelta.coldStarts += d.coldStarts
		nodeDelta.concurrent += d.concurrent
		nodeDelta.busy += d.busy
		nodeDelta.warm += d.warm
		nodeDelta.frozen += d.frozen
		nodeDelta.asyncDepth += d.asyncDepth
		nodeDelta.asyncAge = max(nodeDelta.asyncAge, d.asyncAge)
		s.ringOf(fn, at, d).add(d)
	}
	nodeDelta.durationP50, nodeDelta.durationP99 = nodeDuration.quantileMs(0.5), nodeDuration.quantileMs(0.99)
	nodeDelta.initP50, nodeDelta.initMax = nodeInit.quantileMs(0.5), nodeInit.quantileMs(1)
	s.node.add(nodeDelta)
	s.sampleLags(at, lags)
}

// sampleLags adds a sample to every mapping's lag series: its lag where
// this node polls it, a gap where it does not.
func (s *Sampler) sampleLags(at int64, lags map[string]float64) {
	for id, lag := range lags {
		r := s.mappings[id]
		if r == nil {
			if len(s.mappings) >= MaxMappings {
				var stalest string
				for other, o := range s.mappings {
					if stalest == "" || o.lastPolled < s.mappings[stalest].lastPolled {
						stalest = other
					}
				}
				delete(s.mappings, stalest)
			}
			r = &lagRing{}
			s.mappings[id] = r
		}
		r.lastPolled = at
		r.add(lagSample{at: at, lag: float32(lag)})
	}
	for id, r := range s.mappings {
		if _, ok := lags[id]; !ok {
			r.add(lagSample{at: at, lag: float32(math.NaN())})
		}
	}
}

// ringOf returns the series of fn, making room for it if needed. A
// function is active in an interval with invocations, throttles or
// environments.
func (s *Sampler) ringOf(fn string, at int64, d sample) *ring {
	r := s.functions[fn]
	if r == nil {
		if len(s.functions) >= MaxFunctions {
			var idlest string
			for name, other := range s.functions {
				if idlest == "" || other.lastActive < s.functions[idlest].lastActive {
					idlest = name
				}
			}
			delete(s.functions, idlest)
		}
		r = &ring{}
		s.functions[fn] = r
	}
	if d.invocations > 0 || d.throttles > 0 || d.busy+d.warm+d.frozen > 0 || d.asyncDepth > 0 {
		r.lastActive = at
	}
	return r
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func histogramOf(h *dto.Histogram) histogram {
	out := histogram{total: h.GetSampleCount()}
	for _, b := range h.GetBucket() {
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.counts = append(out.counts, b.GetCumulativeCount())
	}
	return out
}

// minus returns the observations of h that prev did not have yet.
func (h histogram) minus(prev histogram) histogram {
	if len(prev.counts) != len(h.counts) {
		return h
	}
	out := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts)), total: h.total - prev.total}
	for i := range h.counts {
		out.counts[i] = h.counts[i] - prev.counts[i]
	}
	return out
}

// plus returns the observations of both; histograms of the same metric have
// the same bounds.
func (h histogram) plus(o histogram) histogram {
	if len(h.counts) == 0 {
		return histogram{bounds: o.bounds, counts: append([]uint64(nil), o.counts...), total: o.total}
	}
	if len(o.counts) != len(h.counts) {
		return h
	}
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.total += o.total
	return h
}

// quantileMs estimates the q-quantile in milliseconds as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in; beyond
// the last bound, that bound. NaN when there are no observations.
func (h histogram) quantileMs(q float64) float32 {
	if h.total == 0 {
		return float32(math.NaN())
	}
	rank := q * float64(h.total)
	lower, below := 0.0, uint64(0)
	for i, bound := range h.bounds {
		if float64(h.counts[i]) >= rank {
			inBucket := h.counts[i] - below
			if inBucket == 0 {
				return float32(bound * 1000)
			}
			v := lower + (bound-lower)*(rank-float64(below))/float64(inBucket)
			return float32(v * 1000)
		}
		lower, below = bound, h.counts[i]
	}
	if len(h.bounds) == 0 {
		return float32(math.NaN())
	}
	return float32(h.bounds[len(h.bounds)-1] * 1000)
}

// Series is a series of samples as columns, oldest first, for the charts.
// Null entries (NaN in memory) are intervals without a figure.
type Series struct {
	// IntervalSeconds is the time between samples.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// Time is each sample's time, unix seconds.
	Time        []float64  `json:"time"`
	Invocations []*float32 `json:"invocations"`
	Errors      []*float32 `json:"errors"`
	Throttles   []*float32 `json:"throttles"`
	ColdStarts  []*float32 `json:"coldStarts"`
	DurationP50 []*float32 `json:"durationP50"`
	DurationP99 []*float32 `json:"durationP99"`
	InitP50     []*float32 `json:"initP50"`
	InitMax     []*float32 `json:"initMax"`
	Concurrent  []*float32 `json:"concurrent"`
	Busy        []*float32 `json:"busy"`
	Warm        []*float32 `json:"warm"`
	Frozen      []*float32 `json:"frozen"`
	AsyncDepth  []*float32 `json:"asyncDepth"`
	AsyncAge    []*float32 `json:"asyncAge"`
}

// LagSeries is a mapping's lag samples as columns, oldest first.
type LagSeries struct {
	// IntervalSeconds is the time between samples.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// Time is each sample's time, unix seconds.
	Time []float64 `json:"time"`
	// Lag is the mapping's lag in seconds; null where this node did not
	// poll it.
	Lag []*float32 `json:"lag"`
}

// MappingLag returns the lag samples of an event source mapping (by
// UUID); a mapping this node has not polled has an empty series.
func (s *Sampler) MappingLag(mapping string) LagSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := LagSeries{IntervalSeconds: s.interval.Seconds()}
	r := s.mappings[mapping]
	if r == nil {
		return out
	}
	start := (r.next - r.size + SampleCount) % SampleCount
	for i := range r.size {
		smp := r.samples[(start+i)%SampleCount]
		out.Time = append(out.Time, float64(smp.at)/1000)
		out.Lag = append(out.Lag, nullable(smp.lag))
	}
	return out
}

// nullable is v, or nil for NaN (an interval without a figure).
func nullable(v float32) *float32 {
	if math.IsNaN(float64(v)) {
		return nil
	}
	return &v
}

// Series returns the samples of function, or of the node when function is
// empty; a function without samples has an empty series.
func (s *Sampler) Series(function string) Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Series{IntervalSeconds: s.interval.Seconds()}
	r := &s.node
	if function != "" {
		if r = s.functions[function]; r == nil {
			return out
		}
	}
	value := nullable
	start := (r.next - r.size + SampleCount) % SampleCount
	for i := range r.size {
		smp := r.samples[(start+i)%SampleCount]
		out.Time = append(out.Time, float64(smp.at)/1000)
		out.Invocations = append(out.Invocations, value(smp.invocations))
		out.Errors = append(out.Errors, value(smp.errors))
		out.Throttles = append(out.Throttles, value(smp.throttles))
		out.ColdStarts = append(out.ColdStarts, value(smp.coldStarts))
		out.DurationP50 = append(out.DurationP50, value(smp.durationP50))
		out.DurationP99 = append(out.DurationP99, value(smp.durationP99))
		out.InitP50 = append(out.InitP50, value(smp.initP50))
		out.InitMax = append(out.InitMax, value(smp.initMax))
		out.Concurrent = append(out.Concurrent, value(smp.concurrent))
		out.Busy = append(out.Busy, value(smp.busy))
		out.Warm = append(out.Warm, value(smp.warm))
		out.Frozen = append(out.Frozen, value(smp.frozen))
		out.AsyncDepth = append(out.AsyncDepth, value(smp.asyncDepth))
		out.AsyncAge = append(out.AsyncAge, value(smp.asyncAge))
	}
	return out
}
