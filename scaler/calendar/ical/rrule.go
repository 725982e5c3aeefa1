package ical

import (
	"slices"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// expandRule calls fn with the wall-clock start of every occurrence of the
// event's RRULE (DTSTART first) that starts after lo − slack and up to hi,
// honouring COUNT and UNTIL. It computes in wall-clock time so that a
// weekly 19:00 stays 19:00 across DST; the caller places each in the zone.
func expandRule(ev *event, zone *time.Location, lo, hi time.Time, budget *steps, fn func(time.Time)) error {
	r := ev.rule
	s := ev.start.wall
	w := ruleWalk{
		rule:     r,
		interval: max(r.Interval, 1),
		start:    s,
		zone:     zone,
		// Two days of slack for any zone offset.
		loWall: wallOf(lo.In(zone)).Add(-48 * time.Hour),
		hiWall: wallOf(hi.In(zone)).Add(48 * time.Hour),
	}
	w.untilWall, w.untilInstant = ruleUntil(ev)
	w.try(s, fn) // DTSTART is the first occurrence

	k, ended, err := w.firstPeriod(budget)
	if err != nil || ended {
		return err
	}
	times := timesOfDay(r, s)
	dates := dateFilter{r: r, s: s}
	for ; !w.stop; k++ {
		past, err := w.walkPeriod(dates, times, k*w.interval, budget, fn)
		if err != nil || past {
			return err
		}
	}
	return nil
}

// ruleWalk is one walk along an RRULE's occurrences, in wall-clock time:
// where it stops and how many occurrences it has counted.
type ruleWalk struct {
	rule     *rrule.ROption
	interval int
	start    time.Time // DTSTART, wall clock
	zone     *time.Location
	// untilWall or untilInstant is UNTIL, by how it was written.
	untilWall, untilInstant time.Time
	// loWall and hiWall bound the span on the wall clock.
	loWall, hiWall time.Time
	counted        int
	stop           bool
}

// ruleUntil returns the RRULE's UNTIL as a wall-clock time or as an
// instant (the other zero): an instant when it or DTSTART is UTC; a DATE
// UNTIL on a timed event covers that whole day.
func ruleUntil(ev *event) (wall, instant time.Time) {
	until := ev.rule.Until
	switch {
	case until.IsZero():
		return time.Time{}, time.Time{}
	case ev.start.isUTC:
		return time.Time{}, until
	case strings.HasSuffix(strings.ToUpper(ev.untilRaw), "Z"):
		return time.Time{}, until
	case !ev.start.isDate && len(ev.untilRaw) == 8:
		return until.Add(24*time.Hour - time.Second), time.Time{}
	default:
		return until, time.Time{}
	}
}

// try counts the occurrence that starts at wall and passes it to fn when
// it is in the span; it stops the walk at UNTIL, past the span, or when
// COUNT occurrences are counted. (fn is no field: a func kept in the
// struct would be moved to the heap with its captures.)
func (w *ruleWalk) try(wall time.Time, fn func(time.Time)) {
	if w.stop {
		return
	}
	if !w.untilWall.IsZero() && wall.After(w.untilWall) {
		w.stop = true
		return
	}
	if !w.untilInstant.IsZero() && resolve(wall, w.zone).After(w.untilInstant) {
		w.stop = true
		return
	}
	if wall.After(w.hiWall) {
		w.stop = true
		return
	}
	w.counted++
	if !wall.Before(w.loWall) {
		fn(wall)
	}
	if w.rule.Count > 0 && w.counted >= w.rule.Count {
		w.stop = true
	}
}

// firstPeriod returns the index of the first period worth listing; ended
// when the series ended before the span. Periods that end before the span
// are skipped: at once for a rule without COUNT; for one with COUNT when
// each period's occurrences can be counted without listing them (no BY*
// parts), from which the occurrences before the span are known.
func (w *ruleWalk) firstPeriod(budget *steps) (k int, ended bool, err error) {
	r := w.rule
	switch {
	case r.Count == 0:
		return jumpTo(r.Freq, w.start, w.loWall, w.interval, r.Wkst.Day()), false, nil
	case !hasByParts(r):
		k := jumpTo(r.Freq, w.start, w.loWall, w.interval, r.Wkst.Day())
		before, err := periodsWithAnOccurrence(r.Freq, w.start, w.interval, k, budget)
		if err != nil {
			return 0, false, err
		}
		w.counted = max(before, 1) // period 0 holds DTSTART, counted above
		return k, w.counted >= r.Count, nil
	}
	return 0, false, nil
}

// walkPeriod tries the occurrences of the period `offset` frequency units
// after DTSTART's, in order, BYSETPOS applied; past when the period begins
// after the span. Each period costs a step, and each candidate start one
// more.
func (w *ruleWalk) walkPeriod(dates dateFilter, times []time.Duration, offset int, budget *steps, fn func(time.Time)) (past bool, err error) {
	if err := budget.take(1); err != nil {
		return false, err
	}
	days, periodStart := dates.period(offset)
	if periodStart.After(w.hiWall) {
		return true, nil
	}
	if err := budget.take(len(days) * len(times)); err != nil {
		return false, err
	}
	var set []time.Time
	for _, d := range days {
		for _, tod := range times {
			set = append(set, d.Add(tod))
		}
	}
	set = applySetPos(set, w.rule.Bysetpos)
	for _, wall := range set {
		if !wall.After(w.start) {
			continue // before DTSTART, or DTSTART itself (already counted)
		}
		w.try(wall, fn)
		if w.stop {
			break
		}
	}
	return false, nil
}

// timesOfDay are the clock times of each occurrence day, sorted.
func timesOfDay(r *rrule.ROption, s time.Time) []time.Duration {
	hours := r.Byhour
	if len(hours) == 0 {
		hours = []int{s.Hour()}
	}
	mins := r.Byminute
	if len(mins) == 0 {
		mins = []int{s.Minute()}
	}
	var out []time.Duration
	for _, h := range hours {
		for _, m := range mins {
			out = append(out, time.Duration(h)*time.Hour+time.Duration(m)*time.Minute+time.Duration(s.Second())*time.Second)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func applySetPos(set []time.Time, pos []int) []time.Time {
	slices.SortFunc(set, func(a, b time.Time) int { return a.Compare(b) })
	set = slices.CompactFunc(set, func(a, b time.Time) bool { return a.Equal(b) })
	if len(pos) == 0 {
		return set
	}
	var out []time.Time
	for _, p := range pos {
		i := p - 1
		if p < 0 {
			i = len(set) + p
		}
		if i >= 0 && i < len(set) && p != 0 {
			out = append(out, set[i])
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// pyWeekday converts a time.Weekday to rrule's Monday=0 numbering.
func pyWeekday(w time.Weekday) int { return (int(w) + 6) % 7 }

// jumpTo returns the first period index worth computing: periods that end
// before loWall cannot matter.
func jumpTo(freq rrule.Frequency, s, loWall time.Time, interval, wkst int) int {
	if !loWall.After(s) {
		return 0
	}
	// Whole days by Unix seconds: a time.Duration saturates at 292 years,
	// and a DTSTART may be in year one.
	days := int((loWall.Unix() - s.Unix()) / (24 * 60 * 60))
	var n int
	switch freq {
	case rrule.DAILY:
		n = days / interval
	case rrule.WEEKLY:
		n = days / 7 / interval
	case rrule.MONTHLY:
		n = ((loWall.Year()-s.Year())*12 + int(loWall.Month()) - int(s.Month())) / interval
	case rrule.YEARLY:
		n = (loWall.Year() - s.Year()) / interval
	}
	return max(n-1, 0)
}
