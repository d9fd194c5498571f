package credentials

import (
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/sigv4"
)

// The API accepts the admin key without a token, and temporary credentials
// that the issuer made, that have not expired and whose environment lives;
// it refuses everything else with AWS's error.
func TestKeysLookup(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	issuer := &Issuer{key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	live := map[string]bool{"env-1": true}
	keys := &Keys{Admin: Pair{AccessKeyID: "LKIAADMIN", SecretAccessKey: "admin-secret"}, Issuer: issuer,
		Live: func(id string) bool { return live[id] }}
	tmp := issuer.Issue(Session{Function: "fn", Role: "arn:aws:iam::000000000000:role/r", Environment: "env-1"})

	if k, err := keys.Lookup("LKIAADMIN", ""); err != nil || k.Secret != "admin-secret" || k.Identity != nil {
		t.Errorf("the admin key: %+v, %v", k, err)
	}
	k, err := keys.Lookup(tmp.AccessKeyID, tmp.SessionToken)
	if s, ok := k.Identity.(*Session); err != nil || k.Secret != tmp.SecretAccessKey || !ok || s.Function != "fn" {
		t.Errorf("the environment's credentials: %+v, %v", k, err)
	}

	unrecognized, expired := sigv4.ErrUnrecognizedClient(), sigv4.ErrExpiredToken()
	check := func(name, key, token string, want *sigv4.Error) {
		t.Helper()
		if _, err := keys.Lookup(key, token); err == nil || *err != *want {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	check("an unknown key", "AKIAUNKNOWN", "", unrecognized)
	check("a session key without its token", tmp.AccessKeyID, "", unrecognized)
	check("the admin key with a token", "LKIAADMIN", tmp.SessionToken, unrecognized)
	check("a forged token", tmp.AccessKeyID, tmp.SessionToken[:len(tmp.SessionToken)-2]+"AA", unrecognized)
	check("a token of another issuer", tmp.AccessKeyID,
		NewIssuer([]byte("another key of thirty-two bytes!")).Issue(Session{Environment: "env-1"}).SessionToken, unrecognized)

	delete(live, "env-1")
	check("the credentials of an environment that is gone", tmp.AccessKeyID, tmp.SessionToken, expired)
	live["env-1"] = true
	now = tmp.Expiration
	check("expired credentials", tmp.AccessKeyID, tmp.SessionToken, expired)
}
