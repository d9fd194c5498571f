package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Bounds of the console's sessions.
const (
	// maxSessions bounds the sessions a node keeps; signing in past it ends
	// the session used least recently.
	maxSessions = 1024
	// sessionIdle ends a session unused this long.
	sessionIdle = time.Hour
	// sessionLifetime ends a session this long after sign-in, used or not.
	sessionLifetime = 12 * time.Hour
)

// cookieName is the console's session cookie. Its value is the session's
// secret identifier; it is HttpOnly (script cannot read it), SameSite=Strict
// (no other site's page can make the browser send it) and limited to the
// console's path.
const cookieName = "lamina_console"

// csrfHeader carries a session's CSRF token on every console API request.
// The token is handed out only in JSON answers to this origin, which another
// site's page cannot read.
const csrfHeader = "X-Csrf-Token"

// session is one signed-in browser.
type session struct {
	keyID    string // the access key it signed in with
	csrf     string // its CSRF token
	created  time.Time
	lastSeen time.Time
	streams  int // change streams open
}

// sessions are the signed-in browsers of this node, in memory: a restart
// signs everyone out, and in a cluster a session is good on the node that
// made it only.
type sessions struct {
	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session // by the hash of the cookie's value
	now  func() time.Time
}

func newSessions() *sessions {
	return &sessions{byID: map[[sha256.Size]byte]*session{}, now: time.Now}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for keyID and returns the cookie's value.
func (s *sessions) create(keyID string) (id string, sess *session) {
	id = randomToken()
	now := s.now()
	sess = &session{keyID: keyID, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if len(s.byID) >= maxSessions {
		var oldest [sha256.Size]byte
		var oldestSeen time.Time
		for h, other := range s.byID {
			if oldestSeen.IsZero() || other.lastSeen.Before(oldestSeen) {
				oldest, oldestSeen = h, other.lastSeen
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// expireLocked drops ended sessions. The caller holds s.mu.
func (s *sessions) expireLocked(now time.Time) {
	for h, sess := range s.byID {
		if s.ended(sess, now) {
			delete(s.byID, h)
		}
	}
}

func (s *sessions) ended(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) > sessionIdle || now.Sub(sess.created) > sessionLifetime
}

// lookup returns the live session of the request's cookie, marking it used,
// or nil.
func (s *sessions) lookup(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	h := sha256.Sum256([]byte(c.Value))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.byID[h]
	if sess == nil {
		return nil
	}
	if s.ended(sess, now) {
		delete(s.byID, h)
		return nil
	}
	sess.lastSeen = now
	return sess
}

// alive reports whether sess has not ended nor been signed out.
func (s *sessions) alive(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.byID {
		if other == sess {
			return !s.ended(sess, s.now())
		}
	}
	return false
}

// remove ends the session of the request's cookie.
func (s *sessions) remove(r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.mu.Lock()
		delete(s.byID, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
}

// openStream counts a change stream of sess in, unless it has
// maxStreamsPerSession already.
func (s *sessions) openStream(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.streams >= maxStreamsPerSession {
		return false
	}
	sess.streams++
	return true
}

func (s *sessions) closeStream(sess *session) {
	s.mu.Lock()
	sess.streams--
	s.mu.Unlock()
}

// validCSRF reports whether the request carries sess's CSRF token.
func validCSRF(r *http.Request, sess *session) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

// sameOrigin reports whether the request comes from a page of the console's
// own origin, as far as the browser says: a cross-site Sec-Fetch-Site, or an
// Origin other than the request's own host, is refused. Requests that carry
// neither (non-browser clients) pass; they still need the cookie and the
// CSRF token.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return origin == scheme+r.Host
}

// sessionCookie returns the cookie that carries id (an empty id and a
// negative MaxAge delete it).
func sessionCookie(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: cookieName, Value: id, Path: pathPrefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	}
}
