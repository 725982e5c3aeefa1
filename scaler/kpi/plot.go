package kpi

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"time"

	"github.com/montage/montage-scaler/scaler/chart"
)

// PlotData are the series of a report's plot over its window.
type PlotData struct {
	Step                      time.Duration
	Decision, Spec, Available []Point
	// Queued and InFlight are the celery component's evidence; when the
	// scaler does not export them (QueueDepth false), CeleryAsk is plotted
	// instead: the replicas the component asked for.
	Queued, InFlight, CeleryAsk []Point
	QueueDepth                  bool
	P95                         []Point
	LatencyTarget               time.Duration
	// Calendar are the intervals the calendar component asked for
	// replicas (lead time and hold included).
	Calendar [][2]time.Time
}

// plotStep gives a window about 720 points, in whole multiples of 15 s.
func plotStep(window time.Duration) time.Duration {
	s := (window/720 + 15*time.Second - 1) / (15 * time.Second) * (15 * time.Second)
	return max(s, 15*time.Second)
}

func plotData(ctx context.Context, p Querier, x queries, from, until time.Time, target time.Duration) (*PlotData, error) {
	d := &PlotData{Step: plotStep(until.Sub(from)), LatencyTarget: target}
	series := func(what, q string) ([]Point, error) {
		ss, err := p.QueryRange(ctx, q, from, until, d.Step)
		if err != nil {
			return nil, fmt.Errorf("plot: %s: %w", what, err)
		}
		if len(ss) == 0 {
			return nil, nil
		}
		if len(ss) > 1 {
			return nil, fmt.Errorf("plot: %s: %d series, want one", what, len(ss))
		}
		return ss[0].Points, nil
	}
	var err error
	for _, s := range []struct {
		what, q string
		dst     *[]Point
	}{
		{"decision", x.decision(), &d.Decision},
		{"spec.replicas", x.specReplicas(), &d.Spec},
		{"available replicas", x.availableReplicas(), &d.Available},
		{"queued tasks", x.queued(), &d.Queued},
		{"tasks in flight", x.inFlight(), &d.InFlight},
		{"P95", x.p95(), &d.P95},
	} {
		if *s.dst, err = series(s.what, s.q); err != nil {
			return nil, err
		}
	}
	d.QueueDepth = d.Queued != nil || d.InFlight != nil
	if !d.QueueDepth {
		if d.CeleryAsk, err = series("celery ask", x.componentAsk("celery")); err != nil {
			return nil, err
		}
	}
	cal, err := series("calendar ask", x.componentAsk("calendar"))
	if err != nil {
		return nil, err
	}
	d.Calendar = runs(cal, d.Step)
	return d, nil
}

// runs are the intervals covered by consecutive points (a gap is more than
// one step).
func runs(ps []Point, step time.Duration) [][2]time.Time {
	var out [][2]time.Time
	for i, pt := range ps {
		if i > 0 && pt.T.Sub(ps[i-1].T) <= step {
			out[len(out)-1][1] = pt.T.Add(step)
			continue
		}
		out = append(out, [2]time.Time{pt.T, pt.T.Add(step)})
	}
	return out
}

// chartPoints marks the steps Prometheus left out (no value) as gaps.
func chartPoints(ps []Point, step time.Duration) []chart.Point {
	out := make([]chart.Point, 0, len(ps))
	for i, p := range ps {
		if i > 0 && p.T.Sub(ps[i-1].T) > step+step/2 {
			out = append(out, chart.Point{T: ps[i-1].T.Add(step), V: math.NaN()})
		}
		out = append(out, chart.Point{T: p.T, V: p.V})
	}
	return out
}

// Chart draws the report's replicas, queue and P95 over its window.
func (r *Report) Chart() (*chart.Chart, error) {
	d := r.Plot
	if d == nil {
		return nil, fmt.Errorf("plot: the report was measured without its plot series")
	}
	blue, orange, green, purple, red := chart.Palette[0], chart.Palette[1], chart.Palette[2], chart.Palette[4], chart.Palette[3]
	reps := chart.Panel{Title: "replicas", YLabel: "replicas", Series: []chart.Series{
		{Label: "decision (scaler)", Color: purple, Points: chartPoints(d.Decision, d.Step), Step: true},
		{Label: "spec.replicas", Color: blue, Points: chartPoints(d.Spec, d.Step), Step: true},
		{Label: "available", Color: green, Points: chartPoints(d.Available, d.Step), Step: true},
	}}
	queue := chart.Panel{Title: "Celery queue", YLabel: "tasks", Series: []chart.Series{
		{Label: "queued", Color: orange, Points: chartPoints(d.Queued, d.Step), Step: true},
		{Label: "in flight", Color: blue, Points: chartPoints(d.InFlight, d.Step), Step: true},
	}}
	if !d.QueueDepth {
		queue = chart.Panel{Title: "Celery: the celery component's ask (no queue-depth metric exported)", YLabel: "replicas",
			Series: []chart.Series{{Label: "celery ask", Color: orange, Points: chartPoints(d.CeleryAsk, d.Step), Step: true}}}
	}
	target := d.LatencyTarget.Seconds()
	p95 := chart.Panel{Title: "API P95 over 1 min", YLabel: "seconds", Series: []chart.Series{
		{Label: "P95", Color: red, Points: chartPoints(d.P95, d.Step)},
		{Label: fmt.Sprintf("target %s", d.LatencyTarget), Color: color.RGBA{0x55, 0x55, 0x55, 0xff}, Dashed: true,
			Points: []chart.Point{{T: r.From, V: target}, {T: r.Until, V: target}}},
	}}
	// A P95 at the latency cap would flatten the rest: show up to 5x the
	// target, or the data's top below that.
	top := 0.0
	for _, p := range d.P95 {
		if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			top = math.Max(top, p.V)
		}
	}
	p95.YMax = math.Max(math.Min(top, 5*target), 2*target)
	c := &chart.Chart{
		Title: fmt.Sprintf("montage-scaler report: %s/%s, %s to %s", r.Namespace, r.Deployment,
			r.From.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04 MST")),
		From: r.From, Until: r.Until, Panels: []chart.Panel{reps, queue, p95}, BandLegend: "calendar window",
	}
	for _, w := range d.Calendar {
		c.Bands = append(c.Bands, chart.Band{From: w[0], Until: w[1], Label: "calendar window"})
	}
	return c, nil
}
