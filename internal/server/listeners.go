package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/lamina-project/lamina/internal/netlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// Limits bound what network clients can make the node hold on its API and
// function URL listeners. Zero fields take the Default values; the
// connection caps' defaults come from the file descriptor budget.
type Limits struct {
	MaxConns           int           // API listener: connections open at once
	MaxConnsPerAddr    int           // API listener: connections open at once from one client address
	URLMaxConns        int           // URL listener: connections open at once
	URLMaxConnsPerAddr int           // URL listener: from one client address
	HeaderTimeout      time.Duration // to receive a request's headers
	KeepAliveTimeout   time.Duration // an idle keep-alive connection is closed after this
	MaxHeaderBytes     int           // request line and headers
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second on average after HeaderTimeout.
	MinBodyRate     int64
	APIBodyBudgetMB int // request bodies held in memory at once by the API
	URLBodyBudgetMB int // request bodies held in memory at once by the URL listener
}

// Defaults of Limits.
const (
	DefaultHeaderTimeout    = 10 * time.Second
	DefaultKeepAliveTimeout = 60 * time.Second
	DefaultMaxHeaderBytes   = 64 << 10
	DefaultMinBodyRate      = 64 << 10
	DefaultAPIBodyBudgetMB  = 512
	DefaultURLBodyBudgetMB  = 256
	// DefaultMaxConnsPerAddr is the per-address cap of both listeners,
	// unless a quarter of the overall cap is less.
	DefaultMaxConnsPerAddr = 512
	// maxDefaultConns caps the default overall cap of each listener, for
	// memory: an idle connection costs the server some 10–30 KB.
	maxDefaultConns = 10000
)

// The metrics listener serves a scraper or two: it needs few connections.
const metricsMaxConns = 32

// fdBudget is how the node shares its open-file limit.
type fdBudget struct {
	limit int // RLIMIT_NOFILE, after raising the soft limit to the hard one
	// reserve is kept for everything but client connections: JetStream's
	// files and the store, execution environments (their pipes and Runtime
	// API connections), code archives, logs.
	reserve int
	// connections is what the API and URL listeners may use, besides the
	// answers to refused connections and the metrics listener.
	connections int
}

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit and returns
// it. (Processes the node starts get back the limit it started with: Go
// restores it for them.)
func raiseFDLimit() (int, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("raising the open-file limit to %d: %w", rl.Max, err)
		}
	}
	return int(min(rl.Cur, 1<<30)), nil
}

// planFDs shares limit descriptors: a quarter (at least 1024, at most
// half) is kept in reserve, the answers to refused connections and the
// metrics listener have fixed bounds, and the rest goes to connections.
func planFDs(limit int) fdBudget {
	reserve := max(limit/4, min(limit/2, 1024))
	fixed := 2*netlimit.MaxRefusalsAnswering + metricsMaxConns
	return fdBudget{limit: limit, reserve: reserve, connections: max(limit-reserve-fixed, 0)}
}

// withDefaults fills the zero fields of l; the connection caps share the
// descriptors fds gives connections evenly between the two listeners.
func (l Limits) withDefaults(fds fdBudget) Limits {
	each := max(min(fds.connections/2, maxDefaultConns), 1)
	perAddr := func(overall int) int { return max(min(DefaultMaxConnsPerAddr, overall/4), 1) }
	setDefault(&l.MaxConns, each)
	setDefault(&l.MaxConnsPerAddr, perAddr(l.MaxConns))
	setDefault(&l.URLMaxConns, each)
	setDefault(&l.URLMaxConnsPerAddr, perAddr(l.URLMaxConns))
	setDefault(&l.HeaderTimeout, DefaultHeaderTimeout)
	setDefault(&l.KeepAliveTimeout, DefaultKeepAliveTimeout)
	setDefault(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&l.MinBodyRate, DefaultMinBodyRate)
	setDefault(&l.APIBodyBudgetMB, DefaultAPIBodyBudgetMB)
	setDefault(&l.URLBodyBudgetMB, DefaultURLBodyBudgetMB)
	return l
}

// check refuses negative limits, naming their flags.
func (l Limits) check() error {
	for _, v := range []struct {
		flag  string
		value int64
	}{
		{"--max-conns", int64(l.MaxConns)}, {"--max-conns-per-addr", int64(l.MaxConnsPerAddr)},
		{"--url-max-conns", int64(l.URLMaxConns)}, {"--url-max-conns-per-addr", int64(l.URLMaxConnsPerAddr)},
		{"--header-timeout", int64(l.HeaderTimeout)}, {"--keepalive-timeout", int64(l.KeepAliveTimeout)},
		{"--max-header-bytes", int64(l.MaxHeaderBytes)}, {"--min-body-rate", l.MinBodyRate},
		{"--api-body-budget", int64(l.APIBodyBudgetMB)}, {"--url-body-budget", int64(l.URLBodyBudgetMB)},
	} {
		if v.value < 0 {
			return fmt.Errorf("%s must not be negative", v.flag)
		}
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// bodies returns the body bounds of a listener with a budget of mb MB.
func (l Limits) bodies(mb int, m *netlimit.ListenerMetrics) *netlimit.Bodies {
	return netlimit.NewBodies(int64(mb)<<20, netlimit.MinRate{Grace: l.HeaderTimeout, BytesPerSecond: l.MinBodyRate}, m)
}

// httpServer returns the server of one listener: deadlines for headers
// and idle connections, and a header size limit. It has no write timeout:
// a synchronous invocation may run for 15 minutes; bodies are bounded by
// the frontend, which reads them.
func (l Limits) httpServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.KeepAliveTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// logBudget logs the limits and how the descriptors are shared, and warns
// when the caps asked for leave the store less than its reserve.
func (l Limits) logBudget(fds fdBudget, log *slog.Logger) {
	log.Info("listener limits", "open_files", fds.limit, "open_files_reserve", fds.reserve,
		"api_max_conns", l.MaxConns, "api_max_conns_per_addr", l.MaxConnsPerAddr,
		"url_max_conns", l.URLMaxConns, "url_max_conns_per_addr", l.URLMaxConnsPerAddr,
		"api_body_budget_mb", l.APIBodyBudgetMB, "url_body_budget_mb", l.URLBodyBudgetMB)
	if l.MaxConns+l.URLMaxConns > fds.connections {
		log.Warn("the connection caps exceed what the open-file limit leaves for connections; a flood of connections could starve the store of descriptors",
			"caps", l.MaxConns+l.URLMaxConns, "available", fds.connections)
	}
}

// serveMetrics serves plain GET /metrics from reg on ln, for Prometheus,
// until the returned server is shut down.
func serveMetrics(ln net.Listener, reg *prometheus.Registry, l Limits, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := l.httpServer(mux, log)
	go func() {
		if err := srv.Serve(netlimit.NewListener(ln, netlimit.Limits{MaxConns: metricsMaxConns}, nil, nil)); err != nil && err != http.ErrServerClosed {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return srv
}
