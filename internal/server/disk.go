package server

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The store's share of the data directory's filesystem. JetStream may use
// storeShareOfDisk of the filesystem, and no more than storeShareOfFree of
// the space it can have (what is free plus what it already holds); a flag
// overrides the result. Of that, each stream that could grow without end
// gets a share of its own, and the key-value buckets (functions, versions,
// aliases…) keep the rest.
const (
	storeShareOfDisk = 0.5
	storeShareOfFree = 0.75
	codeShare        = 0.25 // zipped code and layers
	logsShare        = 0.15 // function logs (oldest deleted first)
	asyncShare       = 0.10 // the asynchronous invocation queue
	failuresShare    = 0.01 // the records of failed asynchronous events
	queuesShare      = 0.10 // SQS messages and their receive states
	objectsShare     = 0.20 // S3 object bodies (--s3-max overrides)
	streamsShare     = 0.08 // Kinesis records
	// MinStoreMB is the least the store may have: below it the node refuses
	// to start.
	MinStoreMB = 96
)

// Free space on the data filesystem below which the node refuses writes
// before the filesystem does (a full filesystem makes JetStream fail writes
// until its streams are reopened), and above which it takes them again.
const (
	lowWaterFraction  = 0.01
	lowWaterMin       = 4 << 20
	highWaterFraction = 0.02
	highWaterMin      = 8 << 20
)

// storeLimits is how much disk JetStream and each of Lamina's streams may
// use, in bytes.
type storeLimits struct {
	Max, Code, Logs, Async, Failures, Queues, Objects, Streams int64
}

// diskSpace is the size of the filesystem holding dir and the space free
// for unprivileged users on it, in bytes.
func diskSpace(dir string) (size, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// sizeStore applies the sizing rule to the filesystem of dataDir, where
// JetStream keeps its files under natsDir, or takes maxMB (MB) when it is
// not zero. It fails when the store would get less than MinStoreMB.
func sizeStore(dataDir, natsDir string, maxMB int) (storeLimits, error) {
	size, free, err := diskSpace(dataDir)
	if err != nil {
		return storeLimits{}, err
	}
	max := int64(maxMB) << 20
	if maxMB == 0 {
		held := duBytes(natsDir)
		max = min(int64(float64(size)*storeShareOfDisk), int64(float64(free+held)*storeShareOfFree))
	}
	if max < MinStoreMB<<20 {
		if maxMB != 0 {
			return storeLimits{}, fmt.Errorf("--store-max %d is below the minimum of %d MB", maxMB, MinStoreMB)
		}
		return storeLimits{}, fmt.Errorf("not enough disk for the store in %s: it would get %d MB, it needs at least %d MB "+
			"(half of the filesystem, and three quarters of its free space, must reach that: e.g. a filesystem of %d MB with %d MB free)",
			dataDir, max>>20, MinStoreMB, 2*MinStoreMB, MinStoreMB*4/3+1)
	}
	return storeShares(max), nil
}

// storeShares divides a store of max bytes among the streams.
func storeShares(max int64) storeLimits {
	share := func(f float64) int64 { return int64(float64(max) * f) }
	return storeLimits{Max: max, Code: share(codeShare), Logs: share(logsShare), Async: share(asyncShare), Failures: share(failuresShare),
		Queues: share(queuesShare), Objects: share(objectsShare), Streams: share(streamsShare)}
}

// duBytes returns the bytes the files under dir take on disk; 0 if it does
// not exist.
func duBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			if st, ok := info.Sys().(*unix.Stat_t); ok {
				total += st.Blocks * 512
			} else {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// lowOnSpace reports whether the free space of a filesystem of size bytes
// is below the mark where writes are refused; recovered whether it is back
// above the mark where they are taken again.
func lowOnSpace(size, free int64) bool {
	return free < max(lowWaterMin, int64(float64(size)*lowWaterFraction))
}

func spaceRecovered(size, free int64) bool {
	return free >= max(highWaterMin, int64(float64(size)*highWaterFraction))
}
