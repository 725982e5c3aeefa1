package ical

import "time"

// occurrences returns the event's occurrences whose [start, end] may
// overlap [lo, hi]: starts up to hi, ends from lo on, less those in
// removed (replaced by overrides).
func (ev *event) occurrences(tz *time.Location, lo, hi time.Time, removed map[time.Time]bool, budget *steps) ([]occurrence, error) {
	first := ev.start.instant(tz)
	s := &series{ev: ev, tz: tz, zone: ev.start.zoneOf(tz), length: ev.length(tz, first), lo: lo, hi: hi, removed: removed}
	// An override is one occurrence of its own, whatever RRULE it repeats.
	if ev.recurID != nil || (ev.rule == nil && len(ev.rdates) == 0) {
		s.removed = nil // an override stands in for its original
		s.add(first, s.end(ev.start.wall, first))
		return s.out, nil
	}
	// These maps are made here and passed down, not kept in s nor beside a
	// zone: apart from the zone, which the occurrences carry to the heap,
	// they stay on the stack (an expansion runs for every event of every
	// feed copy).
	var ex exclusions
	if len(ev.exdates) > 0 {
		ex.at, ex.days = map[time.Time]bool{}, map[time.Time]bool{}
		ex.read(ev, tz, s.zone)
	}
	// seen holds the wall-clock starts generated: an RDATE that repeats
	// one adds nothing.
	seen := map[time.Time]bool{}
	if err := s.fromRule(budget, ex, seen); err != nil {
		return nil, err
	}
	if err := s.fromRDates(budget, ex, seen); err != nil {
		return nil, err
	}
	return s.out, nil
}

// eventLength is how long an event's occurrences last: whole days, kept in
// wall-clock time across DST, plus an exact duration.
type eventLength struct {
	days  int
	exact time.Duration
}

// length returns the length of ev's occurrences, the first of which starts
// at first. The exact length of a DTEND event is fixed by its first
// occurrence (RFC 5545 3.8.5.3); a DATE event's length is in days.
func (ev *event) length(tz *time.Location, first time.Time) eventLength {
	var n eventLength
	switch ev.endKind {
	case endAt:
		if ev.start.isDate {
			n.days = int(ev.end.wall.Sub(ev.start.wall).Hours() / 24)
		} else {
			n.exact = ev.end.instant(tz).Sub(first)
		}
	case endDuration:
		n.days, n.exact = ev.durDays, ev.durExact
	default:
		if ev.start.isDate {
			n.days = 1
		}
	}
	if n.days < 0 || n.exact < 0 || (n.days == 0 && n.exact == 0 && ev.endKind == endAt && ev.start.isDate) {
		if ev.start.isDate {
			n = eventLength{days: 1}
		} else {
			n = eventLength{}
		}
	}
	return n
}

// longest bounds how long an occurrence of this length can last.
func (n eventLength) longest() time.Duration {
	return time.Duration(n.days+1)*24*time.Hour + n.exact
}

// exclusions are an event's EXDATEs: instants, and whole days of a timed
// series (a DATE EXDATE removes every occurrence on that day in zone). The
// maps are nil for an event without EXDATEs.
type exclusions struct {
	at   map[time.Time]bool
	days map[time.Time]bool
}

// read places ev's EXDATEs in zone (tz for floating times).
func (x exclusions) read(ev *event, tz, zone *time.Location) {
	for _, d := range ev.exdates {
		if d.isDate && !ev.start.isDate {
			x.days[d.wall] = true
			continue
		}
		if d.isDate {
			x.at[resolve(d.wall, zone)] = true
			continue
		}
		x.at[d.instant(tz)] = true
	}
}

// has reports whether the occurrence starting at start is excluded, its
// day taken in zone.
func (x exclusions) has(start time.Time, zone *time.Location) bool {
	if x.at[start] {
		return true
	}
	if len(x.days) > 0 {
		y, m, d := start.In(zone).Date()
		return x.days[time.Date(y, m, d, 0, 0, 0, 0, time.UTC)]
	}
	return false
}

// series collects the occurrences of one event that may overlap [lo, hi]:
// DTSTART's alone, or those of its RRULE and RDATEs.
type series struct {
	ev       *event
	tz, zone *time.Location
	length   eventLength
	lo, hi   time.Time
	removed  map[time.Time]bool
	out      []occurrence
}

// end is the end of the occurrence that starts at start (startWall on
// the wall clock).
func (s *series) end(startWall, start time.Time) time.Time {
	e := start
	if s.length.days > 0 {
		e = resolve(startWall.AddDate(0, 0, s.length.days), s.zone)
	}
	return e.Add(s.length.exact)
}

// add keeps the occurrence [start, end] unless an override replaced it or
// it cannot overlap [lo, hi].
func (s *series) add(start, end time.Time) {
	if s.removed[start] {
		return
	}
	if start.After(s.hi) || end.Before(s.lo) {
		return
	}
	s.out = append(s.out, occurrence{start, end})
}

// emit adds the occurrence that starts at wall unless an EXDATE removes it.
func (s *series) emit(wall time.Time, ex exclusions) {
	start := resolve(wall, s.zone)
	if ex.has(start, s.zone) {
		return
	}
	s.add(start, s.end(wall, start))
}

// fromRule adds the occurrences of the RRULE, or DTSTART's alone when the
// event has only RDATEs, and marks their starts seen.
func (s *series) fromRule(budget *steps, ex exclusions, seen map[time.Time]bool) error {
	if s.ev.rule == nil {
		seen[s.ev.start.wall] = true
		s.emit(s.ev.start.wall, ex)
		return nil
	}
	// Occurrences that start before lo − the longest length cannot reach lo.
	startLo := s.lo.Add(-s.length.longest())
	return expandRule(s.ev, s.zone, startLo, s.hi, budget, func(wall time.Time) {
		seen[wall] = true
		s.emit(wall, ex)
	})
}

// fromRDates adds the RDATE occurrences not seen yet; an RDATE PERIOD
// keeps its own end.
func (s *series) fromRDates(budget *steps, ex exclusions, seen map[time.Time]bool) error {
	for _, rd := range s.ev.rdates {
		if err := budget.take(1); err != nil {
			return err
		}
		wall := rd.at.wall
		if rd.at.isUTC && s.zone != time.UTC {
			wall = wallOf(rd.at.wall.In(s.zone))
		} else if rd.at.loc != nil && rd.at.loc != s.zone {
			wall = wallOf(resolve(rd.at.wall, rd.at.loc).In(s.zone))
		}
		if seen[wall] {
			continue
		}
		seen[wall] = true
		start := resolve(wall, s.zone)
		if ex.has(start, s.zone) {
			continue
		}
		end := s.end(wall, start)
		switch {
		case rd.end != nil:
			end = rd.end.instant(s.tz)
		case rd.dur > 0:
			end = start.Add(rd.dur)
		}
		s.add(start, end)
	}
	return nil
}

func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}
