package decide

import (
	"fmt"
	"math"
	"time"
)

// Forecast modes (metadata forecastMode).
const (
	ForecastDisabled = "disabled"
	ForecastDryRun   = "dry-run"
	ForecastEnabled  = "enabled"
)

// ForecastStakeReplicas is the demand from which a bucket has a replica at
// stake: buckets where neither the estimate nor the actual demand reaches
// it are idle time (minReplicas serves them, and a few random tasks make
// their relative error meaningless). They count in Buckets and the mean
// errors, not in Relative, MAPE or UnderMinutes.
const ForecastStakeReplicas = 0.5

// ForecastError is how far the forecast was from the demand the history
// recorded over a past span (last week), bucket by bucket.
type ForecastError struct {
	// Buckets is how many buckets had both an estimate and an observation.
	Buckets int `json:"buckets"`
	// MeanError is mean(estimate − actual) in replicas: negative means
	// under-forecast on average.
	MeanError float64 `json:"meanError"`
	// MeanAbsError is mean(|estimate − actual|) in replicas.
	MeanAbsError float64 `json:"meanAbsError"`
	// Over is Σ (estimate − actual)⁺ / Σ actual, the divisor at least one
	// replica: what the forecast asked for beyond the demand, relative to
	// it. It is what a wrong forecast costs (an under-forecast costs
	// nothing: the reactive components scale as without it), and what the
	// forecast backs off on.
	Over float64 `json:"over"`
	// Relative is Σ|estimate − actual| / Σ actual over the buckets where
	// the estimate or the actual is at least ForecastStakeReplicas, the
	// divisor at least one replica so that an idle week forecast busy still
	// counts as wrong; 0 without such buckets.
	Relative float64 `json:"relative"`
	// MAPE is the mean absolute percentage error, mean(|estimate − actual|
	// / actual), over the buckets whose actual is at least
	// ForecastStakeReplicas; nil without one.
	MAPE *float64 `json:"mape"`
	// UnderMinutes counts minutes whose actual was at least
	// ForecastStakeReplicas and whose estimate was short of it by a whole
	// replica (the HPA asks for ceil of either).
	UnderMinutes float64 `json:"underMinutes"`
	// ExtraPodHours is Σ (estimate − actual)⁺ × bucket length: the cost of
	// over-forecasting had the forecast been the only component.
	ExtraPodHours float64 `json:"extraPodHours"`
}

// ForecastEvidence is the forecast component's evidence in plain numbers,
// computed by scaler/forecast from the stored history.
type ForecastEvidence struct {
	// Mode is ForecastDryRun or ForecastEnabled.
	Mode string `json:"mode"`
	// Target is now + lead time: the instant whose demand is forecast.
	Target time.Time `json:"target"`
	// Slot names the 5-minute slot of the week of Target in Zone ("Tue
	// 18:05 CEST").
	Slot string `json:"slot"`
	// Zone is the time zone of the slots of the week (forecastTimezone).
	Zone string `json:"zone"`
	// Estimate is the usual demand of the slot in replicas; nil when the
	// slot has too few observations.
	Estimate *float64 `json:"estimate"`
	// Samples is how many past weeks observed the slot.
	Samples int `json:"samples"`
	// HistoryWeeks is the depth of the stored history, in weeks.
	HistoryWeeks float64 `json:"historyWeeks"`
	// LastWeek is last week's forecast error; nil when unknown (no
	// estimates could be made then).
	LastWeek *ForecastError `json:"lastWeek"`
	// MinWeeks is the history depth below which the forecast is silent.
	MinWeeks float64 `json:"minWeeks"`
	// MaxError is the LastWeek.Over above which the forecast backs off.
	MaxError float64 `json:"maxError"`
	// NextHour is the most the forecast would ask for over the next hour
	// (the largest estimate of the 12 slots from Target on where it would
	// not be silent); nil when it would be silent in all of them.
	NextHour *float64 `json:"nextHour"`
}

// ForecastDetail is the forecast component's evidence for Explain.
type ForecastDetail struct {
	ForecastEvidence
	// Acting says the estimate takes part in the decision.
	Acting bool `json:"acting"`
	// Silent says why there is no opinion; empty when there is one.
	Silent string `json:"silent"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

// ForecastOpinion asks for the estimate of the slot lead time ahead, active
// while it is above zero. It stays silent with under MinWeeks of history,
// with no estimate for the slot, or when last week's relative over-forecast
// was above MaxError (a forecast that was wrong should cost little). In dry-run the
// opinion is advisory: shown and exported, not decided on.
func ForecastOpinion(e ForecastEvidence) Opinion {
	d := ForecastDetail{ForecastEvidence: e}
	o := Opinion{Warnings: []string{}}
	switch {
	case e.HistoryWeeks < e.MinWeeks:
		d.Silent = fmt.Sprintf("history %.1f weeks deep, under the %g weeks needed", e.HistoryWeeks, e.MinWeeks)
	case e.Estimate == nil:
		d.Silent = fmt.Sprintf("slot %s observed in %d past weeks: too few for an estimate", e.Slot, e.Samples)
	case math.IsNaN(*e.Estimate) || math.IsInf(*e.Estimate, 0) || *e.Estimate < 0:
		d.Silent = fmt.Sprintf("estimate %g is not a replica count", *e.Estimate)
		o.Warnings = append(o.Warnings, d.Silent)
		d.Estimate = nil // JSON has no NaN
	case e.LastWeek != nil && e.LastWeek.Over > e.MaxError:
		d.Silent = fmt.Sprintf("backing off: last week's over-forecast %.2f is above %g", e.LastWeek.Over, e.MaxError)
	}
	if d.Silent == "" {
		o.Desired = Ptr(math.Round(*e.Estimate*1000) / 1000)
		o.Active = *o.Desired > 0
		o.Advisory = e.Mode != ForecastEnabled
		d.Acting = !o.Advisory
	}
	d.Explanation = explainForecast(d, o)
	o.Detail = d
	return o
}

func explainForecast(d ForecastDetail, o Opinion) string {
	s := fmt.Sprintf("slot %s (at %s), history %.1f weeks", d.Slot, d.Target.UTC().Format(time.RFC3339), d.HistoryWeeks)
	if d.LastWeek != nil {
		s += fmt.Sprintf(", last week's over-forecast %.2f", d.LastWeek.Over)
	} else {
		s += ", last week's over-forecast unknown"
	}
	if d.Silent != "" {
		return s + "; silent: " + d.Silent
	}
	s += fmt.Sprintf("; expects %s replicas from %d past weeks", fmtNum(*o.Desired), d.Samples)
	if d.Acting {
		return s + "; acting (raises the decision only)"
	}
	return s + "; dry-run: not acting"
}
