package ical

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Options say how a calendar's events become windows. They come from the
// caller's settings, not from the calendar.
type Options struct {
	// Zone places floating times and all-day events; nil means UTC.
	Zone *time.Location
	// LeadTime is how long before an event's start its replicas are wanted.
	LeadTime time.Duration
	// Hold is how long after an event's end its replicas are kept.
	Hold time.Duration
	// DefaultReplicas is what an event without a hint asks for.
	DefaultReplicas float64
	// IncludeTransparent counts TRANSP:TRANSPARENT ("free") events too.
	IncludeTransparent bool
	// MaxReplicas clamps what an event asks for; nil means no clamp.
	MaxReplicas *float64
}

// Window is one concrete occurrence of an event and the span its replicas
// are wanted in. All times are UTC.
type Window struct {
	decide.CalendarWindow
	AllDay      bool `json:"allDay"`
	Recurring   bool `json:"recurring"`
	Transparent bool `json:"transparent"`
}

// ForDecide returns the windows as the decide package sees them.
func ForDecide(ws []Window) []decide.CalendarWindow {
	out := make([]decide.CalendarWindow, len(ws))
	for i, w := range ws {
		out[i] = w.CalendarWindow
	}
	return out
}

// Expansion is the result of expanding a calendar over a span.
type Expansion struct {
	Windows []Window `json:"windows"`
	// Warnings name events that were skipped or read partly.
	Warnings []string `json:"warnings"`
	// Steps is the recurrence work done, for the step limit.
	Steps int `json:"steps"`
}

// Windows returns the windows (lead time and hold included) that overlap
// [from, to], sorted by From.
func (cal *Calendar) Windows(o Options, from, to time.Time) ([]Window, error) {
	e, err := cal.Expand(o, from, to)
	return e.Windows, err
}

type occurrence struct {
	start, end time.Time
}

// Expand is Windows with the warnings and the work done. The recurrence
// work is bounded per event (Limits.MaxEventSteps) and for the whole
// calendar (Limits.MaxSteps): an event beyond either is skipped with a
// warning naming it and the limit, and the other events are kept.
func (cal *Calendar) Expand(o Options, from, to time.Time) (Expansion, error) {
	out := Expansion{Windows: []Window{}, Warnings: []string{}}
	if cal == nil {
		return out, errors.New("ical: no calendar")
	}
	if to.Before(from) {
		return out, fmt.Errorf("ical: expansion span ends (%s) before it starts (%s)", to, from)
	}
	tz := o.Zone
	if tz == nil {
		tz = time.UTC
	}
	l := cal.limits.withDefaults() // a Calendar not made by Parse has none
	feed := &steps{left: l.MaxSteps}

	// Overrides (RECURRENCE-ID) by UID; their originals leave the series.
	overridden := map[string]map[time.Time]bool{}
	masters := map[string]bool{}
	for i := range cal.events {
		ev := &cal.events[i]
		if ev.recurID == nil {
			masters[ev.uid] = true
		}
	}
	for i := range cal.events {
		ev := &cal.events[i]
		if ev.recurID == nil {
			continue
		}
		if overridden[ev.uid] == nil {
			overridden[ev.uid] = map[time.Time]bool{}
		}
		overridden[ev.uid][ev.recurID.instant(tz)] = true
	}

	type span struct {
		ev  *event
		occ []occurrence
	}
	// Occurrences are generated from lo on: an event in force at `from`
	// started at most its own length plus the hold earlier, which the
	// per-event lookback below covers.
	var spans []span
	for i := range cal.events {
		ev := &cal.events[i]
		if ev.cancelled && ev.recurID == nil {
			continue
		}
		if ev.transparent && !o.IncludeTransparent {
			continue
		}
		// One event's recurrence cannot spend what the others need: it
		// gets its own budget, out of what is left of the calendar's.
		budget := &steps{left: min(l.MaxEventSteps, feed.left)}
		occ, err := ev.occurrences(tz, from.Add(-o.Hold), to.Add(o.LeadTime), overridden[ev.uid], budget)
		feed.spend(budget.used)
		if errors.Is(err, ErrTooManySteps) {
			err = stepLimitError{perEvent: l.MaxEventSteps, feed: l.MaxSteps, feedSpent: l.MaxEventSteps > budget.used+budget.left}
		}
		if err != nil {
			out.Warnings = append(out.Warnings, fmt.Sprintf("event %s: %v; skipped", eventName(ev.uid, ev.summary), err))
			continue
		}
		if ev.cancelled {
			continue // a cancelled single occurrence: its original is already removed
		}
		spans = append(spans, span{ev, occ})
	}
	out.Steps = feed.used

	for _, s := range spans {
		ev := s.ev
		want, source := o.DefaultReplicas, SourceDefault
		if ev.hasReplicas {
			want, source = ev.replicas, ev.source
		}
		for _, oc := range s.occ {
			w := Window{
				CalendarWindow: decide.CalendarWindow{
					Summary:        ev.summary,
					UID:            ev.uid,
					Start:          oc.start.UTC(),
					End:            oc.end.UTC(),
					From:           oc.start.Add(-o.LeadTime).UTC(),
					Until:          oc.end.Add(o.Hold).UTC(),
					Replicas:       want,
					Requested:      want,
					ReplicasSource: source,
				},
				AllDay:      ev.start.isDate,
				Recurring:   ev.rule != nil || len(ev.rdates) > 0 || ev.recurID != nil,
				Transparent: ev.transparent,
			}
			if o.MaxReplicas != nil && w.Replicas > *o.MaxReplicas {
				w.Replicas, w.Clamped = *o.MaxReplicas, true
			}
			if w.Until.Before(from) || w.From.After(to) {
				continue
			}
			out.Windows = append(out.Windows, w)
		}
	}
	slices.SortStableFunc(out.Windows, func(a, b Window) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
	return out, nil
}

// steps is a budget of recurrence work: left to spend, and used.
type steps struct {
	left, used int
}

// take spends n steps before they are done; ErrTooManySteps, spending
// nothing, when fewer are left.
func (s *steps) take(n int) error {
	if n > s.left {
		return ErrTooManySteps
	}
	s.spend(n)
	return nil
}

func (s *steps) spend(n int) {
	s.used += n
	s.left -= n
}

// stepLimitError is why an event was not expanded: its own budget, or the
// calendar's, which the events before it spent.
type stepLimitError struct {
	perEvent, feed int
	feedSpent      bool
}

func (e stepLimitError) Error() string {
	if e.feedSpent {
		return fmt.Sprintf("recurrence not expanded: the calendar's %d steps are spent by the events before it", e.feed)
	}
	return fmt.Sprintf("recurrence needs more than %d steps, the limit for one event", e.perEvent)
}

func (e stepLimitError) Unwrap() error { return ErrTooManySteps }

// occurrences returns the event's occurrences whose [start, end] may
// overlap [lo, hi]: starts up to hi, ends from lo on.
func (ev *event) occurrences(tz *time.Location, lo, hi time.Time, removed map[time.Time]bool, budget *steps) ([]occurrence, error) {
	zone := ev.start.zoneOf(tz)
	first := ev.start.instant(tz)
	// The exact length of a DTEND event is fixed by its first occurrence
	// (RFC 5545 3.8.5.3); a DATE event's length is in days.
	var length time.Duration
	var lengthDays int
	switch ev.endKind {
	case endAt:
		if ev.start.isDate {
			lengthDays = int(ev.end.wall.Sub(ev.start.wall).Hours() / 24)
		} else {
			length = ev.end.instant(tz).Sub(first)
		}
	case endDuration:
		lengthDays, length = ev.durDays, ev.durExact
	default:
		if ev.start.isDate {
			lengthDays = 1
		}
	}
	if lengthDays < 0 || length < 0 || (lengthDays == 0 && length == 0 && ev.endKind == endAt && ev.start.isDate) {
		if ev.start.isDate {
			lengthDays, length = 1, 0
		} else {
			lengthDays, length = 0, 0
		}
	}
	endOf := func(startWall time.Time, start time.Time) time.Time {
		e := start
		if lengthDays > 0 {
			e = resolve(startWall.AddDate(0, 0, lengthDays), zone)
		}
		return e.Add(length)
	}
	maxLen := time.Duration(lengthDays+1)*24*time.Hour + length
	// Occurrences that start before lo − maxLen cannot reach lo.
	startLo := lo.Add(-maxLen)

	var out []occurrence
	add := func(wall time.Time, start, end time.Time) {
		if removed[start] {
			return
		}
		if start.After(hi) || end.Before(lo) {
			return
		}
		out = append(out, occurrence{start, end})
	}
	// An override is one occurrence of its own, whatever RRULE it repeats.
	if ev.recurID != nil || (ev.rule == nil && len(ev.rdates) == 0) {
		removed = nil // an override stands in for its original
		add(ev.start.wall, first, endOf(ev.start.wall, first))
		return out, nil
	}
	ex := map[time.Time]bool{}
	exDays := map[time.Time]bool{}
	for _, d := range ev.exdates {
		if d.isDate && !ev.start.isDate {
			exDays[d.wall] = true
			continue
		}
		if d.isDate {
			ex[resolve(d.wall, zone)] = true
			continue
		}
		ex[d.instant(tz)] = true
	}
	excluded := func(wall, start time.Time) bool {
		if ex[start] {
			return true
		}
		if len(exDays) > 0 {
			y, m, d := start.In(zone).Date()
			return exDays[time.Date(y, m, d, 0, 0, 0, 0, time.UTC)]
		}
		return false
	}
	emit := func(wall time.Time) {
		start := resolve(wall, zone)
		if excluded(wall, start) {
			return
		}
		add(wall, start, endOf(wall, start))
	}

	seen := map[time.Time]bool{}
	if ev.rule != nil {
		err := expandRule(ev, zone, startLo, hi, budget, func(wall time.Time) {
			seen[wall] = true
			emit(wall)
		})
		if err != nil {
			return nil, err
		}
	} else {
		seen[ev.start.wall] = true
		emit(ev.start.wall)
	}
	for _, rd := range ev.rdates {
		if err := budget.take(1); err != nil {
			return nil, err
		}
		wall := rd.at.wall
		if rd.at.isUTC && zone != time.UTC {
			wall = wallOf(rd.at.wall.In(zone))
		} else if rd.at.loc != nil && rd.at.loc != zone {
			wall = wallOf(resolve(rd.at.wall, rd.at.loc).In(zone))
		}
		if seen[wall] {
			continue
		}
		seen[wall] = true
		start := resolve(wall, zone)
		if excluded(wall, start) {
			continue
		}
		end := endOf(wall, start)
		switch {
		case rd.end != nil:
			end = rd.end.instant(tz)
		case rd.dur > 0:
			end = start.Add(rd.dur)
		}
		add(wall, start, end)
	}
	return out, nil
}

func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}
