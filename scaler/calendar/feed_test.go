package calendar

import (
	"fmt"
	"testing"
)

// Many skipped events are named ten at a time.
func TestSummarizeNamesTenWarningsAndCountsTheRest(t *testing.T) {
	var ws []string
	for i := range 25 {
		ws = append(ws, fmt.Sprintf("event %d: no DTSTART; skipped", i))
	}
	got := Summarize(ws)
	if len(got) != 11 || got[9] != "event 9: no DTSTART; skipped" || got[10] != "and 15 more warnings" {
		t.Fatalf("Summarize = %q", got)
	}
	if got := Summarize(nil); len(got) != 0 {
		t.Fatalf("Summarize(nil) = %q", got)
	}
}
