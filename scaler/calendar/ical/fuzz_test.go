package ical

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseExpand feeds arbitrary bytes through decoding and a week's
// expansion. It must never panic; the limits keep the work bounded (a step
// budget for recurrences, caps on nesting, parameter length and events).
func FuzzParseExpand(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.ics"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add(calendarOf("UID:a\nDTSTART:00010101T000000Z\nRRULE:FREQ=DAILY;COUNT=999999"))
	f.Add(calendarOf("UID:a\nDTSTART;TZID=\"Eastern Standard Time\":20250101T000000\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYSETPOS=1,-1;BYHOUR=1,2"))
	f.Add([]byte("BEGIN:VCALENDAR\r\nX;A=\"b\r\n"))
	l := Limits{MaxBytes: 1 << 20, MaxEvents: 500, MaxSteps: 20000}
	from := time.Date(2025, 3, 29, 0, 0, 0, 0, time.UTC)
	berlin, err := LoadZone("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	o := Options{Zone: berlin, LeadTime: 10 * time.Minute, Hold: 5 * time.Minute, DefaultReplicas: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		cal, err := Parse(data, l)
		if err != nil {
			return
		}
		e, err := cal.Expand(o, from, from.Add(week))
		if err != nil {
			return
		}
		if e.Steps > l.MaxSteps {
			t.Fatalf("%d steps, limit %d", e.Steps, l.MaxSteps)
		}
		for _, w := range e.Windows {
			if w.Until.Before(from) || w.From.After(from.Add(week)) || w.End.Before(w.Start) {
				t.Fatalf("window out of span or inverted: %+v", w)
			}
		}
	})
}
