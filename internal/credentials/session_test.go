package credentials

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSessionCredentials(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	issuer := &Issuer{key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	tmp := issuer.Issue(Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/lambda-role", Environment: "env-1"})

	if !regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`).MatchString(tmp.AccessKeyID) || len(tmp.SecretAccessKey) != 40 || tmp.SessionToken == "" {
		t.Fatalf("credentials %+v are not shaped like AWS's", tmp)
	}
	if !tmp.Expiration.Equal(now.Add(SessionLifetime)) {
		t.Errorf("expiration %v, want %v", tmp.Expiration, now.Add(SessionLifetime))
	}
	s, secret, err := issuer.Verify(tmp.AccessKeyID, tmp.SessionToken)
	if err != nil || secret != tmp.SecretAccessKey {
		t.Fatalf("Verify = %+v, %q, %v", s, secret, err)
	}
	if s.Function != "fn" || s.Environment != "env-1" || s.AccessKeyID != tmp.AccessKeyID || !s.Expires.Equal(tmp.Expiration) {
		t.Errorf("session %+v", s)
	}
	if got := s.AssumedRoleARN("000000000000"); got != "arn:aws:sts::000000000000:assumed-role/lambda-role/fn" {
		t.Errorf("AssumedRoleARN = %s", got)
	}

	// Another issue has another key and secret.
	other := issuer.Issue(Session{Function: "fn", Environment: "env-1"})
	if other.AccessKeyID == tmp.AccessKeyID || other.SecretAccessKey == tmp.SecretAccessKey {
		t.Error("two issues gave the same key")
	}
	refused := []struct {
		name, key, token string
	}{
		{"another key's token", other.AccessKeyID, tmp.SessionToken},
		{"no token", tmp.AccessKeyID, ""},
		{"a forged payload", tmp.AccessKeyID, strings.Replace(tmp.SessionToken, ".", ".x", 1)},
		{"a forged MAC", tmp.AccessKeyID, tmp.SessionToken[:len(tmp.SessionToken)-2] + "AA"},
		{"garbage", tmp.AccessKeyID, "FQoGZXIvYXdz"},
	}
	for _, r := range refused {
		if _, _, err := issuer.Verify(r.key, r.token); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", r.name, err)
		}
	}
	// A token of another issuer (another cluster's key).
	stranger := NewIssuer([]byte("another key of thirty-two bytes!"))
	if _, _, err := stranger.Verify(tmp.AccessKeyID, tmp.SessionToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("another issuer's token: %v, want ErrInvalidToken", err)
	}

	// Expired at the expiration, not a second before.
	now = tmp.Expiration.Add(-time.Second)
	if _, _, err := issuer.Verify(tmp.AccessKeyID, tmp.SessionToken); err != nil {
		t.Errorf("a second before expiring: %v", err)
	}
	now = tmp.Expiration
	if s, _, err := issuer.Verify(tmp.AccessKeyID, tmp.SessionToken); !errors.Is(err, ErrExpired) || s == nil {
		t.Errorf("at expiration: %v, %v; want ErrExpired with the session", s, err)
	}
}

// BenchmarkIssue: what an environment's start spends on its credentials.
func BenchmarkIssue(b *testing.B) {
	issuer := NewIssuer([]byte("0123456789abcdef0123456789abcdef"))
	for b.Loop() {
		issuer.Issue(Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/lambda-role", Environment: "env-1"})
	}
}

// BenchmarkVerify: what each request signed with a function's credentials
// spends on its session token, beside SigV4.
func BenchmarkVerify(b *testing.B) {
	issuer := NewIssuer([]byte("0123456789abcdef0123456789abcdef"))
	tmp := issuer.Issue(Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/lambda-role", Environment: "env-1"})
	for b.Loop() {
		if _, _, err := issuer.Verify(tmp.AccessKeyID, tmp.SessionToken); err != nil {
			b.Fatal(err)
		}
	}
}
