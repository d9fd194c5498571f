//go:build linux && cgo

package sandbox

import (
	"log/slog"
	"sync"
	"time"
)

// Sandboxes are prepared ahead, so that a cold start does only what depends
// on its function. Preparing one starts its init in new namespaces, creates
// its cgroups and moves the init into them, enters a network namespace from
// the network's pool, builds the part of the root file system every
// function has (the system's directories, /etc, /dev, /tmp's disk of the
// default size mounted) and opens the Runtime API listener. A cold start
// takes a prepared sandbox, sets its cgroup limits if its function's memory
// size is not 128 MB, swaps /tmp for a disk of another size if it needs one,
// and has the init bind the function's directories, pivot into the new
// root and make it read-only.
//
// Moving a process into a cgroup is what this saves most: the kernel takes
// cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period
// unless another move happened within the last one; on the 2-core machine
// of the benchmarks (HZ=250) a move took 8–10 ms after 50 ms without one,
// 60 µs right after one. Starting the init and building the common part of
// its root took another 2–3 ms.
//
// A goroutine refills the pool as soon as a sandbox is taken from it; a
// burst of cold starts that finds it empty prepares sandboxes on the spot.

// preparedSandboxes is how many sandboxes wait prepared.
const preparedSandboxes = 3

// preparedPool holds a provider's prepared sandboxes of one kind and
// refills itself.
type preparedPool struct {
	p *NamespaceProvider
	// prepare prepares one sandbox of the pool's kind.
	prepare func() (*namespaceSandbox, error)
	// onDemand: a take that finds the pool empty prepares one on the spot
	// (else it returns nil).
	onDemand bool
	log      *slog.Logger
	ready    chan *namespaceSandbox
	wake     chan struct{} // a take asks the filler for more
	stop     chan struct{}
	done     chan struct{} // closed when the filler has stopped
	// mu is held while the filler prepares a sandbox, so that setNetwork
	// waits for one being prepared with the old network.
	mu sync.Mutex
}

// newPreparedPool starts preparing size sandboxes with prepare.
func newPreparedPool(p *NamespaceProvider, size int, onDemand bool, prepare func() (*namespaceSandbox, error),
	log *slog.Logger) *preparedPool {
	pp := &preparedPool{p: p, prepare: prepare, onDemand: onDemand, log: log, ready: make(chan *namespaceSandbox, size),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go pp.fill()
	pp.refill()
	return pp
}

// take returns a prepared sandbox, or one prepared now if none is ready
// and the pool prepares on demand (else nil). Sandboxes prepared for
// another network than the provider's, or whose init has died, are
// destroyed on the way.
func (pp *preparedPool) take() (*namespaceSandbox, error) {
	defer pp.refill()
	for {
		select {
		case s := <-pp.ready:
			if pp.usable(s) {
				return s, nil
			}
			s.Destroy()
		default:
			if !pp.onDemand {
				return nil, nil
			}
			return pp.prepare()
		}
	}
}

// usable reports whether the prepared sandbox s can still be taken.
func (pp *preparedPool) usable(s *namespaceSandbox) bool {
	select {
	case <-s.exited:
		return false
	default:
	}
	return s.network == pp.p.network.Load()
}

// refill asks the filler to top the pool up.
func (pp *preparedPool) refill() {
	select {
	case pp.wake <- struct{}{}:
	default:
	}
}

// fill prepares sandboxes until the pool is full, each time it is asked,
// until close. Failures are retried with a growing delay (a take that
// finds the pool empty prepares a sandbox itself and reports its error).
func (pp *preparedPool) fill() {
	defer close(pp.done)
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-pp.wake:
		case <-pp.stop:
			return
		}
		for len(pp.ready) < cap(pp.ready) {
			pp.mu.Lock()
			s, err := pp.prepare()
			if err == nil {
				select {
				case pp.ready <- s:
				default: // only the filler adds: never full here, but never block
					s.Destroy()
				}
			}
			pp.mu.Unlock()
			if err != nil {
				pp.log.Warn("preparing a sandbox failed", "err", err)
				select {
				case <-time.After(backoff):
					backoff = min(2*backoff, 5*time.Second)
					continue
				case <-pp.stop:
					return
				}
			}
			backoff = 10 * time.Millisecond
			select {
			case <-pp.stop:
				return
			default:
			}
		}
	}
}

// setNetwork makes n the network of sandboxes prepared from now on, and
// destroys those prepared (or being prepared) with another.
func (pp *preparedPool) setNetwork(n *Network) {
	pp.mu.Lock()
	pp.p.network.Store(n)
	pp.drain()
	pp.mu.Unlock()
	pp.refill()
}

// drain destroys the sandboxes that wait prepared.
func (pp *preparedPool) drain() {
	for {
		select {
		case s := <-pp.ready:
			s.Destroy()
		default:
			return
		}
	}
}

// close stops the filler and destroys the prepared sandboxes.
func (pp *preparedPool) close() {
	close(pp.stop)
	<-pp.done
	pp.drain()
}
