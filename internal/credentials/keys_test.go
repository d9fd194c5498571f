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

// An assumed role's credentials have the admin's scope and no environment:
// they are accepted while they last, whatever environments live, and reach
// every operation; a function's credentials keep their scope.
func TestAssumedRoleSession(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	issuer := &Issuer{key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	keys := &Keys{Admin: Pair{AccessKeyID: "LKIAADMIN", SecretAccessKey: "admin-secret"}, Issuer: issuer,
		Live: func(string) bool { return false }}
	tmp := issuer.IssueAssumed("arn:aws:iam::000000000000:role/cdk-deploy", "cdk-session", time.Hour)
	if !tmp.Expiration.Equal(now.Add(time.Hour)) {
		t.Errorf("Expiration = %v, want an hour from now", tmp.Expiration)
	}
	k, err := keys.Lookup(tmp.AccessKeyID, tmp.SessionToken)
	s, ok := k.Identity.(*Session)
	if err != nil || !ok || !s.Assumed || s.Function != "cdk-session" || k.Secret != tmp.SecretAccessKey {
		t.Fatalf("the assumed role's credentials: %+v, %v", k, err)
	}
	if !Allows(s, "cloudformation", "CreateChangeSet") || !Allows(s, "lambda", "CreateFunction") {
		t.Error("an assumed role's session lacks the admin's scope")
	}
	if got := s.AssumedRoleARN("000000000000"); got != "arn:aws:sts::000000000000:assumed-role/cdk-deploy/cdk-session" {
		t.Errorf("AssumedRoleARN = %s", got)
	}
	fn := issuer.Issue(Session{Function: "fn", Environment: "env-1", Assumed: true})
	if _, err := keys.Lookup(fn.AccessKeyID, fn.SessionToken); err == nil {
		t.Error("a function's credentials outlived their environment by claiming to be assumed")
	}
	fs := &Session{Function: "fn", Environment: "env-1"}
	if Allows(fs, "sts", "AssumeRole") || Allows(fs, "cloudformation", "CreateStack") {
		t.Error("a function's credentials reach beyond their scope")
	}
	now = tmp.Expiration
	if _, err := keys.Lookup(tmp.AccessKeyID, tmp.SessionToken); err == nil || *err != *sigv4.ErrExpiredToken() {
		t.Errorf("expired assumed-role credentials: %v", err)
	}
	if long := issuer.IssueAssumed("r", "s", 48*time.Hour); long.Expiration.After(now.Add(SessionLifetime)) {
		t.Errorf("a session longer than %v: %v", SessionLifetime, long.Expiration)
	}
}
