package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// healInterval is how often the healer looks at the data disk, and how
// often it tries again to heal storage that is unavailable.
const healInterval = time.Second

// probeTimeout bounds the test write that tells whether storage heals.
const probeTimeout = 5 * time.Second

// Storage whose writes go unanswered maxSuspects times within suspectWindow
// (see probeSuspect) is failed even though test writes go through.
const (
	maxSuspects   = 3
	suspectWindow = time.Minute
)

// A failure that comes back soon after storage healed (its cause is still
// there) doubles the wait before the next attempt, up to maxHealDelay; a
// failure after a quiet stableAfter starts again from healInterval.
const (
	maxHealDelay = 30 * time.Second
	stableAfter  = time.Minute
)

// healer keeps the store writable without a restart. It refuses writes
// before the data filesystem is full (a full filesystem makes JetStream
// fail writes to a stream until the stream is reopened), and when storage
// failed — the disk filled anyway, JetStream met another write error or
// disabled itself — it waits for space, reopens JetStream's streams from
// disk if the failure needs it (what the NATS server offers an embedding
// process: shutting JetStream down and enabling it again), re-establishes
// the store's watches, proves a write goes through and declares storage
// healed, which wakes the parts that keep consumers (the async dispatcher,
// the log store).
//
// In a cluster it never shuts a running JetStream down (see
// restartJetStream): a write that timed out there is most often a leader
// changing, and the healer follows the store again and tries a test write
// every second until one goes through. With an external NATS cluster the
// store is not on this node's disk: the healer does not watch the disk.
type healer struct {
	dataDir string
	// nats is the embedded NATS server, whose JetStream keeps the store on
	// the data disk; nil when the store is on an external NATS cluster.
	nats   *embeddedNATS
	store  *store.Store
	health *store.Health
	log    *slog.Logger

	delay     time.Duration // the wait after a failure, or a failed attempt, before the next attempt to heal
	attempted time.Time     // when the last attempt began
	recovered time.Time     // when storage last healed
	suspects  []time.Time   // when writes went unanswered lately
}

// clustered reports whether the store is a cluster's: on an external NATS
// cluster, or on this node's embedded server clustered with others.
func (h *healer) clustered() bool { return h.nats == nil || h.nats.clustered }

// run heals until ctx ends.
func (h *healer) run(ctx context.Context) {
	t := time.NewTicker(healInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.health.Failed():
		case <-h.health.Suspected():
			h.probeSuspect(ctx)
		}
		localDisk := h.nats != nil
		var size, free int64
		if localDisk {
			var err error
			if size, free, err = diskSpace(h.dataDir); err != nil {
				h.log.Warn("cannot read the data disk's free space", "err", err)
				continue
			}
		}
		if h.health.Err() == nil {
			if localDisk && lowOnSpace(size, free) {
				h.health.Fail(fmt.Errorf("the data disk has %d MB free of %d MB", free>>20, size>>20), true, false)
			}
			continue
		}
		since := h.health.DownSince()
		if h.attempted.After(since) {
			since = h.attempted
		}
		if (localDisk && !spaceRecovered(size, free)) || time.Since(since) < max(h.delay, healInterval) {
			continue
		}
		if err := h.heal(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("storage not healed yet", "err", err, "next_attempt_in", h.delay)
		}
	}
}

// probeSuspect answers a write JetStream did not answer: storage that takes
// a test write is well (the machine was busy, a leader changed); storage
// that does not is failed and gets healed, and so is storage whose writes
// keep going unanswered (a stream that met a write error falls silent while
// the others, and the test write, go through).
func (h *healer) probeSuspect(ctx context.Context) {
	if h.health.Err() != nil {
		return // already being healed
	}
	now := time.Now()
	h.suspects = append(slices.DeleteFunc(h.suspects, func(at time.Time) bool { return now.Sub(at) > suspectWindow }), now)
	if len(h.suspects) >= maxSuspects {
		h.suspects = nil
		h.health.Fail(fmt.Errorf("%d writes went unanswered within %s", maxSuspects, suspectWindow), false, true)
		return
	}
	probeCtx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := h.store.Probe(probeCtx); err != nil && ctx.Err() == nil {
		h.health.Fail(fmt.Errorf("a write went unanswered and so did a test write: %w", err), false, true)
	}
}

// heal makes storage writable again, or says why not yet.
func (h *healer) heal(ctx context.Context) error {
	restart := h.nats != nil && h.nats.mustRestart()
	switch {
	case h.clustered() && !restart:
		// Storage comes back when JetStream has leaders again, and a try
		// costs a test write: try every interval.
		h.delay = healInterval
	case time.Since(h.recovered) < stableAfter || h.attempted.After(h.health.DownSince()):
		// The cause is still there: wait longer each time.
		h.delay = min(max(2*h.delay, healInterval), maxHealDelay)
	default:
		h.delay = healInterval
	}
	h.attempted = time.Now()
	if h.health.NeedsReopen() {
		if restart {
			h.log.Info("reopening JetStream's streams")
			if err := h.nats.restartJetStream(); err != nil {
				return err
			}
		}
		// The store's watches may have stopped meanwhile.
		if err := h.store.Reopen(ctx); err != nil {
			return err
		}
	}
	probeCtx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := h.store.Probe(probeCtx); err != nil {
		// A write that does not go through now needs the streams reopened.
		h.health.Fail(err, false, true)
		return err
	}
	h.health.Recover()
	h.recovered = time.Now()
	if n, err := h.store.SweepOrphans(ctx); err != nil {
		h.log.Warn("sweeping records of deleted functions failed", "err", err)
	} else if n > 0 {
		h.log.Info("records of deleted functions swept", "count", n)
	}
	return nil
}
