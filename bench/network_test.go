package bench

import (
	"os"
	"slices"
	"testing"
	"time"
)

// BenchmarkColdStartNetwork measures what the function network costs a cold
// start: two servers of its own, one with the default --function-network
// internet and one with --function-network none, take cold starts of the
// same functions in turn, call by call (the fairest comparison on a noisy
// machine), as BenchmarkColdStart does. It reports each one's median latency
// and Init Duration, and extra-p50-µs, the difference of the medians. It needs
// the namespace sandbox (root).
func BenchmarkColdStartNetwork(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the function network needs the namespace sandbox, which needs root")
	}
	f := getFixture(b)
	servers := map[string]*fixture{}
	for _, mode := range []string{"internet", "none"} {
		s := &fixture{dir: f.dir, laminaBin: f.laminaBin, goZip: f.goZip}
		if err := s.startServer("network-"+mode, "--function-network", mode); err != nil {
			b.Fatal(err)
		}
		defer s.server.stop(30 * time.Second)
		if err := s.createFunctions(); err != nil {
			b.Fatal(err)
		}
		servers[mode] = s
	}
	var nonce int64
	for _, rt := range runtimeCases {
		b.Run(rt.name, func(b *testing.B) {
			name := coldFunction(rt.name)
			lat, inits := map[string][]time.Duration{}, map[string][]time.Duration{}
			b.ResetTimer()
			b.StopTimer()
			for i := range b.N {
				order := []string{"internet", "none"}
				if i%2 == 1 {
					slices.Reverse(order)
				}
				for _, mode := range order {
					nonce++
					d, init, err := servers[mode].coldStart(b, name, nonce)
					if err != nil {
						b.Fatalf("%s: %v", mode, err)
					}
					lat[mode], inits[mode] = append(lat[mode], d), append(inits[mode], init)
				}
			}
			p50 := map[string]time.Duration{}
			for mode := range servers {
				p50[mode], _ = latencyMetrics(b, mode+"-", lat[mode])
				slices.Sort(inits[mode])
				report(b, micros(percentile(inits[mode], 0.5)), mode+"-init-p50-µs")
			}
			report(b, micros(p50["internet"]-p50["none"]), "extra-p50-µs")
		})
	}
}
