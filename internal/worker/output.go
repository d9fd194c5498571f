package worker

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/sandbox"
	"golang.org/x/sys/unix"
)

// Limits on what one invocation's output keeps in memory.
const (
	maxEventSize       = 256 << 10 // a longer line is cut, as CloudWatch Logs cuts events
	maxInvocationBytes = 1 << 20   // output beyond this in one invocation is dropped
	syncTimeout        = 2 * time.Second
)

// output collects a runtime's stdout and stderr (one pipe) into log events,
// attributed to the phase (init or an invocation) during which they were
// written.
//
// Attribution is exact: the reader takes what the pipe holds only while it
// holds the lock, and records it before letting go. So once the pipe is
// empty (FIONREAD) under the lock, everything written to it so far has been
// recorded; after a runtime has answered an invocation, that is all the
// output it wrote before answering. Usually the check costs one ioctl.
type output struct {
	r, w *os.File
	raw  syscall.RawConn // of r, which Go's poller watches
	eof  chan struct{}   // closed once every writer has closed the pipe

	mu      sync.Mutex
	events  []logs.Event
	bytes   int
	dropped int
	partial []byte // an unfinished line
}

// newOutput makes a pipe and collects what is written to its write end.
func newOutput() (*output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return outputOf(r, w)
}

// newRuntimeOutput collects the output of sb's runtime: from the pipe of a
// runtime sb started ahead (sandbox.Prestarted), else from a new one.
func newRuntimeOutput(sb sandbox.Sandbox) (*output, error) {
	if ps, ok := sb.(sandbox.Prestarted); ok {
		if r := ps.PrestartedOutput(); r != nil {
			return outputOf(r, nil)
		}
	}
	return newOutput()
}

// outputOf collects what is written to the pipe whose read end is r; w is
// the worker's copy of its write end, or nil.
func outputOf(r, w *os.File) (*output, error) {
	raw, err := r.SyscallConn()
	if err != nil {
		r.Close()
		if w != nil {
			w.Close()
		}
		return nil, err
	}
	o := &output{r: r, w: w, raw: raw, eof: make(chan struct{})}
	go o.read()
	return o, nil
}

// read consumes the pipe until every writer has closed it. It drains the
// pipe under the lock each time the poller reports it readable.
func (o *output) read() {
	buf := make([]byte, 64<<10)
	_ = o.raw.Read(func(fd uintptr) bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for {
			n, err := unix.Read(int(fd), buf)
			if n > 0 {
				o.addLocked(buf[:n], false)
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until readable again
			case errors.Is(err, unix.EINTR):
				continue
			case n <= 0: // end of file: every writer is gone
				o.addLocked(nil, true)
				return true
			}
		}
	})
	o.r.Close()
	close(o.eof)
}

// addLocked splits data into lines and records each as an event; with
// final, an unfinished last line is recorded too. The caller holds o.mu.
func (o *output) addLocked(data []byte, final bool) {
	now := time.Now().UnixMilli()
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			o.partial = append(o.partial, data...)
			break
		}
		line := data[:i]
		if len(o.partial) > 0 {
			line = append(o.partial, line...)
			o.partial = nil
		}
		o.record(now, line)
		data = data[i+1:]
	}
	if final && len(o.partial) > 0 {
		o.record(now, o.partial)
		o.partial = nil
	}
}

func (o *output) record(ts int64, line []byte) {
	if len(line) > maxEventSize {
		line = line[:maxEventSize]
	}
	if o.bytes+len(line) > maxInvocationBytes {
		o.dropped++
		return
	}
	o.bytes += len(line) + 1
	o.events = append(o.events, logs.Event{Timestamp: ts, Message: string(line)})
}

// take waits until everything written to the pipe so far has been recorded,
// then returns the events recorded since the last take (an unfinished last
// line included) and how many lines were dropped for exceeding the
// per-invocation limit.
func (o *output) take() (events []logs.Event, dropped int) {
	deadline := time.Now().Add(syncTimeout)
	for {
		o.mu.Lock()
		pending, err := o.pending()
		if pending == 0 || err != nil || time.Now().After(deadline) {
			break
		}
		o.mu.Unlock()
		runtime.Gosched() // the reader is about to drain it
	}
	defer o.mu.Unlock()
	o.addLocked(nil, true)
	events, dropped = o.events, o.dropped
	o.events, o.bytes, o.dropped = nil, 0, 0
	return events, dropped
}

// pending returns how many bytes the pipe holds, not yet read.
func (o *output) pending() (int, error) {
	var n int
	var ioctlErr error
	err := o.raw.Control(func(fd uintptr) {
		n, ioctlErr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
	})
	if err != nil {
		return 0, err
	}
	return n, ioctlErr
}

// writer is the end the runtime writes to; nil for the output of a runtime
// started ahead.
func (o *output) writer() *os.File { return o.w }

// close closes the worker's copy of the write end, if it has one; the
// reader stops once the runtime's copies are closed too (it has exited).
func (o *output) close() {
	if o.w != nil {
		o.w.Close()
	}
}
