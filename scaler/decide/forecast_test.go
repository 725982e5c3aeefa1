package decide

import (
	"math"
	"testing"
	"time"
)

func TestForecastOpinion(t *testing.T) {
	target := time.Date(2026, 12, 1, 18, 5, 0, 0, time.UTC)
	base := ForecastEvidence{Mode: ForecastEnabled, Target: target, Slot: "Tue 18:05 UTC", Estimate: Ptr(3.25),
		Samples: 3, HistoryWeeks: 3.5, MinWeeks: 2, MaxError: 0.5,
		LastWeek: &ForecastError{Buckets: 2016, Over: 0.2}}
	with := func(f func(*ForecastEvidence)) ForecastEvidence { e := base; f(&e); return e }

	tests := []struct {
		name        string
		e           ForecastEvidence
		desired     *float64
		active      bool
		advisory    bool
		acting      bool
		explanation string
	}{
		{
			name: "an enabled forecast with enough history asks for its estimate and acts", e: base,
			desired: Ptr(3.25), active: true, acting: true,
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.20; expects 3.25 replicas from 3 past weeks; acting (raises the decision only)",
		},
		{
			name: "a dry-run forecast asks for its estimate as advice only", e: with(func(e *ForecastEvidence) { e.Mode = ForecastDryRun }),
			desired: Ptr(3.25), active: true, advisory: true,
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.20; expects 3.25 replicas from 3 past weeks; dry-run: not acting",
		},
		{
			name: "under two weeks of history the forecast is silent", e: with(func(e *ForecastEvidence) { e.HistoryWeeks = 1.9 }),
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 1.9 weeks, last week's over-forecast 0.20; silent: history 1.9 weeks deep, under the 2 weeks needed",
		},
		{
			name: "a large error last week makes the forecast back off", e: with(func(e *ForecastEvidence) { e.LastWeek = &ForecastError{Over: 0.75} }),
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.75; silent: backing off: last week's over-forecast 0.75 is above 0.5",
		},
		{
			name: "an unknown error last week does not stop the forecast", e: with(func(e *ForecastEvidence) { e.LastWeek = nil }),
			desired: Ptr(3.25), active: true, acting: true,
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast unknown; expects 3.25 replicas from 3 past weeks; acting (raises the decision only)",
		},
		{
			name: "a slot without an estimate is silent", e: with(func(e *ForecastEvidence) { e.Estimate, e.Samples = nil, 1 }),
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.20; silent: slot Tue 18:05 UTC observed in 1 past weeks: too few for an estimate",
		},
		{
			name: "an estimate of zero is an opinion that is not active", e: with(func(e *ForecastEvidence) { e.Estimate = Ptr(0) }),
			desired: Ptr(0), acting: true,
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.20; expects 0 replicas from 3 past weeks; acting (raises the decision only)",
		},
		{
			name: "a NaN estimate is no opinion", e: with(func(e *ForecastEvidence) { e.Estimate = Ptr(math.NaN()) }),
			explanation: "slot Tue 18:05 UTC (at 2026-12-01T18:05:00Z), history 3.5 weeks, last week's over-forecast 0.20; silent: estimate NaN is not a replica count",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ForecastOpinion(tc.e)
			if (o.Desired == nil) != (tc.desired == nil) || (o.Desired != nil && *o.Desired != *tc.desired) {
				t.Errorf("desired %v, want %v", show(o.Desired), show(tc.desired))
			}
			if o.Active != tc.active || o.Advisory != tc.advisory {
				t.Errorf("active %t advisory %t, want %t %t", o.Active, o.Advisory, tc.active, tc.advisory)
			}
			d := o.Detail.(ForecastDetail)
			if d.Acting != tc.acting {
				t.Errorf("acting %t, want %t", d.Acting, tc.acting)
			}
			if d.Explanation != tc.explanation {
				t.Errorf("explanation\n got %s\nwant %s", d.Explanation, tc.explanation)
			}
		})
	}
}

func TestAnAdvisoryOpinionIsShownButNeitherRaisesNorActivates(t *testing.T) {
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	p := Policy{Min: 1, Max: Ptr(8), StaleAfter: time.Minute}
	tests := []struct {
		name       string
		forecast   Opinion
		want       float64
		wantActive bool
	}{
		{"an advisory forecast above the backlog changes nothing", Opinion{Desired: Ptr(6), Active: true, Advisory: true}, 2, false},
		{"an acting forecast above the backlog raises the decision", Opinion{Desired: Ptr(6), Active: true}, 6, true},
		{"an acting forecast below the backlog never lowers it", Opinion{Desired: Ptr(1.5), Active: true}, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(now, p, []Reading{
				{Name: Celery, GoodAt: now, Opinion: Opinion{Desired: Ptr(2)}},
				{Name: Forecast, GoodAt: now, Opinion: tc.forecast},
			})
			if d.Desired == nil || *d.Desired != tc.want || d.Active != tc.wantActive {
				t.Fatalf("decision %v active %t, want %g %t", show(d.Desired), d.Active, tc.want, tc.wantActive)
			}
			c := d.Components[1]
			if c.Name != Forecast || c.Desired == nil || *c.Desired != *tc.forecast.Desired {
				t.Fatalf("forecast component %+v: want its %g shown", c, *tc.forecast.Desired)
			}
			wantWarn := 0
			if tc.forecast.Advisory {
				wantWarn = 1
			}
			if len(c.Warnings) != wantWarn {
				t.Errorf("warnings %q, want %d", c.Warnings, wantWarn)
			}
		})
	}
}

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmtNum(*p)
}
