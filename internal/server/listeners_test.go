package server

import "testing"

func TestPlanFDs(t *testing.T) {
	for _, tt := range []struct {
		limit, reserve int
	}{
		{20000, 5000}, // a quarter
		{1024, 512},   // half, for small limits
		{2048, 1024},  // at least 1024
		{1 << 20, 1 << 18},
	} {
		fds := planFDs(tt.limit)
		if fds.reserve != tt.reserve {
			t.Errorf("limit %d: reserve %d, want %d", tt.limit, fds.reserve, tt.reserve)
		}
		if used := fds.reserve + fds.connections + 2*64 + metricsMaxConns; used > tt.limit {
			t.Errorf("limit %d: the plan uses %d descriptors", tt.limit, used)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{}.withDefaults(planFDs(20000))
	if l.MaxConns != 7420 || l.URLMaxConns != 7420 {
		t.Errorf("connection caps %d and %d, want half of 20000-5000-160 each", l.MaxConns, l.URLMaxConns)
	}
	if l.MaxConnsPerAddr != DefaultMaxConnsPerAddr || l.URLMaxConnsPerAddr != DefaultMaxConnsPerAddr {
		t.Errorf("per-address caps %d and %d", l.MaxConnsPerAddr, l.URLMaxConnsPerAddr)
	}
	if l := (Limits{}).withDefaults(planFDs(1 << 20)); l.MaxConns != maxDefaultConns {
		t.Errorf("with a huge open-file limit the cap is %d, want %d", l.MaxConns, maxDefaultConns)
	}
	small := Limits{MaxConns: 100}.withDefaults(planFDs(20000))
	if small.MaxConns != 100 || small.MaxConnsPerAddr != 25 {
		t.Errorf("--max-conns 100 gave caps %d and %d per address, want 100 and 25", small.MaxConns, small.MaxConnsPerAddr)
	}
	if err := (Limits{MinBodyRate: -1}).check(); err == nil {
		t.Error("a negative --min-body-rate accepted")
	}
}
