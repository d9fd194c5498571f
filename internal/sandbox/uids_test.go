package sandbox

import "testing"

func TestUIDRangeAllocator(t *testing.T) {
	var a uidRangeAllocator
	seen := map[int]bool{}
	for range uidRanges {
		base, err := a.take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[base] || base < uidRangeBase || (base-uidRangeBase)%uidRangeSize != 0 || base >= uidRangeBase+uidRanges*uidRangeSize {
			t.Fatalf("bad or repeated range base %d", base)
		}
		seen[base] = true
	}
	if _, err := a.take(); err != errNoUIDRange {
		t.Fatalf("take with every range in use: %v, want errNoUIDRange", err)
	}
	a.release(uidRangeBase + 7*uidRangeSize)
	if base, err := a.take(); err != nil || base != uidRangeBase+7*uidRangeSize {
		t.Fatalf("take after release = %d, %v; want the released range", base, err)
	}
}
