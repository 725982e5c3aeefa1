package decide

import (
	"fmt"
	"time"
)

// CalendarWindow is one event occurrence as the calendar component sees it:
// the event's own span, the span its replicas are wanted in (lead time and
// hold included), and what it asks for.
type CalendarWindow struct {
	Summary string `json:"summary"`
	UID     string `json:"uid"`
	// Start and End are the event's own times (UTC).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// From is Start − calendarLeadTime, Until is End + calendarHold.
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Replicas is what the window asks for, after the maxReplicas clamp.
	Replicas float64 `json:"replicas"`
	// Requested is the event's hint before the clamp.
	Requested float64 `json:"requested"`
	// ReplicasSource says where Requested came from: X-MONTAGE-REPLICAS,
	// SUMMARY, DESCRIPTION, CATEGORIES:<tier> or calendarReplicas.
	ReplicasSource string `json:"replicasSource"`
	// Clamped says Replicas was cut to maxReplicas.
	Clamped bool `json:"clamped"`
}

// CalendarDetail is the calendar component's evidence for Explain.
type CalendarDetail struct {
	// InForce are the windows open now (From <= now < Until).
	InForce []CalendarWindow `json:"inForce"`
	// Next is the first window that opens after now, nil when none is known.
	Next *CalendarWindow `json:"next"`
	// FeedAgeSeconds is how old the calendar copy is.
	FeedAgeSeconds float64 `json:"feedAgeSeconds"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

// CalendarOpinion asks for the largest Replicas of the windows open at now
// and is active while any is open (lead time included). With none open it
// has no opinion. feedAge is reported, not judged: a calendar's events are
// future facts however old the copy.
func CalendarOpinion(now time.Time, windows []CalendarWindow, feedAge time.Duration) Opinion {
	d := CalendarDetail{InForce: []CalendarWindow{}, FeedAgeSeconds: feedAge.Seconds()}
	o := Opinion{Warnings: []string{}}
	best := -1.0
	for _, w := range windows {
		switch {
		case !now.Before(w.From) && now.Before(w.Until):
			d.InForce = append(d.InForce, w)
			if w.Replicas > best {
				best = w.Replicas
			}
			if w.Clamped {
				o.Warnings = append(o.Warnings, fmt.Sprintf("event %q asks for %s replicas, clamped to maxReplicas %s",
					w.Summary, fmtNum(w.Requested), fmtNum(w.Replicas)))
			}
		case w.From.After(now):
			if d.Next == nil || w.From.Before(d.Next.From) {
				next := w
				d.Next = &next
			}
		}
	}
	if best >= 0 {
		o.Desired = Ptr(best)
		o.Active = true
	}
	d.Explanation = explainCalendar(now, d, best)
	o.Detail = d
	return o
}

func explainCalendar(now time.Time, d CalendarDetail, best float64) string {
	s := ""
	if len(d.InForce) == 0 {
		s = "no event in force"
	} else {
		s = "in force: "
		for i, w := range d.InForce {
			if i > 0 {
				s += ", "
			}
			s += fmt.Sprintf("%q %s replicas until %s", w.Summary, fmtNum(w.Replicas), w.Until.UTC().Format(time.RFC3339))
			if w.Clamped {
				s += fmt.Sprintf(" (asked %s, clamped to maxReplicas)", fmtNum(w.Requested))
			}
		}
		s += fmt.Sprintf("; asking for %s", fmtNum(best))
	}
	if d.Next != nil {
		s += fmt.Sprintf("; next: %q %s replicas from %s (in %s)", d.Next.Summary, fmtNum(d.Next.Replicas),
			d.Next.From.UTC().Format(time.RFC3339), d.Next.From.Sub(now).Round(time.Minute))
	} else {
		s += "; no further event known"
	}
	return s
}

func fmtNum(f float64) string { return FormatReplicas(f) }
