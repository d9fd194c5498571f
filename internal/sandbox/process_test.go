package sandbox

import (
	"testing"
	"time"
)

// TestProcessSandboxFreezeThaw: the process provider freezes the runtime's
// process group with SIGSTOP and thaws it with SIGCONT; Destroy kills a
// stopped group.
func TestProcessSandboxFreezeThaw(t *testing.T) {
	p := &ProcessProvider{ScratchDir: t.TempDir()}
	sb := create(t, p, Spec{ID: "freeze", TaskDir: t.TempDir()})
	// The runtime and a child in its process group print every 10 ms.
	c := startTicking(t, sb, Process{Argv: []string{"/bin/sh", "-c", `(while :; do echo child; sleep 0.01; done) &
while :; do echo runtime; sleep 0.01; done`}, Dir: "/"})

	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	still := waitStill(t, c, "runtime", "child")
	time.Sleep(300 * time.Millisecond)
	if c.count("runtime") != still[0] || c.count("child") != still[1] {
		t.Error("the process group printed while frozen")
	}
	if err := sb.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both print again after the thaw", func() bool {
		return c.count("runtime") > still[0] && c.count("child") > still[1]
	})

	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("a frozen runtime outlived Destroy")
	}
	if sb.Freeze() == nil {
		t.Error("Freeze after Destroy succeeded")
	}
}
