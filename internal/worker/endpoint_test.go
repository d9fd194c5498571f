package worker

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/sandbox/sandboxtest"
)

// processEnv returns the variables the runtime of sb was started with.
func processEnv(sb *sandboxtest.Sandbox) map[string]string {
	vars := map[string]string{}
	for _, kv := range sb.Process().Env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

// TestEnvironmentCredentialsAndEndpoint: each environment gets temporary
// credentials of its own, bound to its function and to itself, and an AWS
// endpoint served with the API's handler; both end with the environment.
func TestEnvironmentCredentialsAndEndpoint(t *testing.T) {
	t.Parallel()
	issuer := credentials.NewIssuer([]byte("worker-test-key-0123456789abcdef"))
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the API answers "+r.URL.Path)
	})
	tw := newTestWorker(t, Config{Endpoint: &Endpoint{Credentials: issuer, API: api}}, sandboxtest.Echo)
	fn := tw.function("f", "echo", 128, 60)
	fn.Configuration.Role = "arn:aws:iam::000000000000:role/lambda-role"
	tw.store.put(fn)
	other := tw.function("g", "echo", 128, 60)
	other.Configuration.Environment = &lamina.Environment{Variables: map[string]string{"AWS_ENDPOINT_URL": "http://elsewhere:4566"}}
	tw.store.put(other)

	tw.invoke(t, fn, `1`)
	tw.invoke(t, other, `1`)
	sbs := tw.provider.Sandboxes()
	sb, otherSB := sbs[0], sbs[1]
	vars := processEnv(sb)
	s, secret, err := issuer.Verify(vars["AWS_ACCESS_KEY_ID"], vars["AWS_SESSION_TOKEN"])
	if err != nil || secret != vars["AWS_SECRET_ACCESS_KEY"] {
		t.Fatalf("the environment's credentials do not verify: %v (%v)", err, vars)
	}
	if s.Function != "f" || s.Role != fn.Configuration.Role || s.Environment != sb.Spec().ID || !tw.Live(s.Environment) {
		t.Errorf("session %+v of environment %s (live: %v)", s, sb.Spec().ID, tw.Live(s.Environment))
	}
	if otherVars := processEnv(otherSB); otherVars["AWS_ACCESS_KEY_ID"] == vars["AWS_ACCESS_KEY_ID"] || otherVars["AWS_ENDPOINT_URL"] != "http://elsewhere:4566" {
		t.Errorf("the second environment has %v; want credentials of its own and its own AWS_ENDPOINT_URL", otherVars)
	}

	_, addr := sb.Endpoint()
	if vars["AWS_ENDPOINT_URL"] != "http://"+addr {
		t.Fatalf("AWS_ENDPOINT_URL = %q, want the sandbox's endpoint %s", vars["AWS_ENDPOINT_URL"], addr)
	}
	resp, err := http.Get(vars["AWS_ENDPOINT_URL"] + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "the API answers /2015-03-31/functions" {
		t.Errorf("the endpoint answered %q, want the API's handler", body)
	}

	tw.expireIdle(time.Now().Add(time.Second))
	if !sb.Destroyed() || tw.Live(s.Environment) {
		t.Fatalf("after its environment stopped: destroyed %v, credentials live %v", sb.Destroyed(), tw.Live(s.Environment))
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(vars["AWS_ENDPOINT_URL"] + "/"); err == nil {
		resp.Body.Close()
		t.Error("the endpoint of a stopped environment still answers")
	}
}

// TestEnvironmentsRetireBeforeTheirCredentialsExpire: an environment whose
// credentials expire within the margin takes no more invocations: idle, it
// is stopped (even a provisioned one or one used just now), and a busy one
// is not put back in the pool.
func TestEnvironmentsRetireBeforeTheirCredentialsExpire(t *testing.T) {
	t.Parallel()
	issuer := credentials.NewIssuer([]byte("worker-test-key-0123456789abcdef"))
	tw := newTestWorker(t, Config{Endpoint: &Endpoint{Credentials: issuer, API: http.NotFoundHandler()}}, sandboxtest.Echo)
	fn := tw.function("f", "echo", 128, 60)
	tw.invoke(t, fn, `1`)
	sb := tw.provider.Sandboxes()[0]
	tw.expireIdle(time.Now().Add(-time.Hour))
	if sb.Destroyed() {
		t.Fatal("a fresh environment was stopped")
	}
	// Its credentials near their end.
	tw.mu.Lock()
	for _, list := range tw.idle {
		for _, env := range list {
			env.retireBy = time.Now().Add(-time.Second)
		}
	}
	tw.mu.Unlock()
	tw.expireIdle(time.Now().Add(-time.Hour))
	if !sb.Destroyed() {
		t.Error("an idle environment whose credentials end soon was kept")
	}

	// A busy one goes when its invocation ends.
	if err := tw.reserve(128); err != nil {
		t.Fatal(err)
	}
	env, err := tw.start(t.Context(), fn, "")
	if err != nil {
		t.Fatal(err)
	}
	tw.track(env)
	env.retireBy = time.Now().Add(-time.Second)
	tw.release(env)
	if got := tw.state(t); got != (stateView{}) {
		t.Errorf("an environment whose credentials end soon went back to the pool: %v", got)
	}
}
