package schedule

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Year range of the cron Year field.
const (
	minYear = 1970
	maxYear = 2199
)

// bitset is a set of small non-negative integers (0..255).
type bitset [4]uint64

func (b *bitset) add(i int) { b[i>>6] |= 1 << (i & 63) }

// next returns the smallest member >= i, or -1 if there is none.
func (b *bitset) next(i int) int {
	if i < 0 {
		i = 0
	}
	for w := i >> 6; w < len(b); w++ {
		word := b[w]
		if w == i>>6 {
			word &= ^uint64(0) << (i & 63)
		}
		if word != 0 {
			return w<<6 + bits.TrailingZeros64(word)
		}
	}
	return -1
}

// fieldSpec describes one cron field. Values are stored in a bitset at
// value-base (base is 1970 for the Year field and 0 otherwise).
type fieldSpec struct {
	name     string
	min, max int
	base     int
	names    map[string]int
}

var (
	minuteField = fieldSpec{name: "Minutes", min: 0, max: 59}
	hourField   = fieldSpec{name: "Hours", min: 0, max: 23}
	domField    = fieldSpec{name: "Day-of-month", min: 1, max: 31}
	monthField  = fieldSpec{name: "Month", min: 1, max: 12, names: map[string]int{
		"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
	}}
	dowField = fieldSpec{name: "Day-of-week", min: 1, max: 7, names: map[string]int{
		"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7,
	}}
	yearField = fieldSpec{name: "Year", min: minYear, max: maxYear, base: minYear}
)

// value parses a single value: a decimal number or, where the field has
// names, a (upper-cased) name.
func (f *fieldSpec) value(s string) (int, *Error) {
	if v, ok := f.names[s]; ok {
		return v, nil
	}
	if !isDigits(s) {
		return 0, invalid("%s: %q is not a valid value", f.name, s)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, invalid("%s: %s is out of range %d-%d", f.name, s, f.min, f.max)
	}
	return v, nil
}

// set parses a list of "*", "v", "a-b", "v/step", "*/step" and "a-b/step"
// items separated by commas.
func (f *fieldSpec) set(s string) (bitset, *Error) {
	var b bitset
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return b, invalid("%s: empty item in list %q", f.name, s)
		}
		rng, stepStr, hasStep := strings.Cut(item, "/")
		var lo, hi int
		if rng == "*" {
			lo, hi = f.min, f.max
		} else {
			a, z, isRange := strings.Cut(rng, "-")
			var err *Error
			if lo, err = f.value(a); err != nil {
				return b, err
			}
			switch {
			case isRange:
				if hi, err = f.value(z); err != nil {
					return b, err
				}
				if hi < lo {
					return b, invalid("%s: range %q runs backwards", f.name, rng)
				}
			case hasStep:
				hi = f.max
			default:
				hi = lo
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if !isDigits(stepStr) || err != nil || n < 1 || n > f.max-f.min+1 {
				return b, invalid("%s: increment %q must be between 1 and %d", f.name, stepStr, f.max-f.min+1)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			b.add(v - f.base)
		}
	}
	return b, nil
}

type domKind uint8

const (
	domAny            domKind = iota // ?
	domSet                           // list of days
	domLast                          // L
	domLastWeekday                   // LW
	domNearestWeekday                // nW
)

type dowKind uint8

const (
	dowAny  dowKind = iota // ?
	dowSet                 // list of weekdays (L alone is 7)
	dowLast                // nL: last weekday n of the month
	dowNth                 // n#k: k-th weekday n of the month
)

type cronSchedule struct {
	expr    string
	minutes bitset // 0-59
	hours   bitset // 0-23
	months  bitset // 1-12
	years   bitset // year-1970
	domKind domKind
	dom     bitset // days 1-31, for domSet
	domDay  int    // n, for domNearestWeekday
	dowKind dowKind
	dow     bitset // 1 (SUN) - 7 (SAT), for dowSet
	dowDay  int    // n (1 SUN - 7 SAT), for dowLast and dowNth
	dowNth  int    // k, for dowNth
}

func (c *cronSchedule) String() string { return c.expr }

func parseCron(expr, inner string) (*cronSchedule, *Error) {
	f, ok := splitSpaces(inner)
	if !ok || len(f) != 6 {
		return nil, invalid("cron expression must have exactly 6 fields separated by spaces")
	}
	for i := range f {
		f[i] = asciiUpper(f[i])
	}
	c := &cronSchedule{expr: expr}
	var err *Error
	if c.minutes, err = minuteField.set(f[0]); err != nil {
		return nil, err
	}
	if c.hours, err = hourField.set(f[1]); err != nil {
		return nil, err
	}
	if err = c.parseDOM(f[2]); err != nil {
		return nil, err
	}
	if c.months, err = monthField.set(f[3]); err != nil {
		return nil, err
	}
	if err = c.parseDOW(f[4]); err != nil {
		return nil, err
	}
	if c.years, err = yearField.set(f[5]); err != nil {
		return nil, err
	}
	if (c.domKind == domAny) == (c.dowKind == dowAny) {
		return nil, invalid("exactly one of Day-of-month and Day-of-week must be ?")
	}
	return c, nil
}

func (c *cronSchedule) parseDOM(s string) *Error {
	switch {
	case s == "?":
		c.domKind = domAny
	case s == "L":
		c.domKind = domLast
	case s == "LW":
		c.domKind = domLastWeekday
	case strings.HasSuffix(s, "W"):
		v, err := domField.value(s[:len(s)-1])
		if err != nil {
			return invalid("Day-of-month: %q: W needs a single day before it", s)
		}
		c.domKind, c.domDay = domNearestWeekday, v
	default:
		set, err := domField.set(s)
		if err != nil {
			return err
		}
		c.domKind, c.dom = domSet, set
	}
	return nil
}

func (c *cronSchedule) parseDOW(s string) *Error {
	switch {
	case s == "?":
		c.dowKind = dowAny
	case s == "L":
		c.dowKind = dowSet
		c.dow.add(7)
	case strings.Contains(s, "#"):
		d, k, _ := strings.Cut(s, "#")
		v, err := dowField.value(d)
		if err != nil {
			return invalid("Day-of-week: %q: # needs a single weekday before it", s)
		}
		n, aerr := strconv.Atoi(k)
		if !isDigits(k) || aerr != nil || n < 1 || n > 5 {
			return invalid("Day-of-week: %q: the instance after # must be 1-5", s)
		}
		c.dowKind, c.dowDay, c.dowNth = dowNth, v, n
	case strings.HasSuffix(s, "L"):
		v, err := dowField.value(s[:len(s)-1])
		if err != nil {
			return invalid("Day-of-week: %q: L needs a single weekday before it", s)
		}
		c.dowKind, c.dowDay = dowLast, v
	default:
		set, err := dowField.set(s)
		if err != nil {
			return err
		}
		c.dowKind, c.dow = dowSet, set
	}
	return nil
}

func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// days returns the days of month m of year y on which c fires, as a mask
// with bit d set for day d.
func (c *cronSchedule) days(y int, m time.Month) uint64 {
	n := daysIn(y, m)
	wd1 := int(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()) // 0 = Sunday
	weekday := func(d int) time.Weekday { return time.Weekday((wd1 + d - 1) % 7) }
	var mask uint64
	switch c.domKind {
	case domSet:
		mask = c.dom[0] & (uint64(1)<<(n+1) - 1)
	case domLast:
		mask = 1 << n
	case domLastWeekday:
		d := n
		switch weekday(d) {
		case time.Saturday:
			d--
		case time.Sunday:
			d -= 2
		}
		mask = 1 << d
	case domNearestWeekday:
		d := c.domDay
		if d > n {
			return 0 // like plain day n, months without that day are skipped
		}
		switch weekday(d) {
		case time.Saturday:
			if d == 1 {
				d = 3 // stay within the month: Monday the 3rd
			} else {
				d--
			}
		case time.Sunday:
			if d == n {
				d -= 2 // stay within the month: the Friday before
			} else {
				d++
			}
		}
		mask = 1 << d
	}
	switch c.dowKind {
	case dowSet:
		for d := 1; d <= n; d++ {
			if c.dow[0]&(1<<(int(weekday(d))+1)) != 0 {
				mask |= 1 << d
			}
		}
	case dowLast:
		target := c.dowDay - 1 // 0 = Sunday
		d := n - (int(weekday(n))-target+7)%7
		mask = 1 << d
	case dowNth:
		target := c.dowDay - 1
		d := 1 + (target-wd1+7)%7 + 7*(c.dowNth-1)
		if d <= n {
			mask = 1 << d
		}
	}
	return mask
}

// timeOfDay returns the first matching hour and minute at or after h0:m0.
func (c *cronSchedule) timeOfDay(h0, m0 int) (int, int, bool) {
	for h := c.hours.next(h0); h >= 0; h = c.hours.next(h + 1) {
		from := 0
		if h == h0 {
			from = m0
		}
		if mi := c.minutes.next(from); mi >= 0 {
			return h, mi, true
		}
	}
	return 0, 0, false
}

var firstCronTime = time.Date(minYear, time.January, 1, 0, 0, 0, 0, time.UTC)

// Next returns the first matching minute (at second 0) strictly after t. It
// walks the matching years, months and days, and only then hours and minutes
// within a matching day, so it never scans minute by minute.
func (c *cronSchedule) Next(t time.Time) (time.Time, bool) {
	t = t.UTC()
	start := firstCronTime
	if !t.Before(start) {
		if t.Year() > maxYear {
			return time.Time{}, false
		}
		start = t.Truncate(time.Minute).Add(time.Minute)
	}
	sy, smon, sd := start.Date()
	sm := int(smon)
	sh, smin := start.Hour(), start.Minute()
	for yi := c.years.next(sy - minYear); yi >= 0; yi = c.years.next(yi + 1) {
		y := minYear + yi
		mFrom := 1
		if y == sy {
			mFrom = sm
		}
		for m := c.months.next(mFrom); m >= 0; m = c.months.next(m + 1) {
			dFrom := 1
			if y == sy && m == sm {
				dFrom = sd
			}
			mask := c.days(y, time.Month(m)) &^ (uint64(1)<<dFrom - 1)
			for mask != 0 {
				d := bits.TrailingZeros64(mask)
				mask &= mask - 1
				h0, m0 := 0, 0
				if y == sy && m == sm && d == sd {
					h0, m0 = sh, smin
				}
				if h, mi, ok := c.timeOfDay(h0, m0); ok {
					return time.Date(y, time.Month(m), d, h, mi, 0, 0, time.UTC), true
				}
			}
		}
	}
	return time.Time{}, false
}
