package ical

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkExpandFixtures measures one week's expansion of each fixture,
// the work a caller does per refresh of the opinion.
func BenchmarkExpandFixtures(b *testing.B) {
	for _, name := range []string{"google.ics", "outlook.ics", "nextcloud.ics", "apple.ics"} {
		b.Run(name, func(b *testing.B) {
			cal := loadCalendarB(b, name)
			o := Options{Zone: time.UTC, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}
			from := time.Date(2025, 3, 24, 0, 0, 0, 0, time.UTC)
			steps := 0
			for b.Loop() {
				e, err := cal.Expand(o, from, from.Add(week))
				if err != nil {
					b.Fatal(err)
				}
				steps = e.Steps
			}
			b.ReportMetric(float64(steps), "steps/op")
		})
	}
}

// BenchmarkExpandLargeFeed is a busy creator's feed: 2,000 weekly series
// started years ago plus 2,000 one-off events.
func BenchmarkExpandLargeFeed(b *testing.B) {
	var events []string
	for i := range 2000 {
		events = append(events, fmt.Sprintf("UID:w%d\nSUMMARY:Series %d\nDTSTART;TZID=Europe/Berlin:2018%02d%02dT190000\nDURATION:PT2H\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH\nEXDATE;TZID=Europe/Berlin:20250331T190000", i, i, 1+i%12, 1+i%28))
		events = append(events, fmt.Sprintf("UID:o%d\nSUMMARY:One-off %d replicas=5\nDTSTART:2025%02d%02dT120000Z\nDTEND:2025%02d%02dT140000Z", i, i, 1+i%12, 1+i%28, 1+i%12, 1+i%28))
	}
	data := calendarOf(events...)
	b.Logf("feed: %d bytes", len(data))
	cal, err := Parse(data, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Zone: time.UTC, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}
	from := time.Date(2025, 3, 24, 0, 0, 0, 0, time.UTC)
	var e Expansion
	for b.Loop() {
		if e, err = cal.Expand(o, from, from.Add(week)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.Steps), "steps/op")
	b.ReportMetric(float64(len(e.Windows)), "windows/op")
}

// BenchmarkParseLargeFeed measures decoding the same large feed.
func BenchmarkParseLargeFeed(b *testing.B) {
	var events []string
	for i := range 4000 {
		events = append(events, fmt.Sprintf("UID:w%d\nSUMMARY:Series %d\nDTSTART;TZID=Europe/Berlin:20180101T190000\nDURATION:PT2H\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH", i, i))
	}
	data := calendarOf(events...)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func loadCalendarB(b *testing.B, name string) *Calendar {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	cal, err := Parse(data, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return cal
}

// BenchmarkExpandWorstCase spends the default step budgets on rules built
// to be expensive: one event's (the first two), then the feed's, by as
// many such events as it takes: the bound a hostile feed meets.
func BenchmarkExpandWorstCase(b *testing.B) {
	const never = "UID:d%d\nDTSTART:00010101T000000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5"
	var twenty []string
	for i := range 20 {
		twenty = append(twenty, fmt.Sprintf(never, i))
	}
	cases := map[string][]string{
		"yearly-every-day-48-times":   {"UID:y\nDTSTART:00010101T000000Z\nRRULE:FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,30;COUNT=100000"},
		"daily-never-matching":        {fmt.Sprintf(never, 0)},
		"twenty-daily-never-matching": twenty,
	}
	for name, evs := range cases {
		b.Run(name, func(b *testing.B) {
			cal, err := Parse(calendarOf(evs...), Limits{})
			if err != nil {
				b.Fatal(err)
			}
			o := Options{Zone: time.UTC, DefaultReplicas: 4}
			from := time.Date(2025, 3, 24, 0, 0, 0, 0, time.UTC)
			steps := 0
			for b.Loop() {
				e, _ := cal.Expand(o, from, from.Add(week))
				steps = e.Steps
			}
			b.ReportMetric(float64(steps), "steps/op")
		})
	}
}

// BenchmarkParseManyUnknownZones is a feed naming a new unknown TZID per
// event: zone lookups stop after 1,000 distinct names.
func BenchmarkParseManyUnknownZones(b *testing.B) {
	var events []string
	for i := range 5000 {
		events = append(events, fmt.Sprintf("UID:z%d\nDTSTART;TZID=Nowhere/Zone/Number%d:20250301T100000", i, i))
	}
	data := calendarOf(events...)
	var cal *Calendar
	for b.Loop() {
		var err error
		if cal, err = Parse(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(cal.Warnings)), "warnings/op")
}
