package kpi

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func roundPtr(v *float64, digits int) *float64 {
	if v == nil {
		return nil
	}
	r := round(*v, digits)
	return &r
}

// rounded is the figures at simulate's precision: pod-hours to 3 decimals,
// cost per video to 4, scale events per hour to 2.
func (r *Report) rounded() Figures {
	f := r.Figures
	f.PodHours, f.CostPerVideo = round(f.PodHours, 3), roundPtr(f.CostPerVideo, 4)
	f.ScaleEventsPerHour = round(f.ScaleEventsPerHour, 2)
	f.PodStartupP50Seconds, f.PodStartupP95Seconds = roundPtr(f.PodStartupP50Seconds, 1), roundPtr(f.PodStartupP95Seconds, 1)
	f.RequestShareMaxOverMean = roundPtr(f.RequestShareMaxOverMean, 2)
	return f
}

// WriteJSON prints the figures as one JSON object, with the warnings.
func (r *Report) WriteJSON(w io.Writer) error {
	out := struct {
		Figures
		Warnings []string `json:"warnings"`
	}{r.rounded(), append([]string{}, r.Warnings...)}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteTable prints the figures for people, in simulate's columns where
// they mean the same (pod-hours, videos, pod-h/video, min P95>target,
// scale ev/h).
func (r *Report) WriteTable(w io.Writer) error {
	f := r.rounded()
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s (ScaledObject %s), %s to %s (%s), from Prometheus %s\n\n", f.Namespace, f.Deployment, f.ScaledObject,
		f.From.Format(time.RFC3339), f.Until.Format(time.RFC3339), f.Until.Sub(f.From), r.Prometheus)
	target := time.Duration(f.LatencyTargetSeconds * float64(time.Second))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "deployment\tpod-hours\tvideos\tpod-h/video\tmin P95>%s\tscale ev/h\tscale ups\tscale downs\tstartup p50 s\tstartup p95 s\treq max/mean\t\n", target)
	opt := func(v *float64, digits int) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatFloat(*v, 'f', digits, 64)
	}
	fmt.Fprintf(tw, "%s\t%.3f\t%d\t%s\t%d\t%.2f\t%d\t%d\t%s\t%s\t%s\t\n", f.Deployment, f.PodHours, f.Videos, opt(f.CostPerVideo, 4),
		f.LatencyOverTargetMinutes, f.ScaleEventsPerHour, f.ScaleUps, f.ScaleDowns,
		opt(f.PodStartupP50Seconds, 1), opt(f.PodStartupP95Seconds, 1), opt(f.RequestShareMaxOverMean, 2))
	tw.Flush()
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
