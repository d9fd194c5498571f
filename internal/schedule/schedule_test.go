package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

// TestCalendarFacts pins the weekdays the hand-computed expectations below
// rely on. The time package is used here only as a calendar.
func TestCalendarFacts(t *testing.T) {
	facts := map[string]time.Weekday{
		"2026-11-25": time.Wednesday, // the reference "now"
		"2026-11-27": time.Friday,    // last Friday of Nov 2026
		"2026-11-28": time.Saturday,
		"2026-11-30": time.Monday, // last day of Nov 2026, a weekday
		"2026-12-01": time.Tuesday,
		"2026-12-07": time.Monday, // first Monday of Dec 2026
		"2026-12-25": time.Friday, // last Friday of Dec 2026
		"2026-12-31": time.Thursday,
		"2027-01-01": time.Friday,
		"2027-01-04": time.Monday, // first Monday of Jan 2027
		"2027-01-29": time.Friday, // 5th and last Friday of Jan 2027
		"2027-01-31": time.Sunday, // so LW / 31W -> Friday 29th
		"2027-02-26": time.Friday,
		"2027-02-28": time.Sunday, // so LW -> Friday 26th
		"2027-03-31": time.Wednesday,
		"2027-04-01": time.Thursday,
		"2027-05-01": time.Saturday, // so 1W -> Monday 3rd
		"2027-05-03": time.Monday,
		"2027-05-14": time.Friday,
		"2027-05-15": time.Saturday, // so 15W -> Friday 14th
		"2027-05-31": time.Monday,
		"2027-06-15": time.Tuesday,
		"2027-07-15": time.Thursday,
		"2027-07-30": time.Friday,
		"2027-07-31": time.Saturday, // so 31W -> Friday 30th
		"2027-08-01": time.Sunday,   // so 1W -> Monday 2nd
		"2027-08-15": time.Sunday,   // so 15W -> Monday 16th
		"2027-08-16": time.Monday,
		"2027-12-31": time.Friday, // last Friday of 2027
		"2028-02-29": time.Tuesday,
	}
	for d, want := range facts {
		got, err := time.Parse("2006-01-02", d)
		if err != nil {
			t.Fatal(err)
		}
		if got.Weekday() != want {
			t.Errorf("%s is a %v, the tests assume %v", d, got.Weekday(), want)
		}
	}
}

type nextCase struct {
	expr string
	from string
	// want holds the expected results of consecutive Next calls, each from
	// the previous result.
	want []string
	// thenNone: after the last want, Next must report no further fire time.
	thenNone bool
}

const now = "2026-11-25T13:37:00Z" // a Wednesday

var nextCases = []nextCase{
	// rate: Next(t) = t + period
	{expr: "rate(1 minute)", from: now, want: []string{"2026-11-25T13:38:00Z", "2026-11-25T13:39:00Z"}},
	{expr: "rate(5 minutes)", from: now, want: []string{"2026-11-25T13:42:00Z", "2026-11-25T13:47:00Z"}},
	{expr: "rate(1 hour)", from: now, want: []string{"2026-11-25T14:37:00Z"}},
	{expr: "rate(2 hours)", from: now, want: []string{"2026-11-25T15:37:00Z"}},
	{expr: "rate(1 day)", from: now, want: []string{"2026-11-26T13:37:00Z", "2026-11-27T13:37:00Z"}},
	{expr: "rate(7 days)", from: now, want: []string{"2026-12-02T13:37:00Z"}},
	{expr: "rate(1 minute)", from: "2026-11-25T13:37:42.5Z", want: []string{"2026-11-25T13:38:42.5Z"}},

	// Every day at 12:00: today's is past.
	{expr: "cron(0 12 * * ? *)", from: now, want: []string{"2026-11-26T12:00:00Z", "2026-11-27T12:00:00Z"}},
	// Last Friday of the month, 2026-2027 only; 2027-12-31 is the last one.
	{expr: "cron(15 10 ? * 6L 2026-2027)", from: now,
		want: []string{"2026-11-27T10:15:00Z", "2026-12-25T10:15:00Z", "2027-01-29T10:15:00Z"}},
	{expr: "cron(15 10 ? * 6L 2026-2027)", from: "2027-12-01T00:00:00Z",
		want: []string{"2027-12-31T10:15:00Z"}, thenNone: true},
	// Weekdays at 18:00: Wed, Thu, Fri, then Monday.
	{expr: "cron(0 18 ? * MON-FRI *)", from: now, want: []string{
		"2026-11-25T18:00:00Z", "2026-11-26T18:00:00Z", "2026-11-27T18:00:00Z", "2026-11-30T18:00:00Z"}},
	{expr: "cron(0 8 1 * ? *)", from: now, want: []string{"2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"}},
	{expr: "cron(0/15 * * * ? *)", from: now, want: []string{"2026-11-25T13:45:00Z", "2026-11-25T14:00:00Z", "2026-11-25T14:15:00Z"}},
	{expr: "cron(*/20 * * * ? *)", from: now, want: []string{"2026-11-25T13:40:00Z", "2026-11-25T14:00:00Z"}},
	{expr: "cron(5-40/5 13 * * ? *)", from: now, want: []string{"2026-11-25T13:40:00Z", "2026-11-26T13:05:00Z", "2026-11-26T13:10:00Z"}},
	{expr: "cron(5,35 14 * * ? *)", from: now, want: []string{"2026-11-25T14:05:00Z", "2026-11-25T14:35:00Z", "2026-11-26T14:05:00Z"}},
	{expr: "cron(0/10 * ? * MON-FRI *)", from: "2026-11-27T23:55:00Z", want: []string{"2026-11-30T00:00:00Z", "2026-11-30T00:10:00Z"}},
	// First Monday of the month.
	{expr: "cron(0 9 ? * 2#1 *)", from: now, want: []string{"2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"}},
	// Fifth Friday: Nov and Dec 2026 have four Fridays, Jan 2027 five.
	{expr: "cron(0 9 ? * FRI#5 *)", from: now, want: []string{"2027-01-29T09:00:00Z"}},
	// Last day of the month, leap and non-leap Februaries.
	{expr: "cron(0 0 L * ? *)", from: now, want: []string{
		"2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z"}},
	{expr: "cron(0 0 L 2 ? *)", from: now, want: []string{"2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z"}},
	// Last weekday: Nov 30 is a Monday, Dec 31 a Thursday, Jan 31 and
	// Feb 28 2027 are Sundays.
	{expr: "cron(0 0 LW * ? *)", from: now, want: []string{
		"2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z"}},
	// Nearest weekday to the 15th: May 15 2027 is a Saturday (-> Fri 14),
	// Aug 15 2027 a Sunday (-> Mon 16).
	{expr: "cron(0 0 15W * ? *)", from: "2027-04-20T00:00:00Z", want: []string{
		"2027-05-14T00:00:00Z", "2027-06-15T00:00:00Z", "2027-07-15T00:00:00Z", "2027-08-16T00:00:00Z"}},
	// The 1st as a Saturday gives Monday the 3rd (never the previous
	// month); as a Sunday, Monday the 2nd.
	{expr: "cron(0 0 1W * ? *)", from: "2027-04-02T00:00:00Z", want: []string{
		"2027-05-03T00:00:00Z", "2027-06-01T00:00:00Z", "2027-07-01T00:00:00Z", "2027-08-02T00:00:00Z"}},
	// 31W: months without a 31st are skipped; a Sunday 31st gives Friday
	// the 29th, a Saturday 31st Friday the 30th (never the next month).
	{expr: "cron(0 0 31W * ? *)", from: now, want: []string{
		"2026-12-31T00:00:00Z", "2027-01-29T00:00:00Z", "2027-03-31T00:00:00Z", "2027-05-31T00:00:00Z", "2027-07-30T00:00:00Z"}},
	// Feb 29: found in the next leap years.
	{expr: "cron(0 0 29 2 ? *)", from: now, want: []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"}},
	{expr: "cron(0 0 29 2 ? *)", from: "2096-03-01T00:00:00Z", want: []string{"2104-02-29T00:00:00Z"}}, // 2100 is not a leap year
	{expr: "cron(0 0 29 2 ? *)", from: "2196-03-01T00:00:00Z", thenNone: true},
	// A single year in the future, and nothing after it.
	{expr: "cron(0 10 * * ? 2027)", from: now, want: []string{"2027-01-01T10:00:00Z", "2027-01-02T10:00:00Z"}},
	{expr: "cron(0 10 * * ? 2027)", from: "2027-12-31T09:59:59Z", want: []string{"2027-12-31T10:00:00Z"}, thenNone: true},
	{expr: "cron(0 0 1 * ? 1970-1980)", from: now, thenNone: true},
	{expr: "cron(0 0 1 1 ? */100)", from: now, want: []string{"2070-01-01T00:00:00Z", "2170-01-01T00:00:00Z"}, thenNone: true},
	// Never fires in 1970-2199.
	{expr: "cron(0 0 31 2 ? *)", from: now, thenNone: true},
	{expr: "cron(0 0 30 FEB ? *)", from: "1970-01-01T00:00:00Z", thenNone: true},
	{expr: "cron(0 0 31 4,6,9,11 ? *)", from: now, thenNone: true},
	// L alone in Day-of-week is Saturday.
	{expr: "cron(0 0 ? * L *)", from: now, want: []string{"2026-11-28T00:00:00Z", "2026-12-05T00:00:00Z"}},
	// Increments in Day-of-week: SUN(1), WED(4), SAT(7).
	{expr: "cron(0 0 ? * 1/3 *)", from: now, want: []string{"2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-02T00:00:00Z"}},
	// Increments in Month: JAN, APR, JUL, OCT.
	{expr: "cron(0 0 1 1/3 ? *)", from: now, want: []string{"2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z"}},
	{expr: "cron(0 0 1-31/10 * ? *)", from: now, want: []string{"2026-12-01T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-21T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"}},
	// Case-insensitive names and wildcards, multiple spaces.
	{expr: "cron(0 18 ? * mon-Fri *)", from: now, want: []string{"2026-11-25T18:00:00Z", "2026-11-26T18:00:00Z", "2026-11-27T18:00:00Z", "2026-11-30T18:00:00Z"}},
	{expr: "cron(0 0 1 jan,Jul ? *)", from: now, want: []string{"2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"}},
	{expr: "cron(15 10 ? * 6l 2026-2027)", from: now, want: []string{"2026-11-27T10:15:00Z"}},
	{expr: "cron(15 10 ? * fril *)", from: now, want: []string{"2026-11-27T10:15:00Z"}},
	{expr: "cron(0 9 ? * mon#1 *)", from: now, want: []string{"2026-12-07T09:00:00Z"}},
	{expr: "cron(0 0 lw * ? *)", from: now, want: []string{"2026-11-30T00:00:00Z"}},
	{expr: "cron(0 0 15w * ? *)", from: "2027-04-20T00:00:00Z", want: []string{"2027-05-14T00:00:00Z"}},
	{expr: "cron(0  12   *  * ?     *)", from: now, want: []string{"2026-11-26T12:00:00Z"}},
	// Strictly after t; seconds are dropped; the result is always at
	// second 0 and in UTC, whatever t's location.
	{expr: "cron(* * * * ? *)", from: now, want: []string{"2026-11-25T13:38:00Z", "2026-11-25T13:39:00Z"}},
	{expr: "cron(* * * * ? *)", from: "2026-11-25T13:37:59.999Z", want: []string{"2026-11-25T13:38:00Z"}},
	{expr: "cron(37 13 * * ? *)", from: "2026-11-25T13:36:59Z", want: []string{"2026-11-25T13:37:00Z", "2026-11-26T13:37:00Z"}},
	{expr: "cron(0 12 * * ? *)", from: "2026-11-25T11:30:00-05:00", want: []string{"2026-11-26T12:00:00Z"}}, // 16:30 UTC
	{expr: "cron(0 0 1 1 ? *)", from: "2026-12-31T23:59:00Z", want: []string{"2027-01-01T00:00:00Z"}},
	{expr: "cron(59 23 31 12 ? 2199)", from: now, want: []string{"2199-12-31T23:59:00Z"}, thenNone: true},
	// Before 1970: the first match in 1970.
	{expr: "cron(0 0 1 1 ? *)", from: "1960-06-01T00:00:00Z", want: []string{"1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z"}},
	// After 2199: none.
	{expr: "cron(* * * * ? *)", from: "2200-01-01T00:00:00Z", thenNone: true},
	{expr: "cron(* * * * ? *)", from: "2199-12-31T23:59:00Z", thenNone: true},
}

func TestNext(t *testing.T) {
	for _, tc := range nextCases {
		s, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v (%s)", tc.expr, err, err.(*Error).Detail)
			continue
		}
		if s.String() != tc.expr {
			t.Errorf("Parse(%q).String() = %q", tc.expr, s.String())
		}
		at := mustTime(t, tc.from)
		for i, w := range tc.want {
			got, ok := s.Next(at)
			want := mustTime(t, w)
			if !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%s: Next #%d from %s = %v, %v; want %s", tc.expr, i+1, at.Format(time.RFC3339Nano), got, ok, w)
				break
			}
			at = got
		}
		if tc.thenNone {
			if got, ok := s.Next(at); ok {
				t.Errorf("%s: Next from %s = %v; want none", tc.expr, at.Format(time.RFC3339), got)
			}
		}
	}
}

func TestRate(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"rate(1 minute)":    time.Minute,
		"rate(5 minutes)":   5 * time.Minute,
		"rate(1 hour)":      time.Hour,
		"rate(12 hours)":    12 * time.Hour,
		"rate(1 day)":       24 * time.Hour,
		"rate(30 days)":     30 * 24 * time.Hour,
		"rate(5  minutes)":  5 * time.Minute,
		"rate(100 minutes)": 100 * time.Minute,
	} {
		s, err := Parse(expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", expr, err)
			continue
		}
		if got, ok := Rate(s); !ok || got != want {
			t.Errorf("Rate(%q) = %v, %v; want %v", expr, got, ok, want)
		}
	}
	s, err := Parse("cron(0 12 * * ? *)")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := Rate(s); ok {
		t.Errorf("Rate(cron) = %v, true; want false", d)
	}
}

func TestInvalid(t *testing.T) {
	bad := []string{
		"", "foo", "rate", "cron", "rate()", "cron()",
		// rate
		"rate(0 minutes)", "rate(0 minute)", "rate(1 minutes)", "rate(2 minute)", "rate(5 hour)", "rate(1 hours)",
		"rate(1 days)", "rate(3 day)", "rate(1 week)", "rate(2 weeks)", "rate(1 second)", "rate(30 seconds)",
		"rate(-1 days)", "rate(+1 day)", "rate(1.5 hours)", "rate(1e3 minutes)", "rate(0x10 minutes)",
		"rate(1 minute", "rate 1 minute)", "rate(1minute)", "rate(minutes)", "rate(5)", "rate(5 minutes extra)",
		"rate( 5 minutes)", "rate(5 minutes )", "rate(5\tminutes)", " rate(5 minutes)", "rate(5 minutes) ",
		"rate(99999999999999999999 minutes)", "rate(9223372036854775807 days)",
		// cron: Day-of-month / Day-of-week
		"cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(0 12 1 * MON *)", "cron(0 12 * * MON *)",
		"cron(0 12 1 * 2#1 *)", "cron(0 12 L * 6L *)", "cron(0 0 ?/2 * ? *)", "cron(0 0 1,? * ? *)",
		"cron(? 0 1 * ? *)", "cron(0 0 1 ? ? *)", "cron(0 0 1 * ? ?)",
		// cron: ranges of values
		"cron(60 * * * ? *)", "cron(0 24 * * ? *)", "cron(0 0 32 * ? *)", "cron(0 0 0 * ? *)",
		"cron(0 0 1 13 ? *)", "cron(0 0 1 0 ? *)", "cron(0 0 ? * 8 *)", "cron(0 0 ? * 0 *)",
		"cron(0 0 1 * ? 1969)", "cron(0 0 1 * ? 2200)", "cron(0 0 1 * ? 1970-2200)",
		"cron(-1 0 1 * ? *)", "cron(+1 0 1 * ? *)", "cron(0 0 1 JANUARY ? *)", "cron(0 0 1 FOO ? *)",
		"cron(0 0 ? * MON-FOO *)", "cron(0 0 MON * ? *)", "cron(0 0 ? JAN-MON ? *)", "cron(0 0 ? * JAN *)",
		// cron: field count and shape
		"cron(0 0 1 * ?)", "cron(0 0 1 * ? * *)", "cron(0 0 1 * ? *", "cron 0 0 1 * ? *)",
		"cron( 0 0 1 * ? *)", "cron(0 0 1 * ? * )", "cron(0\t0 1 * ? *)", "CRON(0 0 1 * ? *)",
		"cron(0 0 1 * ? *) ", "cron(0 0 1 * ? *)x",
		// cron: lists, ranges, increments
		"cron(, 0 1 * ? *)", "cron(1,,2 0 1 * ? *)", "cron(1, 0 1 * ? *)", "cron(0 0 5-1 * ? *)",
		"cron(0 0 ? * FRI-MON *)", "cron(0 0 1 DEC-JAN ? *)", "cron(0 0 1 * ? 2030-2020)", "cron(1-2-3 0 1 * ? *)",
		"cron(*/0 * * * ? *)", "cron(0/0 * * * ? *)", "cron(0/61 * * * ? *)", "cron(0/ * * * ? *)",
		"cron(/5 * * * ? *)", "cron(0/5/5 * * * ? *)", "cron(0/-5 * * * ? *)", "cron(0/+5 * * * ? *)",
		"cron(*-5 * * * ? *)", "cron(** * * * ? *)", "cron(0 0 1 * ? */0)",
		// cron: L, W, #
		"cron(0 0 L-3 * ? *)", "cron(0 0 L-3W * ? *)", "cron(0 0 W * ? *)", "cron(0 0 32W * ? *)", "cron(0 0 0W * ? *)",
		"cron(0 0 1-5W * ? *)", "cron(0 0 1,15W * ? *)", "cron(0 0 15W,1 * ? *)", "cron(0 0 L,15 * ? *)",
		"cron(0 0 WL * ? *)", "cron(0 0 LL * ? *)", "cron(0 0 3L * ? *)", "cron(L 0 1 * ? *)", "cron(0 0 1 L ? *)",
		"cron(0 0 ? * 2W *)", "cron(0 0 ? * LW *)", "cron(0 0 ? * 8L *)", "cron(0 0 ? * 6L,2 *)", "cron(0 0 ? * 2-6L *)",
		"cron(0 0 ? * 2#6 *)", "cron(0 0 ? * 2#0 *)", "cron(0 0 ? * 8#1 *)", "cron(0 0 ? * #1 *)", "cron(0 0 ? * 2# *)",
		"cron(0 0 ? * 2#1,3#2 *)", "cron(0 0 ? * 2#1#1 *)", "cron(0 0 ? * 2-3#1 *)", "cron(0 0 ? * L#1 *)",
		"cron(0 0 1# * ? *)", "cron(0 0 ? * *#1 *)", "cron(0 0 ? * 2#1L *)",
		// non-ASCII letters must not fold into names
		"cron(0 0 ? * ſun *)",
	}
	for _, expr := range bad {
		s, err := Parse(expr)
		if err == nil {
			t.Errorf("Parse(%q) = %v, nil; want an error", expr, s)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error %T, want *Error", expr, err)
			continue
		}
		if err.Error() != "Parameter ScheduleExpression is not valid." {
			t.Errorf("Parse(%q) error message %q", expr, err.Error())
		}
		if e.Detail == "" {
			t.Errorf("Parse(%q): empty Detail", expr)
		}
	}
}

func TestValid(t *testing.T) {
	good := []string{
		"rate(1 minute)", "rate(2 minutes)", "rate(1 hour)", "rate(24 hours)", "rate(1 day)", "rate(365 days)",
		"cron(0 10 * * ? *)", "cron(15 12 * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)",
		"cron(0/15 * * * ? *)", "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 9 ? * 2#1 *)",
		"cron(15 10 ? * 6L 2002-2005)", "cron(0 0 L * ? *)", "cron(0 0 LW * ? *)", "cron(0 0 3W * ? *)",
		"cron(0 0 ? * L *)", "cron(0 0 ? * SAT#5 *)", "cron(0 0 ? * SUN-SAT *)", "cron(0 0 1 JAN-DEC ? 1970-2199)",
		"cron(0-59 0-23 1-31 1-12 ? *)", "cron(59 23 31 12 ? 2199)", "cron(0 0 1 * ? 1970)",
		"cron(0,15,30,45 * * * ? *)", "cron(1-5,10-20/2,*/30 * * * ? *)", "cron(0 0 ? * MON,WED,FRI *)",
		"cron(0 0 ? * 2-6/2 *)", "cron(0 0 1 */2 ? */4)",
	}
	for _, expr := range good {
		if _, err := Parse(expr); err != nil {
			t.Errorf("Parse(%q): %v (%s)", expr, err, err.(*Error).Detail)
		}
	}
}

// TestNextFast checks that Next jumps over the calendar instead of scanning
// minutes: each call below would cover up to 230 years.
func TestNextFast(t *testing.T) {
	exprs := []string{
		"cron(0 0 31 2 ? *)", "cron(0 0 30 FEB ? *)", "cron(0 0 29 2 ? *)",
		"cron(0 0 ? 2 1#5 *)", "cron(59 23 31 12 ? 2199)",
	}
	from := mustTime(t, "1970-01-01T00:00:00Z")
	start := time.Now()
	for _, expr := range exprs {
		s, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			s.Next(from)
		}
	}
	// A minute-by-minute scan of 230 years is 1.2e8 steps per call; the
	// calendar walk is ~3000 steps. Allow a generous margin for slow CI.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("500 Next calls took %v", d)
	}
}

func BenchmarkNextNever(b *testing.B) {
	s, err := Parse("cron(0 0 31 2 ? *)")
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		s.Next(from)
	}
}

func BenchmarkNextEveryMinute(b *testing.B) {
	s, err := Parse("cron(* * * * ? *)")
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2026, 11, 25, 13, 37, 0, 0, time.UTC)
	for b.Loop() {
		s.Next(from)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(1 day)", "rate(0 minutes)", "rate(1.5 hours)",
		"cron(0 12 * * ? *)", "cron(15 10 ? * 6L 2026-2027)", "cron(0 18 ? * MON-FRI *)", "cron(0/15 * * * ? *)",
		"cron(0 9 ? * 2#1 *)", "cron(0 0 L * ? *)", "cron(0 0 LW * ? *)", "cron(0 0 15W * ? *)", "cron(0 0 29 2 ? *)",
		"cron(0 0 31 2 ? *)", "cron(5-40/5 * ? * L 1970-2199/7)", "cron(0  0 1 jan,jul ? *)", "cron(0 0 ? * fri#5 *)",
		"cron(0 12 * * * *)", "cron(0 0 L-3 * ? *)", "foo", "",
	}
	for i, s := range seeds {
		f.Add(s, int64(1795613820+i*86400*37)) // 2026-11-25T13:37:00Z onwards
	}
	lo := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	f.Fuzz(func(t *testing.T, expr string, sec int64) {
		s, err := Parse(expr)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || err.Error() != "Parameter ScheduleExpression is not valid." || e.Detail == "" {
				t.Fatalf("Parse(%q): bad error %#v", expr, err)
			}
			if s != nil {
				t.Fatalf("Parse(%q) returned a schedule with an error", expr)
			}
			return
		}
		if s.String() != expr {
			t.Fatalf("String() = %q, want %q", s.String(), expr)
		}
		if !strings.HasPrefix(expr, "rate(") && !strings.HasPrefix(expr, "cron(") {
			t.Fatalf("accepted %q", expr)
		}
		// Map sec into [1950, 2250) to cover before, inside and after the
		// cron year range.
		span := hi - lo
		at := time.Unix(lo+((sec%span)+span)%span, 0).UTC()
		period, isRate := Rate(s)
		prev := at
		for i := 0; i < 5; i++ {
			next, ok := s.Next(prev)
			if !ok {
				if isRate {
					t.Fatalf("%s: rate Next(%v) reported none", expr, prev)
				}
				return
			}
			if !next.After(prev) {
				t.Fatalf("%s: Next(%v) = %v, not after", expr, prev, next)
			}
			if next.Location() != time.UTC {
				t.Fatalf("%s: Next(%v) = %v, not UTC", expr, prev, next)
			}
			if isRate {
				if next.Sub(prev) != period {
					t.Fatalf("%s: Next(%v) = %v, want +%v", expr, prev, next, period)
				}
			} else {
				if next.Second() != 0 || next.Nanosecond() != 0 {
					t.Fatalf("%s: Next(%v) = %v, not at second 0", expr, prev, next)
				}
				if next.Year() < minYear || next.Year() > maxYear {
					t.Fatalf("%s: Next(%v) = %v, outside 1970-2199", expr, prev, next)
				}
				// Next is idempotent between fire times: from any instant in
				// [prev, next) it gives next.
				mid := prev.Add(next.Sub(prev) / 2)
				if again, ok := s.Next(mid); !ok || !again.Equal(next) {
					t.Fatalf("%s: Next(%v) = %v, %v; Next(%v) = %v", expr, mid, again, ok, prev, next)
				}
			}
			prev = next
		}
	})
}
