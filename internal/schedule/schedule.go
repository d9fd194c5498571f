// Package schedule parses Amazon EventBridge schedule expressions
// (ScheduleExpression: "rate(value unit)" and "cron(fields)"), validates them
// as the EventBridge documentation describes, and computes their fire times.
// All times are UTC.
//
// Where the documentation is silent this package is strict: the special
// forms L, LW, nW (Day-of-month) and L, nL, n#k (Day-of-week) must be the
// whole field, L-n offsets are refused, and nW never fires in a month that
// has no day n (like a plain n).
//
// The package uses the standard library only and has no state: a Schedule is
// immutable and safe for concurrent use.
package schedule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// invalidMessage is the message of AWS's ValidationException for a bad
// ScheduleExpression.
const invalidMessage = "Parameter ScheduleExpression is not valid."

// Schedule is a parsed schedule expression.
type Schedule interface {
	// Next returns the first fire time strictly after t (t is converted to
	// UTC), and false if there is none (e.g. a cron whose years are all in
	// the past). For a rate expression Next(t) is t + period: the caller
	// passes the previous fire time (see Rate).
	Next(t time.Time) (time.Time, bool)
	// String returns the expression as given.
	String() string
}

// Error is the error returned by Parse for an invalid expression. Its Error
// method returns AWS's ValidationException message; Detail says precisely
// what is wrong, for logs and tests.
type Error struct {
	// Detail is the precise reason the expression was refused.
	Detail string
}

// Error returns "Parameter ScheduleExpression is not valid.", the message
// EventBridge gives for every invalid ScheduleExpression.
func (e *Error) Error() string { return invalidMessage }

func invalid(format string, args ...any) *Error {
	return &Error{Detail: fmt.Sprintf(format, args...)}
}

// Parse parses a ScheduleExpression, "rate(value unit)" or
// "cron(Minutes Hours Day-of-month Month Day-of-week Year)". Errors are
// *Error, whose message is AWS's ValidationException message.
func Parse(expr string) (Schedule, error) {
	var (
		s   Schedule
		err *Error
	)
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		s, err = parseRate(expr, expr[len("rate("):len(expr)-1])
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		s, err = parseCron(expr, expr[len("cron("):len(expr)-1])
	default:
		err = invalid("expression must be rate(value unit) or cron(fields)")
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Rate returns the period of s if s is a rate expression.
func Rate(s Schedule) (time.Duration, bool) {
	r, ok := s.(*rateSchedule)
	if !ok {
		return 0, false
	}
	return r.period, true
}

// splitSpaces splits s into the fields separated by one or more spaces. It
// refuses leading or trailing spaces and an empty s.
func splitSpaces(s string) ([]string, bool) {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return nil, false
	}
	var out []string
	for _, f := range strings.Split(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// asciiUpper upper-cases ASCII letters only, so that no non-ASCII letter can
// turn into a valid name (strings.ToUpper maps "ſ" to "S").
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// ---- rate ----

type rateSchedule struct {
	expr   string
	period time.Duration
}

func (r *rateSchedule) String() string { return r.expr }

// Next returns t + period. It returns false only if that overflows.
func (r *rateSchedule) Next(t time.Time) (time.Time, bool) {
	t = t.UTC()
	n := t.Add(r.period)
	if !n.After(t) {
		return time.Time{}, false
	}
	return n, true
}

func parseRate(expr, inner string) (*rateSchedule, *Error) {
	f, ok := splitSpaces(inner)
	if !ok || len(f) != 2 {
		return nil, invalid("rate expression must be rate(value unit)")
	}
	if !isDigits(f[0]) {
		return nil, invalid("rate value %q is not a positive integer", f[0])
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return nil, invalid("rate value %q is out of range", f[0])
	}
	if n == 0 {
		return nil, invalid("rate value must be positive")
	}
	var unit time.Duration
	plural := false
	switch f[1] {
	case "minute":
		unit = time.Minute
	case "minutes":
		unit, plural = time.Minute, true
	case "hour":
		unit = time.Hour
	case "hours":
		unit, plural = time.Hour, true
	case "day":
		unit = 24 * time.Hour
	case "days":
		unit, plural = 24*time.Hour, true
	default:
		return nil, invalid("rate unit %q is not minute(s), hour(s) or day(s)", f[1])
	}
	if n == 1 && plural {
		return nil, invalid("rate value 1 needs the singular unit, not %q", f[1])
	}
	if n > 1 && !plural {
		return nil, invalid("rate value %d needs the plural unit, not %q", n, f[1])
	}
	if n > math.MaxInt64/int64(unit) {
		return nil, invalid("rate period %d %s is too long", n, f[1])
	}
	return &rateSchedule{expr: expr, period: time.Duration(n) * unit}, nil
}
