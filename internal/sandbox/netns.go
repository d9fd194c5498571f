package sandbox

import (
	"fmt"
	"net"
	"os"
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

// newNetns creates a network namespace, runs setup in it (on a thread of its
// own that is in the namespace while setup runs; netlink sockets and sysctl
// files opened there belong to the namespace) and returns a handle that keeps
// the namespace alive until it is closed.
func newNetns(setup func() error) (*os.File, error) {
	type result struct {
		ns  *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		// As in listenInNetns: a thread that cannot come back stays locked,
		// and Go discards it.
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer unix.Close(home)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("new network namespace: %w", err)}
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err == nil {
			if err = setup(); err != nil {
				ns.Close()
				ns = nil
			}
		}
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{ns: ns, err: err}
	}()
	r := <-done
	return r.ns, r.err
}
