package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// healInterval is how often the healer looks at the data disk, and how
// often it tries again to heal storage that is unavailable.
const healInterval = time.Second

// probeTimeout bounds the test write that tells whether storage heals.
const probeTimeout = 5 * time.Second

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
type healer struct {
	dataDir string
	nats    *embeddedNATS
	store   *store.Store
	health  *store.Health
	log     *slog.Logger
}

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
		}
		size, free, err := diskSpace(h.dataDir)
		if err != nil {
			h.log.Warn("cannot read the data disk's free space", "err", err)
			continue
		}
		if h.health.Err() == nil {
			if lowOnSpace(size, free) {
				h.health.Fail(fmt.Errorf("the data disk has %d MB free of %d MB", free>>20, size>>20), true, false)
			}
			continue
		}
		if !spaceRecovered(size, free) {
			continue
		}
		if err := h.heal(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("storage not healed yet", "err", err)
		}
	}
}

// heal makes storage writable again, or says why not yet.
func (h *healer) heal(ctx context.Context) error {
	if h.health.NeedsReopen() {
		h.log.Info("reopening JetStream's streams")
		if err := h.nats.restartJetStream(); err != nil {
			return err
		}
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
	if n, err := h.store.SweepOrphans(ctx); err != nil {
		h.log.Warn("sweeping records of deleted functions failed", "err", err)
	} else if n > 0 {
		h.log.Info("records of deleted functions swept", "count", n)
	}
	return nil
}
