package ical

import (
	"slices"
	"time"

	"github.com/teambition/rrule-go"
)

type dateFilter struct {
	r *rrule.ROption
	s time.Time
}

// period returns the candidate days (midnight wall-clock) of the period
// `offset` frequency units after DTSTART's, and the period's first day.
func (f dateFilter) period(offset int) ([]time.Time, time.Time) {
	r, s := f.r, f.s
	day0 := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, time.UTC)
	var out []time.Time
	switch r.Freq {
	case rrule.DAILY:
		d := day0.AddDate(0, 0, offset)
		if f.monthOK(d) && f.monthDayOK(d) && f.weekdayOK(d, 0, 0) {
			out = append(out, d)
		}
		return out, d
	case rrule.WEEKLY:
		back := (pyWeekday(day0.Weekday()) - r.Wkst.Day() + 7) % 7
		ws := day0.AddDate(0, 0, -back+7*offset)
		for i := range 7 {
			d := ws.AddDate(0, 0, i)
			if !f.monthOK(d) {
				continue
			}
			if len(r.Byweekday) == 0 {
				if d.Weekday() == s.Weekday() {
					out = append(out, d)
				}
			} else if f.weekdayOK(d, 0, 0) {
				out = append(out, d)
			}
		}
		return out, ws
	case rrule.MONTHLY:
		ms := time.Date(s.Year(), s.Month()+time.Month(offset), 1, 0, 0, 0, 0, time.UTC)
		if !f.monthOK(ms) {
			return nil, ms
		}
		return f.inMonth(ms), ms
	default: // YEARLY
		ys := time.Date(s.Year()+offset, 1, 1, 0, 0, 0, 0, time.UTC)
		if len(r.Bymonth) > 0 {
			for m := 1; m <= 12; m++ {
				if slices.Contains(r.Bymonth, m) {
					out = append(out, f.inMonth(time.Date(ys.Year(), time.Month(m), 1, 0, 0, 0, 0, time.UTC))...)
				}
			}
			return out, ys
		}
		if len(r.Byweekday) == 0 && len(r.Bymonthday) == 0 {
			d := time.Date(ys.Year(), s.Month(), s.Day(), 0, 0, 0, 0, time.UTC)
			if d.Month() == s.Month() { // Feb 29 only in leap years
				out = append(out, d)
			}
			return out, ys
		}
		ylen := time.Date(ys.Year(), 12, 31, 0, 0, 0, 0, time.UTC).YearDay()
		for i := range ylen {
			d := ys.AddDate(0, 0, i)
			if f.monthDayOK(d) && f.weekdayOK(d, i, ylen) {
				out = append(out, d)
			}
		}
		return out, ys
	}
}

// inMonth returns the days of the month starting at ms that the rule picks.
func (f dateFilter) inMonth(ms time.Time) []time.Time {
	r, s := f.r, f.s
	mlen := ms.AddDate(0, 1, -1).Day()
	var out []time.Time
	if len(r.Byweekday) == 0 && len(r.Bymonthday) == 0 {
		if s.Day() <= mlen { // the 31st is skipped in shorter months
			out = append(out, ms.AddDate(0, 0, s.Day()-1))
		}
		return out
	}
	for i := range mlen {
		d := ms.AddDate(0, 0, i)
		if f.monthDayOK(d) && f.weekdayOK(d, i, mlen) {
			out = append(out, d)
		}
	}
	return out
}

func (f dateFilter) monthOK(d time.Time) bool {
	return len(f.r.Bymonth) == 0 || slices.Contains(f.r.Bymonth, int(d.Month()))
}

func (f dateFilter) monthDayOK(d time.Time) bool {
	if len(f.r.Bymonthday) == 0 {
		return true
	}
	mlen := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	for _, md := range f.r.Bymonthday {
		if md == d.Day() || (md < 0 && mlen+md+1 == d.Day()) {
			return true
		}
	}
	return false
}

// weekdayOK checks BYDAY; idx and scopeLen place d in its month or year
// for ordinals such as 2MO or -1FR (scopeLen 0: ordinals ignored).
func (f dateFilter) weekdayOK(d time.Time, idx, scopeLen int) bool {
	if len(f.r.Byweekday) == 0 {
		return true
	}
	wd := pyWeekday(d.Weekday())
	for _, w := range f.r.Byweekday {
		if w.Day() != wd {
			continue
		}
		n := w.N()
		if n == 0 || scopeLen == 0 {
			return true
		}
		if n > 0 && idx/7+1 == n {
			return true
		}
		if n < 0 && (scopeLen-1-idx)/7+1 == -n {
			return true
		}
	}
	return false
}

// hasByParts reports whether the rule has a BY* part: without one, each
// period holds at most one occurrence, at DTSTART's time of day.
func hasByParts(r *rrule.ROption) bool {
	return len(r.Bysetpos) > 0 || len(r.Bymonth) > 0 || len(r.Bymonthday) > 0 || len(r.Byyearday) > 0 ||
		len(r.Byweekno) > 0 || len(r.Byweekday) > 0 || len(r.Byhour) > 0 || len(r.Byminute) > 0 ||
		len(r.Bysecond) > 0 || len(r.Byeaster) > 0
}

// periodsWithAnOccurrence counts, for a rule without BY* parts, the
// periods among the first n that hold an occurrence. Every daily and
// weekly one does; a monthly one on the 29th to 31st skips the shorter
// months and a yearly one on 29 February the common years (RFC 5545: such
// dates are ignored, not counted). Which periods do repeats with the
// Gregorian calendar's 400-year cycle, so the count costs at most one
// cycle's periods, not n.
func periodsWithAnOccurrence(freq rrule.Frequency, s time.Time, interval, n int, budget *steps) (int, error) {
	var cycle int // in frequency units
	var holds func(offset int) bool
	switch {
	case freq == rrule.MONTHLY && s.Day() > 28:
		cycle = 12 // the lengths of the months repeat yearly, but February's
		if s.Day() == 29 {
			cycle = 400 * 12
		}
		holds = func(offset int) bool {
			ms := time.Date(s.Year(), s.Month()+time.Month(offset), 1, 0, 0, 0, 0, time.UTC)
			return ms.AddDate(0, 1, -1).Day() >= s.Day()
		}
	case freq == rrule.YEARLY && s.Month() == time.February && s.Day() == 29:
		cycle = 400
		holds = func(offset int) bool {
			return time.Date(s.Year()+offset, time.February, 29, 0, 0, 0, 0, time.UTC).Day() == 29
		}
	default:
		return n, nil
	}
	period := cycle / gcd(cycle, interval) // periods after which the pattern repeats
	if err := budget.take(min(n, period)); err != nil {
		return 0, err
	}
	inCycle, inRest := 0, 0
	for j := range min(n, period) {
		if holds(j * interval) {
			inCycle++
			if j < n%period {
				inRest++
			}
		}
	}
	if n <= period {
		return inCycle, nil
	}
	return n/period*inCycle + inRest, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
