// Package console serves Lamina's web console: a single-page application
// for people, embedded in the binary and served by `lamina server` under
// /console/ on the API listener.
//
// The browser signs in with an access key pair, the same pairs the API
// accepts, and gets a session (an HttpOnly, SameSite=Strict cookie) and a
// CSRF token that every later request carries in a header. The console's
// backend adds nothing to the API: a call of the browser to
// /console/api/aws/SERVICE/PATH is signed with SigV4 for the session's key
// and served by the API's own handler, so the console sees exactly what the
// API shows, with its validation, limits and error shapes. Besides that it
// serves a stream of the store's changes (so lists update live) and the
// recent samples of the node's metrics (Sampler), which feed its charts.
//
// Every page is served with a Content-Security-Policy that allows scripts,
// styles and connections to the console's own origin only (no inline
// script), and forbids framing.
package console

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
)

// pathPrefix is where the console is served.
const pathPrefix = "/console/"

// contentSecurityPolicy lets the console's pages load and reach only their
// own origin, run no inline script, and never be framed.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

//go:embed assets
var assets embed.FS

// Changes reports changes of function records (*store.Store).
type Changes interface {
	OnFunctionChange(f func(function, version string))
}

// Config is what a console needs.
type Config struct {
	// API serves the Lambda, Logs and EventBridge APIs (the frontend's
	// handler); every call of the console goes through it.
	API http.Handler
	// Region is what the console signs its calls to the API for.
	Region string
	// AccountID is the account the API's ARNs name.
	AccountID string
	// Credentials returns the secret of an access key ID, or false when the
	// key is unknown: the same lookup the API's SigV4 uses.
	Credentials func(accessKeyID string) (secret string, ok bool)
	// Changes, when set, feeds the live updates of the console's lists.
	Changes Changes
	// Sampler holds the recent metrics the charts show; nil shows none.
	Sampler *Sampler
	// Node is this node's name, shown in the console.
	Node   string
	Logger *slog.Logger
}

// Console is the web console of one node. Create it with New, serve
// Handler under /console/, and call Close at shutdown to end its streams.
type Console struct {
	cfg      Config
	sessions *sessions
	hub      *hub
	static   http.Handler
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns a console.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	c := &Console{
		cfg:      cfg,
		sessions: newSessions(),
		hub:      newHub(),
		static:   http.StripPrefix(pathPrefix, http.FileServerFS(sub)),
		log:      cfg.Logger.With("part", "console"),
		mux:      http.NewServeMux(),
	}
	if cfg.Changes != nil {
		cfg.Changes.OnFunctionChange(c.hub.publish)
	}
	c.mux.HandleFunc("POST /console/api/session", c.signIn)
	c.mux.HandleFunc("GET /console/api/session", c.signedIn(c.whoAmI))
	c.mux.HandleFunc("DELETE /console/api/session", c.signedIn(c.signOut))
	c.mux.HandleFunc("GET /console/api/changes", c.signedIn(c.changes))
	c.mux.HandleFunc("GET /console/api/metrics", c.signedIn(c.metrics))
	c.mux.HandleFunc("/console/api/aws/{service}/{path...}", c.signedIn(c.proxy))
	c.mux.HandleFunc("/console/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &lamina.Error{Status: http.StatusNotFound, Code: "UnknownOperationException", Message: "No console operation at " + r.URL.Path + "."})
	})
	c.mux.HandleFunc("/console/", c.serveStatic)
	c.mux.HandleFunc("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, pathPrefix, http.StatusMovedPermanently)
	})
	return c
}

// Handler serves the console: mount it at /console/ (and /console).
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		c.mux.ServeHTTP(w, r)
	})
}

// Close ends the change streams, so that the listener can shut down.
func (c *Console) Close() { c.hub.close() }

// setSecurityHeaders sets what every answer of the console carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// serveStatic serves the embedded application; every path that is not a
// file is the application's index page.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &lamina.Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowedException", Type: "User",
			Message: "The console's pages are read with GET."})
		return
	}
	name := strings.TrimPrefix(r.URL.Path, pathPrefix)
	if name != "" {
		if f, err := fs.Stat(assets, "assets/"+name); err == nil && !f.IsDir() {
			c.static.ServeHTTP(w, r)
			return
		}
	}
	index, _ := assets.ReadFile("assets/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(index)
}

// writeError answers with err in the shape of the API's errors: its status,
// X-Amzn-ErrorType, and a JSON body with Type and the message.
func writeError(w http.ResponseWriter, err *lamina.Error) {
	body := map[string]string{err.MessageKey(): err.Message}
	if err.Type != "" {
		body["Type"] = err.Type
	}
	data, _ := json.Marshal(body)
	w.Header().Set("X-Amzn-ErrorType", err.Code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Status)
	_, _ = w.Write(data)
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, lamina.ErrService("The console could not encode its answer."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// Errors of the console's own operations.
var (
	errSignedOut = &lamina.Error{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", Type: "User",
		Message: "Sign in to the console: there is no session, or it has ended."}
	errCSRF = &lamina.Error{Status: http.StatusForbidden, Code: "AccessDeniedException", Type: "User",
		Message: "The request lacks the session's CSRF token, or comes from another site."}
	errBadKeys = &lamina.Error{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", Type: "User",
		Message: "The access key ID or the secret access key is not valid."}
)

// signInBodyLimit bounds the body of a sign-in.
const signInBodyLimit = 4096

// signInRequest is what the sign-in form sends.
type signInRequest struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// sessionInfo is what the browser learns about its session.
type sessionInfo struct {
	AccessKeyID string `json:"accessKeyId"`
	CSRFToken   string `json:"csrfToken"`
	Region      string `json:"region"`
	AccountID   string `json:"accountId"`
	Node        string `json:"node"`
	// SampleSeconds is the interval of the metrics' samples.
	SampleSeconds float64 `json:"sampleSeconds"`
	// Expires is when the session ends at the latest (unix milliseconds).
	Expires int64 `json:"expires"`
}

func (c *Console) info(sess *session) sessionInfo {
	info := sessionInfo{AccessKeyID: sess.keyID, CSRFToken: sess.csrf, Region: c.cfg.Region, AccountID: c.cfg.AccountID, Node: c.cfg.Node,
		Expires: sess.created.Add(sessionLifetime).UnixMilli()}
	if c.cfg.Sampler != nil {
		info.SampleSeconds = c.cfg.Sampler.interval.Seconds()
	}
	return info
}

// signIn checks an access key pair and starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, errCSRF)
		return
	}
	var req signInRequest
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, signInBodyLimit))
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		writeError(w, lamina.ErrInvalidRequestContent("The sign-in must be a JSON object with accessKeyId and secretAccessKey."))
		return
	}
	secret, ok := c.cfg.Credentials(req.AccessKeyID)
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(req.SecretAccessKey)) != 1 {
		c.log.Info("console sign-in refused", "access_key_id", req.AccessKeyID, "remote", r.RemoteAddr)
		writeError(w, errBadKeys)
		return
	}
	id, sess := c.sessions.create(req.AccessKeyID)
	http.SetCookie(w, sessionCookie(r, id, int(sessionLifetime/time.Second)))
	c.log.Info("console sign-in", "access_key_id", req.AccessKeyID, "remote", r.RemoteAddr)
	writeJSON(w, c.info(sess))
}

// signedIn wraps a handler of a signed-in session: the session's cookie,
// its key still valid, the request from this origin and, except for
// reading the session itself, its CSRF token.
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := c.sessions.lookup(r)
		if sess != nil {
			if _, ok := c.cfg.Credentials(sess.keyID); !ok { // the key was removed
				c.sessions.remove(r)
				sess = nil
			}
		}
		if sess == nil {
			writeError(w, errSignedOut)
			return
		}
		readsSession := r.Method == http.MethodGet && r.URL.Path == pathPrefix+"api/session"
		if !sameOrigin(r) || (!readsSession && !validCSRF(r, sess)) {
			writeError(w, errCSRF)
			return
		}
		h(w, r, sess)
	}
}

// whoAmI tells a page loaded into a live session its key and CSRF token.
func (c *Console) whoAmI(w http.ResponseWriter, r *http.Request, sess *session) {
	writeJSON(w, c.info(sess))
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, sess *session) {
	c.sessions.remove(r)
	http.SetCookie(w, sessionCookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
}

// metrics answers the recent samples of a function (?function=NAME), of an
// event source mapping's lag (?mapping=UUID) or of the node.
func (c *Console) metrics(w http.ResponseWriter, r *http.Request, sess *session) {
	mapping := r.URL.Query().Get("mapping")
	switch {
	case c.cfg.Sampler == nil && mapping != "":
		writeJSON(w, LagSeries{})
	case c.cfg.Sampler == nil:
		writeJSON(w, Series{})
	case mapping != "":
		writeJSON(w, c.cfg.Sampler.MappingLag(mapping))
	default:
		writeJSON(w, c.cfg.Sampler.Series(r.URL.Query().Get("function")))
	}
}
