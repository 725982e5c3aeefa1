package simulate

import (
	"fmt"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/simulate/hpa"
)

// MontageForecast is this scaler with the forecast component enabled: it
// records each bucket's demand, as the server writes its history, and lets
// the estimate lead time ahead raise the decision. It runs
// by default when the metadata sets forecastMode (dry-run included: the
// policy shows what enabling it would do).
const MontageForecast = "montage-scaler+forecast"

// errorRefresh is how often the simulation recomputes last week's error (a
// week of estimates); the server does it once per 5-minute slot.
const errorRefresh = time.Hour

// sampleEvery is how often the forecaster samples the reactive components,
// as serve's --forecast-sample-interval does by default.
const sampleEvery = 15 * time.Second

// forecaster is the forecast component over an in-memory history that
// starts empty at the trace's start.
type forecaster struct {
	p      *kedaPolicy
	h      *forecast.History
	params forecast.Params
	// rec closes each bucket into the history as the server's recorder
	// does; sampled is when it last took a sample.
	rec     forecast.Bucketer
	sampled time.Time
	// record only: the forecast takes no part (montage-scaler with a
	// history, for the backtest).
	recordOnly bool

	errAt    time.Time
	lastWeek *decide.ForecastError
}

func newForecaster(p *kedaPolicy) *forecaster {
	params := forecast.Params{Weeks: forecast.DefaultWeeks, LeadTime: forecast.DefaultLeadTime,
		MinWeeks: forecast.MinWeeks, MaxError: forecast.DefaultMaxError}
	if c := p.s.Forecast; c != nil {
		params = c.Params()
	}
	return &forecaster{p: p, h: forecast.NewHistory(), params: params}
}

func (f *forecaster) eval(now time.Time, o observation, current int32) ([]hpa.Metric, bool) {
	rs := f.p.readings(now, o, current)
	if f.sampled.IsZero() || now.Sub(f.sampled) >= sampleEvery {
		f.sampled = now
		if b, d, ok := f.rec.Add(now, f.sample(now, o, rs)); ok {
			f.h.Observe(b, d)
		}
	}
	if f.recordOnly {
		return f.p.decide(now, rs)
	}

	if hour := now.Truncate(errorRefresh); !hour.Equal(f.errAt) {
		f.errAt = hour
		f.lastWeek = f.h.Errors(now.Add(-forecast.Week), now, f.params)
	}
	e := forecast.Evidence(f.h, now, decide.ForecastEnabled, f.params)
	e.LastWeek = f.lastWeek
	rs = append(rs, decide.Reading{Name: forecast.Name, GoodAt: now, NoExpiry: true, Opinion: decide.ForecastOpinion(e)})
	return f.p.decide(now, rs)
}

// sample is what the server's recorder would read at now: the broker's
// counts (the simulator knows them exactly) and the latency ask.
func (f *forecaster) sample(now time.Time, o observation, rs []decide.Reading) forecast.Sample {
	s := forecast.Sample{TasksPerReplica: f.p.s.TasksPerReplica, Asks: forecast.Demand{}}
	if f.p.s.Celery != nil {
		s.Tasks = &forecast.TaskSample{At: now, Backlog: int64(o.queued + o.running), InFlight: int64(o.running), Completed: int64(o.completed)}
	}
	for _, r := range rs {
		if r.Name == latency.Name {
			s.Asks[forecast.KindLatency] = 0
			if r.Opinion.Desired != nil {
				s.Asks[forecast.KindLatency] = *r.Opinion.Desired
			}
		}
	}
	return s
}

// ForecastReplay is a trace replayed for the forecast's backtest.
type ForecastReplay struct {
	// History is the demand recorded under montage-scaler, per bucket, as
	// the server would have stored it.
	History *forecast.History
	Params  forecast.Params
	// Reactive and Forecast are the montage-scaler and
	// montage-scaler+forecast runs.
	Reactive, Forecast Result
	// Peak is the trace's weekly peak (nil under three weeks).
	Peak *WeeklyPeak
}

// ReplayForecast replays tr under montage-scaler, recording the demand into
// a history (the forecast in dry-run), and under montage-scaler+forecast.
func ReplayForecast(tr Trace, s *Setup, w Workload) (*ForecastReplay, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if len(tr.Rows) < 2 || tr.Step <= 0 {
		return nil, fmt.Errorf("simulate: trace has no step")
	}
	out := &ForecastReplay{Peak: FindWeeklyPeak(tr, s.Zone())}
	for _, id := range []string{MontageScaler, MontageForecast} {
		c, err := newController(id, s, tr.Start, Loop{})
		if err != nil {
			return nil, err
		}
		if id == MontageScaler {
			p := c.(*kedaPolicy)
			f := newForecaster(p)
			f.recordOnly = true
			p.eval = f.eval
			out.History, out.Params = f.h, f.params
			out.Reactive = replay(replayRun{trace: tr, setup: s, workload: w, policy: id, ctl: c, every: 60, peak: out.Peak})
			// The server writes its open bucket when it stops.
			if b, d, ok := f.rec.Close(); ok {
				f.h.Observe(b, d)
			}
		} else {
			out.Forecast = replay(replayRun{trace: tr, setup: s, workload: w, policy: id, ctl: c, every: 60, peak: out.Peak})
		}
	}
	return out, nil
}
