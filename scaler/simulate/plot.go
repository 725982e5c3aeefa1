package simulate

import (
	"fmt"
	"image/color"
	"io"
	"time"

	"github.com/montage/montage-scaler/scaler/chart"
)

// colorOf gives each series its colour.
func colorOf(name string) color.RGBA {
	switch name {
	case Phase1HPA:
		return color.RGBA{0xd6, 0x27, 0x28, 0xff}
	case KEDABuiltin:
		return color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	case MontageScaler:
		return color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	case MontageForecast:
		return color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	case "tasks":
		return color.RGBA{0x94, 0x67, 0xbd, 0xff}
	}
	return color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
}

// Chart draws the trace's load, each policy's replicas and each policy's
// queue wait over time, calendar windows shaded.
func Chart(r *Report) *chart.Chart {
	load := chart.Panel{Title: "load", YLabel: "per minute", Series: []chart.Series{
		{Label: "video tasks/min", Color: colorOf("tasks")},
		{Label: "requests/min ÷ 100", Color: colorOf("requests")},
	}}
	for _, s := range r.Load {
		load.Series[0].Points = append(load.Series[0].Points, chart.Point{T: s.At, V: s.TasksPerMinute})
		load.Series[1].Points = append(load.Series[1].Points, chart.Point{T: s.At, V: s.RequestsPerMinute / 100})
	}
	reps := chart.Panel{Title: "replicas", YLabel: "replicas"}
	wait := chart.Panel{Title: "oldest queued task's wait", YLabel: "seconds"}
	for _, res := range r.Results {
		lr := chart.Series{Label: res.Policy, Color: colorOf(res.Policy), Step: true}
		lw := chart.Series{Label: res.Policy, Color: colorOf(res.Policy)}
		for _, s := range res.Samples {
			lr.Points = append(lr.Points, chart.Point{T: s.At, V: float64(s.Replicas)})
			lw.Points = append(lw.Points, chart.Point{T: s.At, V: s.OldestWaitSecond})
		}
		reps.Series, wait.Series = append(reps.Series, lr), append(wait.Series, lw)
	}
	c := &chart.Chart{
		Title: fmt.Sprintf("montage-scaler simulate: %s to %s", r.Start.Format("2006-01-02 15:04"), r.End.Format("2006-01-02 15:04 MST")),
		From:  r.Start, Until: r.End, Panels: []chart.Panel{load, reps, wait},
		BandLegend: "calendar window",
	}
	for _, e := range r.Events {
		c.Bands = append(c.Bands, chart.Band{From: e.From, Until: e.Until,
			Label: fmt.Sprintf("%s (%s to %s, lead time and hold included)", e.Summary, e.From.Format(time.Kitchen), e.Until.Format(time.Kitchen))})
	}
	return c
}

// WriteSVG draws Chart(r) as SVG.
func WriteSVG(w io.Writer, r *Report) error {
	if err := Chart(r).WriteSVG(w); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// WritePNG draws Chart(r) as PNG, its text set in the Go fonts.
func WritePNG(w io.Writer, r *Report) error {
	if err := Chart(r).WritePNG(w); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
