package sandbox

import (
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetns opens a TCP listener on addr inside the network namespace of
// process pid. The socket keeps that namespace for its whole life, so the
// worker can serve a sandbox's Runtime API on the sandbox's own loopback.
func listenInNetns(pid int, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the sandbox's network namespace and comes back;
		// if it cannot come back it stays locked, and Go discards it.
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer unix.Close(home)
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("open network namespace: %w", err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{ln: ln, err: err}
	}()
	r := <-done
	return r.ln, r.err
}
