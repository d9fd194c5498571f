package worker

import (
	"bytes"
	"crypto/rand"
	"os"
	"sync"
	"time"

	"github.com/lamina-project/lamina/internal/logs"
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
// Attribution is exact thanks to sync: the worker keeps the pipe's write end
// too, and after the runtime has answered an invocation it writes a marker
// into the pipe. Everything the runtime wrote before answering is in the pipe
// before the marker, so once the reader has consumed the marker the phase's
// output is complete.
type output struct {
	r, w   *os.File
	marker []byte
	synced chan struct{}

	mu      sync.Mutex
	events  []logs.Event
	bytes   int
	dropped int
	partial []byte // an unfinished line
}

func newOutput() (*output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	marker := append([]byte("\x00lamina-sync-"), []byte(rand.Text())...)
	o := &output{r: r, w: w, marker: append(marker, 0), synced: make(chan struct{}, 1)}
	go o.read()
	return o, nil
}

// read consumes the pipe until every writer has closed it.
func (o *output) read() {
	buf := make([]byte, 64<<10)
	var carry []byte
	for {
		n, err := o.r.Read(buf)
		data := buf[:n]
		if len(carry) > 0 {
			data = append(carry, data...)
			carry = nil
		}
		for {
			i := bytes.Index(data, o.marker)
			if i < 0 {
				break
			}
			o.add(data[:i], true)
			data = data[i+len(o.marker):]
			select {
			case o.synced <- struct{}{}:
			default:
			}
		}
		keep := markerPrefixAtEnd(data, o.marker)
		o.add(data[:len(data)-keep], false)
		if keep > 0 {
			carry = bytes.Clone(data[len(data)-keep:])
		}
		if err != nil {
			o.add(carry, true)
			o.r.Close()
			return
		}
	}
}

// markerPrefixAtEnd returns the length of the longest end of data that is a
// beginning of marker, which the next read may complete.
func markerPrefixAtEnd(data, marker []byte) int {
	for k := min(len(data), len(marker)-1); k > 0; k-- {
		if bytes.HasSuffix(data, marker[:k]) {
			return k
		}
	}
	return 0
}

// add splits data into lines and records each as an event; with final, an
// unfinished last line is recorded too.
func (o *output) add(data []byte, final bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
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

// sync waits until everything written to the pipe so far has been read.
func (o *output) sync() {
	select { // forget a sync signal nobody waited for
	case <-o.synced:
	default:
	}
	if _, err := o.w.Write(o.marker); err != nil {
		return
	}
	select {
	case <-o.synced:
	case <-time.After(syncTimeout):
	}
}

// take returns the events recorded since the last take, and how many lines
// were dropped for exceeding the per-invocation limit.
func (o *output) take() (events []logs.Event, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	events, dropped = o.events, o.dropped
	o.events, o.bytes, o.dropped = nil, 0, 0
	return events, dropped
}

// writer is the end the runtime writes to.
func (o *output) writer() *os.File { return o.w }

// close closes the worker's write end; the reader stops once the runtime's
// copies are closed too (it has exited).
func (o *output) close() { o.w.Close() }
