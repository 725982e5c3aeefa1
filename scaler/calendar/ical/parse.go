// Package ical reads iCalendar (RFC 5545) data as Google, Outlook/Exchange,
// Nextcloud and Apple publish it and expands its events into concrete
// windows in UTC, each with the replicas its event asks for. It does no I/O:
// fetching a feed and deciding when to refresh it belong to the caller.
package ical

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	goical "github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// Decoding bounds that protect go-ical's decoder: its parameter parser is
// quadratic in a parameter's length and its component parser recurses.
const (
	maxNesting    = 8
	maxParamBytes = 4096
	maxParamCost  = 64 << 20 // Σ len(params)² over the feed
	maxValueList  = 1000     // values in one EXDATE/RDATE/CATEGORIES
)

// The limits a calendar can exceed; errors wrap one of them so that a caller
// can name its own setting for it.
var (
	ErrTooLarge      = errors.New("ical: calendar exceeds the size limit")
	ErrTooManyEvents = errors.New("ical: calendar exceeds the event limit")
	ErrTooManySteps  = errors.New("ical: recurrence expansion exceeds the step limit")
)

// Limits bound what one calendar may cost: its size and events when
// parsed, its recurrence work in each expansion. Zero means the default.
type Limits struct {
	// MaxBytes caps the data given to Parse.
	MaxBytes int64
	// MaxEvents caps the VEVENTs of one calendar.
	MaxEvents int
	// MaxSteps caps the recurrence steps of one expansion, all events
	// together: once they are spent, the events not yet expanded are
	// skipped with a warning each.
	MaxSteps int
	// MaxEventSteps caps the recurrence steps of one event in one
	// expansion: an event that needs more is skipped with a warning, and
	// the others are kept.
	MaxEventSteps int
}

// DefaultLimits returns the limits used for zero values.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 5 << 20, MaxEvents: 20000, MaxSteps: 500000, MaxEventSteps: 50000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxEventSteps <= 0 {
		l.MaxEventSteps = d.MaxEventSteps
	}
	return l
}

var untilRawRe = regexp.MustCompile(`(?i)UNTIL=([0-9TZ]+)`)

type endKind int

const (
	endNone endKind = iota
	endAt
	endDuration
)

type event struct {
	uid, summary string
	start        dt
	endKind      endKind
	end          dt
	durDays      int
	durExact     time.Duration
	rule         *rrule.ROption
	untilRaw     string
	rdates       []rdate
	exdates      []dt
	recurID      *dt
	cancelled    bool
	transparent  bool
	replicas     float64
	hasReplicas  bool
	source       string
}

type rdate struct {
	at  dt
	end *dt // PERIOD start/end
	dur time.Duration
}

// Calendar is a parsed iCalendar object. It is immutable once parsed, so
// one copy may serve many expansions at once.
type Calendar struct {
	// Name is X-WR-CALNAME, if any.
	Name string `json:"name,omitempty"`
	// RefreshInterval is what the calendar asks its readers for
	// (REFRESH-INTERVAL, X-PUBLISHED-TTL), 0 when it does not say.
	RefreshInterval time.Duration `json:"refreshInterval"`
	Bytes           int           `json:"bytes"`
	Events          int           `json:"events"`
	// Warnings are events skipped or read partly, each naming the event.
	Warnings []string `json:"warnings"`

	events []event
	limits Limits // with defaults
}

// Parse decodes iCalendar data within the limits. It fails on input that
// is not iCalendar or exceeds a limit (ErrTooLarge, ErrTooManyEvents); an
// event it cannot use is skipped with a warning naming it.
func Parse(data []byte, l Limits) (cal *Calendar, err error) {
	l = l.withDefaults()
	if int64(len(data)) > l.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(data), l.MaxBytes)
	}
	if err := prescan(data, l); err != nil {
		return nil, err
	}
	var doc *goical.Calendar
	func() {
		// go-ical panics on some malformed content lines; such a feed is
		// bad input, not a crash.
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("malformed content line")
			}
		}()
		doc, err = goical.NewDecoder(bytes.NewReader(data)).Decode()
	}()
	if err != nil {
		return nil, fmt.Errorf("ical: not valid iCalendar: %w", err)
	}
	cal = &Calendar{Bytes: len(data), Warnings: []string{}, limits: l}
	if p := doc.Props.Get("X-WR-CALNAME"); p != nil {
		cal.Name = unescape(p.Value)
	}
	for _, name := range []string{"REFRESH-INTERVAL", "X-PUBLISHED-TTL"} {
		if p := doc.Props.Get(name); p != nil && cal.RefreshInterval == 0 {
			if days, exact, err := parseDuration(p.Value); err == nil && days >= 0 && exact >= 0 {
				cal.RefreshInterval = time.Duration(days)*24*time.Hour + exact
			} else {
				cal.Warnings = append(cal.Warnings, fmt.Sprintf("%s %q is not a duration; ignored", name, p.Value))
			}
		}
	}
	zones := &zoneReader{cache: map[string]*time.Location{}, vtz: map[string]*goical.Component{}}
	for _, c := range doc.Children {
		if c.Name == goical.CompTimezone && len(zones.vtz) < 100 {
			if id := c.Props.Get(goical.PropTimezoneID); id != nil {
				zones.vtz[unescape(id.Value)] = c
			}
		}
	}
	for _, c := range doc.Children {
		if c.Name != goical.CompEvent {
			continue
		}
		cal.Events++
		if cal.Events > l.MaxEvents {
			return nil, fmt.Errorf("%w: more than %d events", ErrTooManyEvents, l.MaxEvents)
		}
		ev, warn, err := readEvent(c, zones)
		if err != nil {
			cal.Warnings = append(cal.Warnings, err.Error())
			continue
		}
		cal.Warnings = append(cal.Warnings, warn...)
		cal.events = append(cal.events, ev)
	}
	return cal, nil
}

// prescan rejects input that would make go-ical's decoder slow or deep.
func prescan(data []byte, l Limits) error {
	depth, cost := 0, 0
	lineNo := 0
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue // folded continuation: its params were counted with the head
		}
		upper := bytes.ToUpper(line[:min(len(line), 6)])
		switch {
		case bytes.HasPrefix(upper, []byte("BEGIN:")):
			depth++
			if depth > maxNesting {
				return fmt.Errorf("ical: not valid iCalendar: components nested deeper than %d (line %d)", maxNesting, lineNo)
			}
		case bytes.HasPrefix(upper, []byte("END:")):
			depth--
		}
		// The name and parameters run to the first colon outside quotes.
		quoted, head := false, len(line)
		for j, c := range line {
			if c == '"' {
				quoted = !quoted
			} else if c == ':' && !quoted {
				head = j
				break
			}
		}
		if head > maxParamBytes {
			return fmt.Errorf("ical: not valid iCalendar: property parameters longer than %d bytes (line %d)", maxParamBytes, lineNo)
		}
		cost += head * head
		if cost > maxParamCost {
			return fmt.Errorf("ical: not valid iCalendar: too many long property parameters (line %d)", lineNo)
		}
	}
	return nil
}

func readEvent(c *goical.Component, zones *zoneReader) (event, []string, error) {
	ev := event{}
	var warns []string
	ev.uid = propText(c, goical.PropUID)
	ev.summary = propText(c, goical.PropSummary)
	name := eventName(ev.uid, ev.summary)
	sp := c.Props.Get(goical.PropDateTimeStart)
	if sp == nil {
		return ev, nil, fmt.Errorf("event %s: no DTSTART; skipped", name)
	}
	start, err := readDT(sp, sp.Value, zones)
	if err != nil {
		return ev, nil, fmt.Errorf("event %s: DTSTART: %w; skipped", name, err)
	}
	ev.start = start
	if ep := c.Props.Get(goical.PropDateTimeEnd); ep != nil {
		end, err := readDT(ep, ep.Value, zones)
		if err != nil {
			return ev, nil, fmt.Errorf("event %s: DTEND: %w; skipped", name, err)
		}
		ev.endKind, ev.end = endAt, end
	} else if dp := c.Props.Get(goical.PropDuration); dp != nil {
		days, exact, err := parseDuration(dp.Value)
		if err != nil {
			return ev, nil, fmt.Errorf("event %s: DURATION %q: %w; skipped", name, dp.Value, err)
		}
		ev.endKind, ev.durDays, ev.durExact = endDuration, days, exact
	}
	if rp := c.Props.Get(goical.PropRecurrenceRule); rp != nil {
		opt, err := rrule.StrToROptionInLocation(strings.ToUpper(rp.Value), time.UTC)
		if err != nil {
			return ev, nil, fmt.Errorf("event %s: RRULE %q: %w; skipped", name, rp.Value, err)
		}
		if reason := unsupportedRule(opt); reason != "" {
			return ev, nil, fmt.Errorf("event %s: RRULE %q: %s; skipped", name, rp.Value, reason)
		}
		ev.rule = opt
		if m := untilRawRe.FindStringSubmatch(rp.Value); m != nil {
			ev.untilRaw = m[1]
		}
	}
	for _, p := range c.Props.Values(goical.PropExceptionDates) {
		vals := splitList(p.Value)
		if len(vals) > maxValueList {
			return ev, nil, fmt.Errorf("event %s: more than %d EXDATE values; skipped", name, maxValueList)
		}
		for _, v := range vals {
			d, err := readDT(&p, v, zones)
			if err != nil {
				warns = append(warns, fmt.Sprintf("event %s: EXDATE %q: %v; ignored", name, v, err))
				continue
			}
			ev.exdates = append(ev.exdates, d)
		}
	}
	for _, p := range c.Props.Values(goical.PropRecurrenceDates) {
		vals := splitList(p.Value)
		if len(vals) > maxValueList {
			return ev, nil, fmt.Errorf("event %s: more than %d RDATE values; skipped", name, maxValueList)
		}
		for _, v := range vals {
			rd, err := readRDate(&p, v, zones)
			if err != nil {
				warns = append(warns, fmt.Sprintf("event %s: RDATE %q: %v; ignored", name, v, err))
				continue
			}
			ev.rdates = append(ev.rdates, rd)
		}
	}
	if rp := c.Props.Get(goical.PropRecurrenceID); rp != nil {
		d, err := readDT(rp, rp.Value, zones)
		if err != nil {
			return ev, nil, fmt.Errorf("event %s: RECURRENCE-ID: %w; skipped", name, err)
		}
		if strings.EqualFold(rp.Params.Get("RANGE"), "THISANDFUTURE") {
			warns = append(warns, fmt.Sprintf("event %s: RECURRENCE-ID RANGE=THISANDFUTURE applied to that occurrence only", name))
		}
		ev.recurID = &d
	}
	ev.cancelled = strings.EqualFold(propText(c, goical.PropStatus), "CANCELLED")
	ev.transparent = strings.EqualFold(propText(c, goical.PropTransparency), "TRANSPARENT")
	w := readReplicas(c, &ev, name)
	warns = append(warns, w...)
	return ev, warns, nil
}

func unsupportedRule(o *rrule.ROption) string {
	switch {
	case o.Freq > rrule.DAILY:
		return "FREQ=" + o.Freq.String() + " is not supported (daily at most)"
	case len(o.Byyearday) > 0 || len(o.Byweekno) > 0 || len(o.Byeaster) > 0:
		return "BYYEARDAY, BYWEEKNO and BYEASTER are not supported"
	case len(o.Byhour)*max(len(o.Byminute), 1) > 48 || len(o.Byminute) > 60:
		return "more than 48 times a day"
	case o.Interval > 10000 || o.Count > 100000:
		return "INTERVAL or COUNT out of range"
	}
	for _, h := range o.Byhour {
		if h < 0 || h > 23 {
			return "BYHOUR out of range"
		}
	}
	for _, m := range o.Byminute {
		if m < 0 || m > 59 {
			return "BYMINUTE out of range"
		}
	}
	for _, m := range o.Bymonth {
		if m < 1 || m > 12 {
			return "BYMONTH out of range"
		}
	}
	for _, d := range o.Bymonthday {
		if d == 0 || d < -31 || d > 31 {
			return "BYMONTHDAY out of range"
		}
	}
	for _, wd := range o.Byweekday {
		if n := wd.N(); n < -53 || n > 53 {
			return "BYDAY ordinal out of range"
		}
	}
	return ""
}
