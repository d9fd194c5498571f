// Package recursion stops recursive loops as Lambda does: a function whose
// output (an SQS message, an SNS publish, an S3 object) invokes the same
// function again, round after round. The trace header each invocation
// carries counts the rounds (lamina.Lineage); the event sources ask the
// Guard before each invocation they make.
package recursion

import (
	"log/slog"

	"github.com/lamina-project/lamina"
	"github.com/prometheus/client_golang/prometheus"
)

// Guard decides whether an event may invoke a function, and counts and
// logs the ones it stops.
type Guard struct {
	dropped *prometheus.CounterVec
	log     *slog.Logger
}

// NewGuard creates a guard whose counter is registered with reg (nil: not
// registered anywhere).
func NewGuard(reg prometheus.Registerer, log *slog.Logger) *Guard {
	g := &Guard{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lamina_recursive_invocations_dropped_total",
			Help: "Invocations Lamina did not make because they continued a recursive loop through the function " +
				"past its limit (Lambda's RecursiveInvocationsDropped).",
		}, []string{"function"}),
		log: log.With("part", "recursion"),
	}
	if reg != nil {
		reg.MustRegister(g.dropped)
	}
	return g
}

// Admit decides whether an event whose trace header is trace may invoke
// fn (its $LATEST record, which holds RecursiveLoop). It returns the trace
// header of the invocation, its lineage counted one round more, and
// whether it may run; an event it stops is counted and logged, with
// source naming where it came from.
func (g *Guard) Admit(fn *lamina.Function, trace, source string) (string, bool) {
	name := fn.Configuration.FunctionName
	hash := lamina.LineageHash(name)
	n := lamina.Recursion(trace, hash)
	if n > lamina.MaxRecursion && fn.StopsLoops() {
		g.dropped.WithLabelValues(name).Inc()
		g.log.Warn("stopped a recursive loop: the function's output invoked it again too many times in a row; "+
			"the event is dropped (PutFunctionRecursionConfig RecursiveLoop=Allow lets such loops run)",
			"function", name, "source", source, "rounds", n-1, "limit", lamina.MaxRecursion)
		return "", false
	}
	return lamina.WithLineage(trace, hash, n), true
}
