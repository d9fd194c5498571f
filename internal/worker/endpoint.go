package worker

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/credentials"
	"golang.org/x/net/netutil"
)

// The AWS endpoint of an environment: the API, as code in the sandbox
// reaches it. As Lambda gives each environment the session of the
// function's execution role, the worker gives each environment temporary
// credentials of its own (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), valid while the environment lives and at most
// credentials.SessionLifetime, and AWS_ENDPOINT_URL: a listener the
// sandbox opened on its own loopback, beside the Runtime API, which the
// worker serves with the API's handler in process. Nothing else of the
// host is reachable from the sandbox. The SDKs sign with the credentials
// and the API verifies them as any other, with the scope of functions'
// credentials (credentials.Allows).
//
// Everything in the sandbox can reach the endpoint, so it is bounded as
// the Runtime API is: connections served at once per environment (more
// wait in a listen backlog, and past it the kernel drops their SYNs),
// headers' size and time, idle connections. Bodies are the API's: it reads
// them within its own limits, body budget and minimum rate.

// Bounds of one environment's AWS endpoint.
var endpointLimits = apiLimits{
	// An SDK keeps a pool of connections (boto3 10, s3transfer 10 threads);
	// more than this wait in the backlog until one closes.
	maxConns: 32,
	backlog:  32,
	// The API sets the deadlines of bodies (its minimum rate): only the
	// headers have one here.
	headerTimeout: 10 * time.Second,
	// Short, so that the idle connections of a pool give way soon to
	// connections waiting in the backlog.
	idleTimeout:    10 * time.Second,
	maxHeaderBytes: 64 << 10,
}

// credentialsMargin is how long before its credentials expire an
// environment stops taking invocations: longer than the longest
// invocation (15 minutes), so that none outlives them.
const credentialsMargin = 20 * time.Minute

// Endpoint is what environments' AWS endpoints need.
type Endpoint struct {
	// Credentials issues each environment's temporary credentials.
	Credentials *credentials.Issuer
	// API is the handler of the API the endpoints serve in process.
	API http.Handler
}

// sessions are the environments whose credentials are valid: each from
// just before its runtime starts until it is destroyed.
type sessions struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

func (s *sessions) add(id string) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	s.ids[id] = struct{}{}
	s.mu.Unlock()
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

func (s *sessions) live(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.ids[id]
	return ok
}

// Live reports whether the environment with ID id exists on this worker,
// so that its temporary credentials are still valid.
func (w *Worker) Live(id string) bool { return w.sessions.live(id) }

// openEndpoint issues env's credentials and serves its AWS endpoint. It
// returns the variables that tell the runtime about them; none when the
// worker has no endpoint to give. env.destroy ends both.
func (w *Worker) openEndpoint(env *environment) ([]string, error) {
	e := w.cfg.Endpoint
	if e == nil {
		return nil, nil
	}
	c := &env.fn.Configuration
	tmp := e.Credentials.Issue(credentials.Session{Function: c.FunctionName, Role: c.Role, Environment: env.id})
	ln, addr := env.sb.Endpoint()
	if err := setBacklog(ln, endpointLimits.backlog); err != nil {
		return nil, err
	}
	w.sessions.add(env.id)
	srv := &http.Server{
		Handler:           e.API,
		ReadHeaderTimeout: endpointLimits.headerTimeout,
		IdleTimeout:       endpointLimits.idleTimeout,
		MaxHeaderBytes:    endpointLimits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(netutil.LimitListener(ln, endpointLimits.maxConns))
	env.endpoint, env.retireBy = srv, tmp.Expiration.Add(-credentialsMargin)
	env.endSession = func() { w.sessions.remove(env.id) }
	vars := []string{
		"AWS_ACCESS_KEY_ID=" + tmp.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + tmp.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + tmp.SessionToken,
	}
	// The function may aim its SDKs elsewhere itself.
	own := false
	if c.Environment != nil {
		_, own = c.Environment.Variables["AWS_ENDPOINT_URL"]
	}
	if !own {
		vars = append(vars, "AWS_ENDPOINT_URL=http://"+addr)
	}
	return vars, nil
}

// credentialsEnding reports whether env's credentials expire too soon
// for another invocation.
func (env *environment) credentialsEnding(now time.Time) bool {
	return !env.retireBy.IsZero() && now.After(env.retireBy)
}

// closeEndpoint stops env's AWS endpoint and ends its credentials.
func (env *environment) closeEndpoint() {
	if env.endpoint != nil {
		env.endpoint.Close()
	}
	if env.endSession != nil {
		env.endSession()
	}
}
