package sandboxtest

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/sandbox"
)

// start creates a sandbox of p running script, with its output on a pipe
// whose lines arrive on the returned channel.
func start(t *testing.T, p *Provider) (*Sandbox, <-chan string) {
	t.Helper()
	s, err := p.Create(context.Background(), sandbox.Spec{ID: "t", MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	sb := s.(*Sandbox)
	t.Cleanup(func() { sb.Destroy() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if err := sb.Start(sandbox.Process{Env: []string{"NAME=value"}, Output: w}); err != nil {
		t.Fatal(err)
	}
	return sb, lines
}

func receive(t *testing.T, c <-chan string, want string) {
	t.Helper()
	select {
	case got := <-c:
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %q in 5 s", want)
	}
}

func waitExited(t *testing.T, sb *Sandbox) {
	t.Helper()
	select {
	case <-sb.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("not exited in 5 s")
	}
}

// TestExits: a script's return is status 0, Exit a status, OutOfMemory a
// kill by the memory limit.
func TestExits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		script Script
		exit   string
		oom    bool
	}{
		{func(rt *Runtime) { rt.Printf("%s", rt.Getenv("NAME")) }, "", false},
		{func(rt *Runtime) { rt.Printf("%s", rt.Getenv("NAME")); rt.Exit(3); rt.Printf("after exit") }, "exit status 3", false},
		{func(rt *Runtime) { rt.Printf("%s", rt.Getenv("NAME")); rt.OutOfMemory() }, "signal: killed", true},
	}
	for _, c := range cases {
		p := &Provider{Script: c.script}
		sb, lines := start(t, p)
		receive(t, lines, "value")
		waitExited(t, sb)
		exit := ""
		if err := sb.ExitError(); err != nil {
			exit = err.Error()
		}
		if exit != c.exit || sb.OutOfMemory() != c.oom {
			t.Errorf("exit %q, out of memory %v; want %q, %v", exit, sb.OutOfMemory(), c.exit, c.oom)
		}
		before := sb.ExitError()
		sb.Destroy()
		if after := sb.ExitError(); after != before {
			t.Errorf("Destroy after the exit changed how it ended: %v, then %v", before, after)
		}
	}
}

// TestFreezeStopsTheScript: a frozen sandbox's script makes no progress
// until it is thawed.
func TestFreezeStopsTheScript(t *testing.T) {
	t.Parallel()
	step := make(chan struct{})
	sb, lines := start(t, &Provider{Script: func(rt *Runtime) {
		for i := 0; ; i++ {
			<-step
			rt.Printf("step %d", i)
		}
	}})
	step <- struct{}{}
	receive(t, lines, "step 0")
	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	step <- struct{}{}
	select {
	case got := <-lines:
		t.Fatalf("a frozen script wrote %q", got)
	case <-time.After(100 * time.Millisecond):
	}
	if err := sb.Thaw(); err != nil {
		t.Fatal(err)
	}
	receive(t, lines, "step 1")
	if got := sb.FreezeCalls(); len(got) != 2 || got[0] != "freeze" || got[1] != "thaw" {
		t.Errorf("freeze calls %v", got)
	}
}

// TestDestroyKills: Destroy ends a script that waits (frozen or not), with
// SIGKILL; afterwards Freeze and Thaw fail, and Destroy may be repeated.
func TestDestroyKills(t *testing.T) {
	t.Parallel()
	for _, frozen := range []bool{false, true} {
		ended := make(chan struct{})
		sb, lines := start(t, &Provider{Script: func(rt *Runtime) {
			defer close(ended)
			rt.Printf("sleeping")
			rt.Sleep(time.Hour)
			rt.Printf("woke up")
		}})
		receive(t, lines, "sleeping")
		if frozen {
			sb.Freeze()
		}
		sb.Destroy()
		sb.Destroy()
		waitExited(t, sb)
		<-ended
		if err := sb.ExitError(); err == nil || err.Error() != "signal: killed" {
			t.Errorf("frozen %v: exit %v, want signal: killed", frozen, err)
		}
		if sb.Freeze() == nil || sb.Thaw() == nil {
			t.Errorf("Freeze or Thaw after Destroy succeeded")
		}
		select {
		case got := <-lines:
			t.Errorf("a destroyed script wrote %q", got)
		default:
		}
	}
}
