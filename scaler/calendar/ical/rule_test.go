package ical

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teambition/rrule-go"
)

func calendarOf(events ...string) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n")
	for _, e := range events {
		b.WriteString("BEGIN:VEVENT\r\n")
		for l := range strings.SplitSeq(strings.TrimSpace(e), "\n") {
			b.WriteString(strings.TrimSpace(l) + "\r\n")
		}
		b.WriteString("END:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}

func startsOf(ws []Window) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Start.Format("2006-01-02T15:04Z07:00"))
	}
	return out
}

func TestRecurrenceRules(t *testing.T) {
	tests := []struct {
		name     string
		event    string
		tz       string
		from, to string
		want     []string
	}{
		{
			name: "the last Friday of each month",
			event: `UID:a
				DTSTART:20250131T180000
				RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=4`,
			from: "2025-01-01T00:00:00Z", to: "2025-12-31T00:00:00Z",
			want: []string{"2025-01-31T18:00Z", "2025-02-28T18:00Z", "2025-03-28T18:00Z", "2025-04-25T18:00Z"},
		},
		{
			name: "the last weekday of the month with BYSETPOS",
			event: `UID:a
				DTSTART:20250131T090000
				RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;UNTIL=20250630T235959`,
			from: "2025-01-01T00:00:00Z", to: "2025-12-31T00:00:00Z",
			want: []string{"2025-01-31T09:00Z", "2025-02-28T09:00Z", "2025-03-31T09:00Z", "2025-04-30T09:00Z", "2025-05-30T09:00Z", "2025-06-30T09:00Z"},
		},
		{
			name: "a monthly event on the 31st skips shorter months",
			event: `UID:a
				DTSTART:20250131T120000
				RRULE:FREQ=MONTHLY;COUNT=4`,
			from: "2025-01-01T00:00:00Z", to: "2025-12-31T00:00:00Z",
			want: []string{"2025-01-31T12:00Z", "2025-03-31T12:00Z", "2025-05-31T12:00Z", "2025-07-31T12:00Z"},
		},
		{
			name: "a yearly all-day event on 29 February occurs only in leap years",
			event: `UID:a
				DTSTART;VALUE=DATE:20240229
				RRULE:FREQ=YEARLY`,
			from: "2024-01-01T00:00:00Z", to: "2029-01-01T00:00:00Z",
			want: []string{"2024-02-29T00:00Z", "2028-02-29T00:00Z"},
		},
		{
			name: "every other week on Monday and Wednesday",
			event: `UID:a
				DTSTART:20250303T190000
				RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=5`,
			from: "2025-03-01T00:00:00Z", to: "2025-05-01T00:00:00Z",
			want: []string{"2025-03-03T19:00Z", "2025-03-05T19:00Z", "2025-03-17T19:00Z", "2025-03-19T19:00Z", "2025-03-31T19:00Z"},
		},
		{
			name: "twice a day with BYHOUR",
			event: `UID:a
				DTSTART:20250301T080000
				RRULE:FREQ=DAILY;BYHOUR=8,20;COUNT=3`,
			from: "2025-03-01T00:00:00Z", to: "2025-03-10T00:00:00Z",
			want: []string{"2025-03-01T08:00Z", "2025-03-01T20:00Z", "2025-03-02T08:00Z"},
		},
		{
			name: "COUNT counts excluded occurrences too",
			event: `UID:a
				DTSTART:20250301T100000
				RRULE:FREQ=DAILY;COUNT=3
				EXDATE:20250302T100000`,
			from: "2025-03-01T00:00:00Z", to: "2025-03-10T00:00:00Z",
			want: []string{"2025-03-01T10:00Z", "2025-03-03T10:00Z"},
		},
		{
			name: "a DATE EXDATE removes that day of a timed series",
			event: `UID:a
				DTSTART;TZID=Europe/Berlin:20250301T100000
				RRULE:FREQ=DAILY;COUNT=3
				EXDATE;VALUE=DATE:20250302`,
			from: "2025-03-01T00:00:00Z", to: "2025-03-10T00:00:00Z",
			want: []string{"2025-03-01T09:00Z", "2025-03-03T09:00Z"},
		},
		{
			name: "a DATE UNTIL on a timed series includes that day",
			event: `UID:a
				DTSTART:20250301T220000
				RRULE:FREQ=DAILY;UNTIL=20250303`,
			from: "2025-03-01T00:00:00Z", to: "2025-03-10T00:00:00Z",
			want: []string{"2025-03-01T22:00Z", "2025-03-02T22:00Z", "2025-03-03T22:00Z"},
		},
		{
			name: "a weekly series from ten years ago still lands on this week",
			event: `UID:a
				DTSTART;TZID=America/New_York:20150106T190000
				RRULE:FREQ=WEEKLY;BYDAY=TU`,
			from: "2025-11-01T00:00:00Z", to: "2025-11-12T00:00:00Z",
			want: []string{"2025-11-05T00:00Z", "2025-11-12T00:00Z"},
		},
		{
			name: "a cancelled series has no windows",
			event: `UID:a
				DTSTART:20250301T100000
				RRULE:FREQ=DAILY
				STATUS:CANCELLED`,
			from: "2025-03-01T00:00:00Z", to: "2025-03-10T00:00:00Z",
			want: []string{},
		},
		{
			name: "a Mozilla-prefixed TZID is read as its IANA zone",
			event: `UID:a
				DTSTART;TZID=/mozilla.org/20050126_1/America/New_York:20250701T120000`,
			from: "2025-07-01T00:00:00Z", to: "2025-07-02T00:00:00Z",
			want: []string{"2025-07-01T16:00Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := Parse(calendarOf(tc.event), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(cal.Warnings) != 0 {
				t.Fatalf("warnings: %q", cal.Warnings)
			}
			tz := time.UTC
			if tc.tz != "" {
				tz = zone(t, tc.tz)
			}
			ws, err := cal.Windows(Options{Zone: tz, DefaultReplicas: 4}, ts(t, tc.from), ts(t, tc.to))
			if err != nil {
				t.Fatal(err)
			}
			if got := startsOf(ws); !slices.Equal(got, tc.want) {
				t.Errorf("starts = %q\nwant     %q", got, tc.want)
			}
		})
	}
}

func TestOverridesMoveOccurrencesIntoAndOutOfTheSpan(t *testing.T) {
	data := calendarOf(
		`UID:s
		SUMMARY:Stream
		DTSTART:20250301T180000Z
		DTEND:20250301T190000Z
		RRULE:FREQ=DAILY;COUNT=10`,
		// 3 March moved out of the span, 9 March moved into it.
		`UID:s
		SUMMARY:Stream (moved away)
		RECURRENCE-ID:20250303T180000Z
		DTSTART:20250320T180000Z
		DTEND:20250320T190000Z`,
		`UID:s
		SUMMARY:Stream (moved in)
		RECURRENCE-ID:20250309T180000Z
		DTSTART:20250304T070000Z
		DTEND:20250304T080000Z`,
	)
	cal, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	o := opts(time.UTC)
	ws, err := cal.Windows(o, ts(t, "2025-03-02T20:00:00Z"), ts(t, "2025-03-04T20:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, o, ws, []row{
		{"Stream (moved in)", "2025-03-04T07:00:00Z", "2025-03-04T08:00:00Z", 4, SourceDefault, false},
		{"Stream", "2025-03-04T18:00:00Z", "2025-03-04T19:00:00Z", 4, SourceDefault, false},
	})
}

func TestUnusableEventsAreSkippedWithAWarningNamingThem(t *testing.T) {
	data := calendarOf(
		`UID:h
		SUMMARY:Hourly ping
		DTSTART:20250301T100000Z
		RRULE:FREQ=HOURLY`,
		`UID:z
		SUMMARY:On Mars
		DTSTART;TZID=Mars/Olympus:20250301T100000`,
		`UID:n
		SUMMARY:No start`,
		`UID:r
		SUMMARY:Bad hint
		DTSTART:20250301T100000Z
		X-MONTAGE-REPLICAS:lots`,
		`UID:ok
		SUMMARY:Fine
		DTSTART:20250301T120000Z`,
	)
	cal, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`event "Hourly ping" (UID "h"): RRULE "FREQ=HOURLY": FREQ=HOURLY is not supported (daily at most); skipped`,
		`event "On Mars" (UID "z"): DTSTART: TZID "Mars/Olympus" is neither an IANA nor a Windows zone name, nor described by a usable VTIMEZONE; skipped`,
		`event "No start" (UID "n"): no DTSTART; skipped`,
		`event "Bad hint" (UID "r"): X-MONTAGE-REPLICAS "lots" is not a number from 0 to 10000; ignored`,
	}
	if !slices.Equal(cal.Warnings, want) {
		t.Errorf("warnings =\n %q\nwant\n %q", cal.Warnings, want)
	}
	ws, err := cal.Windows(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-02T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if got := startsOf(ws); !slices.Equal(got, []string{"2025-03-01T10:00Z", "2025-03-01T12:00Z"}) {
		t.Errorf("starts = %q", got)
	}
}

func TestLimits(t *testing.T) {
	t.Run("a COUNT series from year one has ended long before the span and costs a few steps", func(t *testing.T) {
		cal, err := Parse(calendarOf(`UID:old
			SUMMARY:Ancient
			DTSTART:00010101T100000Z
			RRULE:FREQ=DAILY;COUNT=100000`), Limits{MaxSteps: 5000})
		if err != nil {
			t.Fatal(err)
		}
		e, err := cal.Expand(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-08T00:00:00Z"))
		if err != nil || len(e.Windows) != 0 || len(e.Warnings) != 0 || e.Steps > 10 {
			t.Errorf("windows %d, warnings %q, steps %d, err %v; want none, none, a few, nil", len(e.Windows), e.Warnings, e.Steps, err)
		}
	})
	t.Run("a daily series from year one without COUNT lands on the span in a few steps", func(t *testing.T) {
		cal, err := Parse(calendarOf(`UID:old
			DTSTART:00010101T100000Z
			RRULE:FREQ=DAILY`), Limits{MaxSteps: 5000})
		if err != nil {
			t.Fatal(err)
		}
		e, err := cal.Expand(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-03T00:00:00Z"))
		if got := startsOf(e.Windows); err != nil || !slices.Equal(got, []string{"2025-03-01T10:00Z", "2025-03-02T10:00Z"}) || e.Steps > 20 {
			t.Errorf("starts %q, steps %d, err %v", got, e.Steps, err)
		}
	})
	t.Run("a rule that never matches costs no more than the span", func(t *testing.T) {
		cal, err := Parse(calendarOf(`UID:never
			DTSTART:20000101T100000Z
			RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`), Limits{MaxSteps: 5000})
		if err != nil {
			t.Fatal(err)
		}
		e, err := cal.Expand(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-08T00:00:00Z"))
		if err != nil || len(e.Windows) != 0 || e.Steps > 100 {
			t.Errorf("windows %d, steps %d, err %v", len(e.Windows), e.Steps, err)
		}
	})
	t.Run("more events than allowed is an error", func(t *testing.T) {
		_, err := Parse(calendarOf("UID:1\nDTSTART:20250301T100000Z", "UID:2\nDTSTART:20250301T100000Z"), Limits{MaxEvents: 1})
		if !errors.Is(err, ErrTooManyEvents) || err.Error() != "ical: calendar exceeds the event limit: more than 1 events" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("more bytes than allowed is an error", func(t *testing.T) {
		_, err := Parse(calendarOf("UID:1\nDTSTART:20250301T100000Z"), Limits{MaxBytes: 100})
		if !errors.Is(err, ErrTooLarge) || !strings.HasSuffix(err.Error(), "bytes, more than 100") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nesting deeper than iCalendar needs is refused", func(t *testing.T) {
		_, err := Parse([]byte(strings.Repeat("BEGIN:X\r\n", 20)), Limits{})
		if err == nil || err.Error() != "ical: not valid iCalendar: components nested deeper than 8 (line 9)" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a parameter list without a value is an error, not a panic", func(t *testing.T) {
		_, err := Parse([]byte("BEGIN:VCALENDAR\r\nX;A=b\r\nEND:VCALENDAR\r\n"), Limits{})
		if err == nil || err.Error() != "ical: not valid iCalendar: malformed content line" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestResolveFollowsRFC5545(t *testing.T) {
	tests := []struct {
		name, zone, wall, want string
	}{
		{"a time in the Berlin spring gap takes the offset before it", "Europe/Berlin", "2025-03-30T02:30:00", "2025-03-30T01:30:00Z"},
		{"a time in the Berlin autumn overlap is its first occurrence", "Europe/Berlin", "2025-10-26T02:30:00", "2025-10-26T00:30:00Z"},
		{"a time in the New York spring gap takes the offset before it", "America/New_York", "2025-03-09T02:30:00", "2025-03-09T07:30:00Z"},
		{"a time in the New York autumn overlap is its first occurrence", "America/New_York", "2025-11-02T01:30:00", "2025-11-02T05:30:00Z"},
		{"an ordinary time is unambiguous", "America/New_York", "2025-07-04T12:00:00", "2025-07-04T16:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := time.Parse("2006-01-02T15:04:05", tc.wall)
			if err != nil {
				t.Fatal(err)
			}
			if got := resolve(w, zone(t, tc.zone)).Format(time.RFC3339); got != tc.want {
				t.Errorf("resolve = %s, want %s", got, tc.want)
			}
		})
	}
}

// The fault probe's feed: valid daily series with COUNT started in 1800
// made the whole feed fail ("expansion exceeds the step limit"), so an
// edit beside them was never applied.
func TestLongCountSeriesJumpToTheSpanAndKeepTheRestOfTheFeed(t *testing.T) {
	var events []string
	for i := range 4 {
		events = append(events, fmt.Sprintf(`UID:daily-%d
			SUMMARY:Daily render %d
			DTSTART:18000101T0%d0000Z
			DURATION:PT30M
			RRULE:FREQ=DAILY;COUNT=100000`, i, i, i))
	}
	events = append(events, `UID:launch
		SUMMARY:Launch replicas=7
		DTSTART:20250301T110000Z
		DTEND:20250301T130000Z`)
	cal, err := Parse(calendarOf(events...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := cal.Expand(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-01T23:00:00Z"))
	if err != nil || len(e.Warnings) != 0 {
		t.Fatalf("err %v, warnings %q", err, e.Warnings)
	}
	// 1800-01-01 + 100,000 days is in 2073: the series still run.
	want := []string{"2025-03-01T00:00Z", "2025-03-01T01:00Z", "2025-03-01T02:00Z", "2025-03-01T03:00Z", "2025-03-01T11:00Z"}
	if got := startsOf(e.Windows); !slices.Equal(got, want) || e.Windows[4].Replicas != 7 {
		t.Errorf("starts %q (last asks %v), want %q (7)", got, e.Windows[len(e.Windows)-1].Replicas, want)
	}
	if e.Steps > 100 {
		t.Errorf("%d steps for five events, want the jump to the span (a few each)", e.Steps)
	}
}

// Rules without BY* parts jump to the span however long their COUNT; the
// occurrences they skip are counted, not listed: the result must be what a
// full expansion gives (rrule-go's, the reference here), the months and
// years that lack the date included.
func TestCountRulesWithoutByPartsAgreeWithAFullExpansion(t *testing.T) {
	tests := []struct {
		name, rule string
		dtstart    time.Time
		from, to   string
	}{
		{"daily every third day", "FREQ=DAILY;INTERVAL=3;COUNT=90000", time.Date(1850, 6, 1, 9, 0, 0, 0, time.UTC), "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z"},
		{"weekly every other week", "FREQ=WEEKLY;INTERVAL=2;COUNT=9000", time.Date(1801, 1, 5, 18, 0, 0, 0, time.UTC), "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"},
		{"monthly on the 31st skips the shorter months", "FREQ=MONTHLY;COUNT=2800", time.Date(1800, 1, 31, 12, 0, 0, 0, time.UTC), "2025-01-01T00:00:00Z", "2025-12-31T00:00:00Z"},
		{"monthly on the 30th every five months", "FREQ=MONTHLY;INTERVAL=5;COUNT=600", time.Date(1800, 1, 30, 12, 0, 0, 0, time.UTC), "2025-01-01T00:00:00Z", "2027-12-31T00:00:00Z"},
		{"monthly on the 29th skips common Februaries", "FREQ=MONTHLY;COUNT=2790", time.Date(1800, 1, 29, 12, 0, 0, 0, time.UTC), "2031-01-01T00:00:00Z", "2033-12-31T00:00:00Z"},
		{"yearly on 29 February occurs in leap years only", "FREQ=YEARLY;COUNT=58", time.Date(1804, 2, 29, 8, 0, 0, 0, time.UTC), "2000-01-01T00:00:00Z", "2040-12-31T00:00:00Z"},
		{"yearly on 29 February every third year", "FREQ=YEARLY;INTERVAL=3;COUNT=20", time.Date(1804, 2, 29, 8, 0, 0, 0, time.UTC), "1900-01-01T00:00:00Z", "2200-12-31T00:00:00Z"},
		{"a series that ended before the span has no window", "FREQ=MONTHLY;COUNT=12", time.Date(1900, 1, 31, 12, 0, 0, 0, time.UTC), "2025-01-01T00:00:00Z", "2025-12-31T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := Parse(calendarOf("UID:a\nDTSTART:"+tc.dtstart.Format("20060102T150405Z")+"\nRRULE:"+tc.rule), Limits{MaxEventSteps: 5000})
			if err != nil {
				t.Fatal(err)
			}
			from, to := ts(t, tc.from), ts(t, tc.to)
			e, err := cal.Expand(Options{Zone: time.UTC, DefaultReplicas: 4}, from, to)
			if err != nil || len(e.Warnings) != 0 {
				t.Fatalf("err %v, warnings %q", err, e.Warnings)
			}
			opt, err := rrule.StrToROption(tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			opt.Dtstart = tc.dtstart
			ref, err := rrule.NewRRule(*opt)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{}
			for _, at := range ref.Between(from, to, true) {
				want = append(want, at.Format("2006-01-02T15:04Z07:00"))
			}
			if got := startsOf(e.Windows); !slices.Equal(got, want) {
				t.Errorf("starts = %q\nwant     %q", got, want)
			}
		})
	}
}

func TestRecurrenceBudgetsArePerEventWithATotalPerCalendar(t *testing.T) {
	// BYHOUR leaves no closed form: such a series is walked from its
	// DTSTART, a step a day.
	walked := func(uid string) string {
		return "UID:" + uid + "\nSUMMARY:Walked " + uid + "\nDTSTART:20240101T100000Z\nRRULE:FREQ=DAILY;BYHOUR=10;COUNT=1000"
	}
	const launch = "UID:launch\nSUMMARY:Launch replicas=7\nDTSTART:20250301T110000Z\nDTEND:20250301T130000Z"
	tests := []struct {
		name      string
		limits    Limits
		events    []string
		starts    []string
		warnings  []string
		stepsUpTo int
	}{
		{
			name:   "an event beyond its own budget is skipped with a warning and the others are kept",
			limits: Limits{MaxEventSteps: 5000},
			events: []string{"UID:old\nSUMMARY:Ancient\nDTSTART:18000101T100000Z\nRRULE:FREQ=DAILY;BYHOUR=10;COUNT=100000", walked("a"), launch},
			starts: []string{"2025-03-01T10:00Z", "2025-03-01T11:00Z"},
			warnings: []string{
				`event "Ancient" (UID "old"): recurrence needs more than 5000 steps, the limit for one event; skipped`,
			},
			stepsUpTo: 5000 + 1000,
		},
		{
			name:   "once the calendar's total is spent the events left are skipped, each with a warning, and single events are kept",
			limits: Limits{MaxEventSteps: 5000, MaxSteps: 1500},
			events: []string{walked("a"), walked("b"), walked("c"), launch},
			starts: []string{"2025-03-01T10:00Z", "2025-03-01T11:00Z"},
			warnings: []string{
				`event "Walked b" (UID "b"): recurrence not expanded: the calendar's 1500 steps are spent by the events before it; skipped`,
				`event "Walked c" (UID "c"): recurrence not expanded: the calendar's 1500 steps are spent by the events before it; skipped`,
			},
			stepsUpTo: 1500,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := Parse(calendarOf(tc.events...), tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			e, err := cal.Expand(opts(time.UTC), ts(t, "2025-03-01T00:00:00Z"), ts(t, "2025-03-01T23:00:00Z"))
			if err != nil {
				t.Fatalf("err %v, want the feed kept", err)
			}
			if got := startsOf(e.Windows); !slices.Equal(got, tc.starts) {
				t.Errorf("starts = %q, want %q", got, tc.starts)
			}
			if !slices.Equal(e.Warnings, tc.warnings) {
				t.Errorf("warnings =\n %q\nwant\n %q", e.Warnings, tc.warnings)
			}
			if e.Steps > tc.stepsUpTo {
				t.Errorf("%d steps, want at most %d", e.Steps, tc.stepsUpTo)
			}
		})
	}
}
