package credentials

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Temporary credentials of functions. Every execution environment gets its
// own, as Lambda gives each the session of the function's execution role:
// an access key ID starting with "ASIA", a secret access key and a session
// token, which expire. They are stateless: the session token carries the
// session (function, role, environment, expiry) with a MAC of the issuer's
// key, and the secret is derived from the access key ID with that key, so
// any node holding the key verifies them without a lookup. Whether the
// environment still lives is the caller's to check (Session.Environment).

// SessionLifetime is how long temporary credentials are valid: the longest
// session STS gives a role (12 hours). An environment is retired before
// its credentials expire.
const SessionLifetime = 12 * time.Hour

// Session is who temporary credentials belong to: a function's execution
// environment, or a caller of STS AssumeRole.
type Session struct {
	AccessKeyID string
	// Function is the name of the function whose environment holds them,
	// and Role its execution role's ARN; for an assumed role, Function is
	// the role session's name.
	Function string
	Role     string
	// Environment is the ID of the execution environment they were issued
	// to; empty for an assumed role.
	Environment string
	// Assumed marks the credentials STS AssumeRole gave an admin caller
	// (see IssueAssumed): they have the admin's scope, and no environment.
	Assumed bool
	Expires time.Time
}

// Temporary is a set of temporary credentials, as the SDKs take them from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
type Temporary struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Errors of Issuer.Verify.
var (
	// ErrInvalidToken: the token is not one the issuer made for the access
	// key.
	ErrInvalidToken = errors.New("credentials: invalid session token")
	// ErrExpired: the session has expired.
	ErrExpired = errors.New("credentials: session expired")
)

// Issuer issues temporary credentials and verifies them, with a key that
// every node of a deployment shares. It is safe for concurrent use.
type Issuer struct {
	key []byte
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// NewIssuer returns an issuer that signs with key (32 random bytes).
func NewIssuer(key []byte) *Issuer { return &Issuer{key: key} }

// tokenPrefix starts every session token: its format's version.
const tokenPrefix = "LAMINA1."

// sessionClaims is what a session token carries.
type sessionClaims struct {
	AccessKeyID string `json:"k"`
	Function    string `json:"f"`
	Role        string `json:"r"`
	Environment string `json:"e"`
	Assumed     bool   `json:"a,omitempty"`
	Expires     int64  `json:"x"` // Unix seconds
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Issue returns new temporary credentials of a function's environment s
// (whose AccessKeyID and Expires it sets), valid for SessionLifetime.
func (i *Issuer) Issue(s Session) Temporary {
	s.Assumed = false
	return i.issue(s, SessionLifetime)
}

// IssueAssumed returns new temporary credentials of role session
// sessionName of role, valid for lifetime (at most SessionLifetime), as STS
// AssumeRole gives them. Lamina has no IAM: a role only names the session,
// and the credentials have the scope of the admin key pair that asked for
// them (only the admin may call AssumeRole).
func (i *Issuer) IssueAssumed(role, sessionName string, lifetime time.Duration) Temporary {
	return i.issue(Session{Function: sessionName, Role: role, Assumed: true}, min(lifetime, SessionLifetime))
}

func (i *Issuer) issue(s Session, lifetime time.Duration) Temporary {
	s.AccessKeyID = "ASIA" + rand.Text()[:16]
	s.Expires = i.now().Add(lifetime).Truncate(time.Second)
	claims, _ := json.Marshal(sessionClaims{AccessKeyID: s.AccessKeyID, Function: s.Function, Role: s.Role,
		Environment: s.Environment, Assumed: s.Assumed, Expires: s.Expires.Unix()})
	payload := base64.RawURLEncoding.EncodeToString(claims)
	token := tokenPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(i.mac("token", payload))
	return Temporary{AccessKeyID: s.AccessKeyID, SecretAccessKey: i.secret(s.AccessKeyID), SessionToken: token, Expiration: s.Expires}
}

// Verify returns the session of a session token presented with
// accessKeyID, and the secret of the key; ErrInvalidToken when the token
// is not the issuer's for that key, ErrExpired when it is but has
// expired.
func (i *Issuer) Verify(accessKeyID, token string) (*Session, string, error) {
	body, ok := strings.CutPrefix(token, tokenPrefix)
	payload, mac, found := strings.Cut(body, ".")
	if !ok || !found {
		return nil, "", ErrInvalidToken
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, i.mac("token", payload)) {
		return nil, "", ErrInvalidToken
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	var c sessionClaims
	if err != nil || json.Unmarshal(data, &c) != nil || c.AccessKeyID != accessKeyID {
		return nil, "", ErrInvalidToken
	}
	s := &Session{AccessKeyID: c.AccessKeyID, Function: c.Function, Role: c.Role, Environment: c.Environment,
		Assumed: c.Assumed, Expires: time.Unix(c.Expires, 0)}
	if !i.now().Before(s.Expires) {
		return s, "", ErrExpired
	}
	return s, i.secret(accessKeyID), nil
}

// secret derives the secret access key of an access key ID: 40
// characters, as AWS's.
func (i *Issuer) secret(accessKeyID string) string {
	return base64.StdEncoding.EncodeToString(i.mac("secret", accessKeyID))[:40]
}

// mac is the HMAC-SHA256 of data under the issuer's key, for one purpose.
func (i *Issuer) mac(purpose, data string) []byte {
	h := hmac.New(sha256.New, i.key)
	h.Write([]byte(purpose + "\x00" + data))
	return h.Sum(nil)
}

// AssumedRoleARN is the ARN the caller with temporary credentials of s has,
// as Lambda's execution role sessions are named after the function:
// arn:aws:sts::<account>:assumed-role/<role name>/<function>.
func (s *Session) AssumedRoleARN(accountID string) string {
	role := s.Role[strings.LastIndex(s.Role, "/")+1:]
	return "arn:aws:sts::" + accountID + ":assumed-role/" + role + "/" + s.Function
}
