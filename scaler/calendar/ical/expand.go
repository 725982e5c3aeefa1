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
	series, warnings, steps := cal.expandEvents(o, tz, from, to)
	if len(warnings) > 0 { // none stays [], not null, in JSON
		out.Warnings = warnings
	}
	out.Steps = steps
	for _, s := range series {
		out.Windows = s.appendWindows(out.Windows, o, from, to)
	}
	sortWindows(out.Windows)
	return out, nil
}

// eventOccurrences is one event and its occurrences in an expanded span.
type eventOccurrences struct {
	ev  *event
	occ []occurrence
}

// expandEvents returns the occurrences of every event that counts under o
// and may be in force in [from, to], in the calendar's order; a warning for
// each event skipped; and the recurrence steps spent.
func (cal *Calendar) expandEvents(o Options, tz *time.Location, from, to time.Time) ([]eventOccurrences, []string, int) {
	l := cal.limits.withDefaults() // a Calendar not made by Parse has none
	feed := &steps{left: l.MaxSteps}
	overridden := cal.overrides(tz)
	var out []eventOccurrences
	var warnings []string
	// Occurrences are generated from lo on: an event in force at `from`
	// started at most its own length plus the hold earlier, which the
	// per-event lookback in occurrences covers.
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
			warnings = append(warnings, fmt.Sprintf("event %s: %v; skipped", eventName(ev.uid, ev.summary), err))
			continue
		}
		if ev.cancelled {
			continue // a cancelled single occurrence: its original is already removed
		}
		out = append(out, eventOccurrences{ev, occ})
	}
	return out, warnings, feed.used
}

// overrides returns, by UID, the instants of the occurrences that
// overrides (RECURRENCE-ID) replace: their originals leave the series. It
// is nil when there are none.
func (cal *Calendar) overrides(tz *time.Location) map[string]map[time.Time]bool {
	var overridden map[string]map[time.Time]bool
	for i := range cal.events {
		ev := &cal.events[i]
		if ev.recurID == nil {
			continue
		}
		if overridden == nil {
			overridden = map[string]map[time.Time]bool{}
		}
		if overridden[ev.uid] == nil {
			overridden[ev.uid] = map[time.Time]bool{}
		}
		overridden[ev.uid][ev.recurID.instant(tz)] = true
	}
	return overridden
}

// appendWindows appends to out the windows of s's occurrences (lead time
// and hold included, replicas clamped to o.MaxReplicas) that overlap
// [from, to].
func (s eventOccurrences) appendWindows(out []Window, o Options, from, to time.Time) []Window {
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
		out = append(out, w)
	}
	return out
}

// sortWindows orders windows by From, then Start, then UID, keeping the
// calendar's order among equals.
func sortWindows(ws []Window) {
	slices.SortStableFunc(ws, func(a, b Window) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
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
