package forecast

import (
	"math"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// SlotPlan is what the forecast will do for one coming slot.
type SlotPlan struct {
	// At is the slot's start; Slot names it in the forecast's zone.
	At   time.Time `json:"at"`
	Slot string    `json:"slot"`
	// Estimate is the slot's usual demand in replicas; nil without enough
	// weeks of evidence.
	Estimate *float64 `json:"estimate"`
	// Weeks is how many past weeks observed the slot.
	Weeks int `json:"weeks"`
	// Acting says the estimate will take part in the decision (mode
	// enabled, not silent); Silent says why the forecast will be silent.
	Acting bool   `json:"acting"`
	Silent string `json:"silent"`
}

// Plan is the forecast of each slot starting in [from, from+span), as the
// forecast will judge it lead time before the slot: from the history as it
// is now, with lastWeek as last week's error (it is refreshed as the days
// pass; the plan assumes it stays).
func Plan(h *History, from time.Time, span time.Duration, mode string, p Params, lastWeek *decide.ForecastError) []SlotPlan {
	var out []SlotPlan
	for at := BucketOf(from); at.Before(from.Add(span)); at = at.Add(Bucket) {
		e := Evidence(h, at.Add(-p.LeadTime), mode, p)
		e.LastWeek = lastWeek
		d := decide.ForecastOpinion(e).Detail.(decide.ForecastDetail)
		out = append(out, SlotPlan{At: at, Slot: e.Slot, Estimate: d.Estimate, Weeks: e.Samples, Acting: d.Acting, Silent: d.Silent})
	}
	return out
}

// nextHour is the most the forecast would ask for over the next hour: the
// largest estimate of the 12 slots from now + lead time on where it would
// not be silent; nil when it would be silent in all.
func nextHour(h *History, now time.Time, mode string, p Params, lastWeek *decide.ForecastError) *float64 {
	var top *float64
	for _, s := range Plan(h, now.Add(p.LeadTime), time.Hour, mode, p, lastWeek) {
		if s.Silent == "" && s.Estimate != nil && (top == nil || *s.Estimate > *top) {
			v := math.Round(*s.Estimate*1000) / 1000
			top = &v
		}
	}
	return top
}
