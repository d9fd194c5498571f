package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetns opens a TCP listener on each of addrs inside the network
// namespace of process pid, in one visit. A socket keeps that namespace for
// its whole life, so the worker can serve a sandbox's Runtime API and AWS
// endpoint on the sandbox's own loopback.
func listenInNetns(pid int, addrs ...string) (lns []net.Listener, err error) {
	enter := func() error {
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return nil
	}
	err = inNetns(enter, func() error {
		for _, addr := range addrs {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				for _, opened := range lns {
					opened.Close()
				}
				return err
			}
			lns = append(lns, ln)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lns, nil
}

// dialInNetns connects to addr from inside the network namespace of process
// pid; the connection keeps that namespace for its whole life.
func dialInNetns(ctx context.Context, pid int, addr string) (conn net.Conn, err error) {
	enter := func() error {
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return nil
	}
	err = inNetns(enter, func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// newNetns creates a network namespace, runs setup in it (netlink sockets
// and sysctl files opened there belong to the namespace) and returns a
// handle that keeps the namespace alive until it is closed.
func newNetns(setup func() error) (ns *os.File, err error) {
	enter := func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
		return nil
	}
	err = inNetns(enter, func() (err error) {
		if ns, err = os.Open("/proc/thread-self/ns/net"); err != nil {
			return err
		}
		if err = setup(); err != nil {
			ns.Close()
			ns = nil
		}
		return err
	})
	return ns, err
}

// inNetns runs do on a thread of its own that enter has moved into another
// network namespace, and moves the thread back to where it was afterwards.
// A thread that cannot come back stays locked, and Go discards it.
func inNetns(enter, do func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(home)
		err = enter()
		if err == nil {
			err = do()
		}
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}
