package simulate

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/hpa"
)

// MontageForecast is this scaler with the forecast component enabled: it
// records what the reactive components ask for, as the server writes its
// history, and lets the estimate lead time ahead raise the decision. It runs
// by default when the metadata sets forecastMode (dry-run included: the
// policy shows what enabling it would do).
const MontageForecast = "montage-scaler+forecast"

// errorRefresh is how often the simulation recomputes last week's error (a
// week of estimates); the server does it once per 5-minute slot.
const errorRefresh = time.Hour

// forecaster is the forecast component over an in-memory history that
// starts empty at the trace's start.
type forecaster struct {
	p      *kedaPolicy
	h      *forecast.History
	params forecast.Params

	errAt    time.Time
	lastWeek *decide.ForecastError
}

func newForecaster(p *kedaPolicy) *forecaster {
	params := forecast.Params{Weeks: forecast.DefaultWeeks, LeadTime: forecast.DefaultLeadTime,
		MinWeeks: forecast.MinWeeks, MaxError: forecast.DefaultMaxError}
	if c := p.s.Spec.Forecast; c != nil {
		params = c.Params()
	}
	return &forecaster{p: p, h: forecast.NewHistory(), params: params}
}

func (f *forecaster) eval(now time.Time, o observation, current int32) ([]hpa.Metric, bool) {
	rs := f.p.readings(now, o, current)
	d := forecast.Demand{}
	for _, r := range rs {
		if r.Name != decide.Celery && r.Name != decide.Latency {
			continue
		}
		d[r.Name] = 0
		if r.Opinion.Desired != nil {
			d[r.Name] = *r.Opinion.Desired
		}
	}
	f.h.Observe(now, d)

	if hour := now.Truncate(errorRefresh); !hour.Equal(f.errAt) {
		f.errAt = hour
		f.lastWeek = f.h.Errors(now.Add(-forecast.Week), now, f.params)
	}
	e := forecast.Evidence(f.h, now, decide.ForecastEnabled, f.params)
	e.LastWeek = f.lastWeek
	rs = append(rs, decide.Reading{Name: decide.Forecast, GoodAt: now, NoExpiry: true, Opinion: decide.ForecastOpinion(e)})
	return f.p.decide(now, rs)
}
