package decide

import (
	"slices"
	"testing"
	"time"
)

func TestCalendarOpinion(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	stream := CalendarWindow{Summary: "Live stream", UID: "a", Start: at("2025-03-25T18:00:00Z"), End: at("2025-03-25T20:00:00Z"),
		From: at("2025-03-25T17:50:00Z"), Until: at("2025-03-25T20:05:00Z"), Replicas: 6, Requested: 6, ReplicasSource: "SUMMARY"}
	batch := CalendarWindow{Summary: "Batch day", UID: "b", Start: at("2025-03-25T19:00:00Z"), End: at("2025-03-25T23:00:00Z"),
		From: at("2025-03-25T18:50:00Z"), Until: at("2025-03-25T23:05:00Z"), Replicas: 8, Requested: 12, Clamped: true, ReplicasSource: "X-MONTAGE-REPLICAS"}
	launch := CalendarWindow{Summary: "Launch", UID: "c", Start: at("2025-03-27T16:00:00Z"), End: at("2025-03-27T18:00:00Z"),
		From: at("2025-03-27T15:50:00Z"), Until: at("2025-03-27T18:05:00Z"), Replicas: 4, Requested: 4, ReplicasSource: "calendarReplicas"}
	all := []CalendarWindow{stream, batch, launch}

	tests := []struct {
		name        string
		now         string
		desired     *float64
		active      bool
		inForce     []string
		next        string
		warnings    []string
		explanation string
	}{
		{
			name: "before any window there is no opinion and the next event is named",
			now:  "2025-03-25T12:00:00Z", desired: nil, active: false, next: "Live stream",
			explanation: `no event in force; next: "Live stream" 6 replicas from 2025-03-25T17:50:00Z (in 5h50m0s)`,
		},
		{
			name: "the lead time opens the window before the event starts",
			now:  "2025-03-25T17:50:00Z", desired: Ptr(6), active: true, inForce: []string{"Live stream"}, next: "Batch day",
			explanation: `in force: "Live stream" 6 replicas until 2025-03-25T20:05:00Z; asking for 6; next: "Batch day" 8 replicas from 2025-03-25T18:50:00Z (in 1h0m0s)`,
		},
		{
			name: "overlapping events take the largest and a clamped hint is explained",
			now:  "2025-03-25T19:30:00Z", desired: Ptr(8), active: true, inForce: []string{"Live stream", "Batch day"}, next: "Launch",
			warnings:    []string{`event "Batch day" asks for 12 replicas, clamped to maxReplicas 8`},
			explanation: `in force: "Live stream" 6 replicas until 2025-03-25T20:05:00Z, "Batch day" 8 replicas until 2025-03-25T23:05:00Z (asked 12, clamped to maxReplicas); asking for 8; next: "Launch" 4 replicas from 2025-03-27T15:50:00Z (in 44h20m0s)`,
		},
		{
			name: "the hold keeps the window open after the event ends",
			now:  "2025-03-25T23:04:59Z", desired: Ptr(8), active: true, inForce: []string{"Batch day"}, next: "Launch",
			warnings:    []string{`event "Batch day" asks for 12 replicas, clamped to maxReplicas 8`},
			explanation: `in force: "Batch day" 8 replicas until 2025-03-25T23:05:00Z (asked 12, clamped to maxReplicas); asking for 8; next: "Launch" 4 replicas from 2025-03-27T15:50:00Z (in 40h45m0s)`,
		},
		{
			name: "the window closes exactly at the end of the hold",
			now:  "2025-03-25T23:05:00Z", desired: nil, active: false, next: "Launch",
			explanation: `no event in force; next: "Launch" 4 replicas from 2025-03-27T15:50:00Z (in 40h45m0s)`,
		},
		{
			name: "after the last window nothing further is known",
			now:  "2025-03-28T00:00:00Z", desired: nil, active: false,
			explanation: `no event in force; no further event known`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := CalendarOpinion(at(tc.now), all, 90*time.Second)
			if (o.Desired == nil) != (tc.desired == nil) || (o.Desired != nil && *o.Desired != *tc.desired) {
				t.Errorf("desired = %v, want %v", deref(o.Desired), deref(tc.desired))
			}
			if o.Active != tc.active {
				t.Errorf("active = %v, want %v", o.Active, tc.active)
			}
			d, ok := o.Detail.(CalendarDetail)
			if !ok {
				t.Fatalf("detail is %T", o.Detail)
			}
			var names []string
			for _, w := range d.InForce {
				names = append(names, w.Summary)
			}
			if !slices.Equal(names, tc.inForce) {
				t.Errorf("in force = %q, want %q", names, tc.inForce)
			}
			next := ""
			if d.Next != nil {
				next = d.Next.Summary
			}
			if next != tc.next {
				t.Errorf("next = %q, want %q", next, tc.next)
			}
			if !slices.Equal(o.Warnings, tc.warnings) && !(len(o.Warnings) == 0 && len(tc.warnings) == 0) {
				t.Errorf("warnings = %q, want %q", o.Warnings, tc.warnings)
			}
			if d.Explanation != tc.explanation {
				t.Errorf("explanation =\n %s\nwant\n %s", d.Explanation, tc.explanation)
			}
			if d.FeedAgeSeconds != 90 {
				t.Errorf("feed age = %v, want 90", d.FeedAgeSeconds)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
