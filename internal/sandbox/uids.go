package sandbox

import (
	"errors"
	"math/rand/v2"
	"sync"
)

// Each sandbox's user namespace maps its 65,536 ids onto a range of host ids
// of its own, above every id a host normally uses, so that no two sandboxes
// (and no host user) share an id.
const (
	uidRangeBase = 1 << 20
	uidRangeSize = 1 << 16
	uidRanges    = 4096
)

// errNoUIDRange is returned when every range is in use.
var errNoUIDRange = errors.New("sandbox: every host uid range is in use")

// uidRangeAllocator hands out host uid ranges, reusing released ones. Its
// slots start at a random offset, so that two servers on one host (tests,
// mostly) are unlikely to hand out the same ranges.
type uidRangeAllocator struct {
	mu     sync.Mutex
	free   []int // released slots
	next   int   // slots offset..offset+next-1 have been handed out at least once
	offset int
	seeded bool
}

// take returns the first host id of a free range.
func (a *uidRangeAllocator) take() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.seeded {
		a.offset, a.seeded = rand.IntN(uidRanges), true
	}
	slot := (a.offset + a.next) % uidRanges
	if n := len(a.free); n > 0 {
		slot = a.free[n-1]
		a.free = a.free[:n-1]
	} else if a.next == uidRanges {
		return 0, errNoUIDRange
	} else {
		a.next++
	}
	return uidRangeBase + slot*uidRangeSize, nil
}

// release returns a range taken with take.
func (a *uidRangeAllocator) release(base int) {
	a.mu.Lock()
	a.free = append(a.free, (base-uidRangeBase)/uidRangeSize)
	a.mu.Unlock()
}
