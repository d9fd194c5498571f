package lamina

import (
	"strings"
	"testing"
)

func TestLineage(t *testing.T) {
	h := LineageHash("loop")
	if len(h) != 8 || h == LineageHash("other") {
		t.Fatalf("hash %q", h)
	}
	root := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
	if n := Recursion(root, h); n != 1 {
		t.Fatalf("no lineage: %d", n)
	}
	trace := WithLineage(root, h, 1)
	if !strings.HasPrefix(trace, root+";") {
		t.Fatalf("trace %q lost its fields", trace)
	}
	for i := 2; i <= 20; i++ {
		n := Recursion(trace, h)
		if n != i {
			t.Fatalf("round %d counted %d", i, n)
		}
		trace = WithLineage(trace, h, n)
	}
	if strings.Count(trace, "Lineage=") != 1 {
		t.Fatalf("trace %q", trace)
	}
	if n := Recursion(trace, LineageHash("other")); n != 1 {
		t.Fatalf("another function's lineage counted %d", n)
	}
	for _, bad := range []string{"Lineage=abc", "Lineage=:3", "Lineage=abc:x", "Lineage=abc:-1"} {
		if _, _, ok := Lineage(root + ";" + bad); ok {
			t.Errorf("%q read as a lineage", bad)
		}
	}
	if fresh := WithLineage("", h, 1); !strings.HasPrefix(fresh, "Root=1-") || !strings.HasSuffix(fresh, ";Lineage="+h+":1") {
		t.Fatalf("fresh trace %q", fresh)
	}
}
