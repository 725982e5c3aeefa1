package simulate

import (
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
)

// WeeklyPeak is a multi-week trace's habitual rush: the 5-minute slots of
// the week, in the forecast's zone, whose mean arrivals over the trace's
// weeks are at least half the busiest slot's, counted from the week the
// forecast can first speak (after forecast.MinWeeks weeks of history). It
// is where the forecast should shorten the queue wait.
type WeeklyPeak struct {
	Zone *time.Location
	// From is the start of the first week the forecast can speak.
	From time.Time
	// Slots is how many slots of the week are in the peak.
	Slots int
	slots map[weekSlot]bool
}

// weekSlot is a wall-clock slot of the week.
type weekSlot struct {
	day    time.Weekday
	minute int
}

func slotOf(t time.Time, loc *time.Location) weekSlot {
	lt := forecast.BucketOf(t).In(loc)
	return weekSlot{lt.Weekday(), lt.Hour()*60 + lt.Minute()}
}

// FindWeeklyPeak finds tr's weekly peak in zone (nil: UTC); nil when the
// trace is shorter than forecast.MinWeeks + 1 weeks or has no task.
func FindWeeklyPeak(tr Trace, zone *time.Location) *WeeklyPeak {
	if zone == nil {
		zone = time.UTC
	}
	from := tr.Start.In(zone).AddDate(0, 0, 7*forecast.MinWeeks).UTC()
	if tr.End().Sub(from) < forecast.Week {
		return nil
	}
	sum := map[weekSlot]float64{}
	weeks := map[weekSlot]map[time.Time]bool{}
	for _, r := range tr.Rows {
		s := slotOf(r.Start, zone)
		sum[s] += float64(r.Tasks)
		if weeks[s] == nil {
			weeks[s] = map[time.Time]bool{}
		}
		weeks[s][forecast.BucketOf(r.Start)] = true
	}
	mean := map[weekSlot]float64{}
	busiest := 0.0
	for s, v := range sum {
		mean[s] = v / float64(len(weeks[s]))
		busiest = max(busiest, mean[s])
	}
	if busiest == 0 {
		return nil
	}
	p := &WeeklyPeak{Zone: zone, From: from, slots: map[weekSlot]bool{}}
	for s, v := range mean {
		if v >= busiest/2 {
			p.slots[s] = true
		}
	}
	p.Slots = len(p.slots)
	return p
}

// Holds says whether t is in the peak (from From on).
func (p *WeeklyPeak) Holds(t time.Time) bool {
	return p != nil && !t.Before(p.From) && p.slots[slotOf(t, p.Zone)]
}
