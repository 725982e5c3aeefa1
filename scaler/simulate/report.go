package simulate

import (
	"encoding/csv"
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

// rows returns the policies' results rounded for output.
func rows(r *Report) []Result {
	out := make([]Result, 0, len(r.Results))
	for _, x := range r.Results {
		x.PodHours, x.CostPerVideo = round(x.PodHours, 3), roundPtr(x.CostPerVideo, 4)
		x.QueueWaitP95Seconds, x.QueueWaitMaxSeconds = round(x.QueueWaitP95Seconds, 1), round(x.QueueWaitMaxSeconds, 1)
		x.PeakQueueWaitP95Seconds = roundPtr(x.PeakQueueWaitP95Seconds, 1)
		x.ScaleEventsPerHour, x.ReadyAtEventStart = round(x.ScaleEventsPerHour, 2), roundPtr(x.ReadyAtEventStart, 3)
		x.Samples = nil
		out = append(out, x)
	}
	return out
}

// WriteJSON prints the report as a JSON array, one object per policy.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows(r)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

var csvHeader = []string{"policy", "podHours", "videos", "costPerVideo", "queueWaitP95Seconds", "queueWaitMaxSeconds",
	"latencyOverTargetMinutes", "scaleEventsPerHour", "readyAtEventStart", "arrived", "queuedAtEnd", "runningAtEnd",
	"peakReplicas", "scaleDownsBelowInFlight", "peakQueueWaitP95Seconds"}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func opt(v *float64) string {
	if v == nil {
		return ""
	}
	return num(*v)
}

// WriteCSV prints the report as CSV with a header; an absent value is empty.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, x := range rows(r) {
		_ = cw.Write([]string{x.Policy, num(x.PodHours), strconv.Itoa(x.Videos), opt(x.CostPerVideo),
			num(x.QueueWaitP95Seconds), num(x.QueueWaitMaxSeconds), strconv.Itoa(x.LatencyOverTargetMinutes),
			num(x.ScaleEventsPerHour), opt(x.ReadyAtEventStart), strconv.Itoa(x.Arrived), strconv.Itoa(x.QueuedAtEnd),
			strconv.Itoa(x.RunningAtEnd), strconv.Itoa(int(x.PeakReplicas)), strconv.Itoa(x.ScaleDownsBelowInFlight), opt(x.PeakQueueWaitP95Seconds)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteTable prints the report for people.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	arrived := 0
	if len(r.Results) > 0 {
		arrived = r.Results[0].Arrived
	}
	fmt.Fprintf(&b, "trace %s to %s (%s, step %s): %d video tasks, %d calendar events\n",
		r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), r.End.Sub(r.Start), r.Step, arrived, len(r.Events))
	latencyTarget := r.LatencyTarget
	fmt.Fprintf(&b, "ScaledObject settings: %s\n", r.Settings.Source)
	peakCol := ""
	if p := r.Peak; p != nil {
		fmt.Fprintf(&b, "weekly peak: the %d slots of the week (%s) with at least half the busiest slot's mean arrivals, from %s\n",
			p.Slots, p.Zone, p.From.In(p.Zone).Format("Mon 2006-01-02"))
		peakCol = "peak wait P95 s\t"
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "policy\tpod-hours\tvideos\tpod-h/video\twait P95 s\twait max s\t%smin P95>%s\tscale ev/h\tready at event\tleft at end\t\n", peakCol, latencyTarget)
	for _, x := range rows(r) {
		cost, ready, peak := "-", "-", ""
		if x.CostPerVideo != nil {
			cost = strconv.FormatFloat(*x.CostPerVideo, 'f', 4, 64)
		}
		if x.ReadyAtEventStart != nil {
			ready = strconv.FormatFloat(*x.ReadyAtEventStart*100, 'f', 0, 64) + " %"
		}
		if x.PeakQueueWaitP95Seconds != nil {
			peak = strconv.FormatFloat(*x.PeakQueueWaitP95Seconds, 'f', 1, 64) + "\t"
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%d\t%s\t%.1f\t%.1f\t%s%d\t%.2f\t%s\t%d\t\n", x.Policy, x.PodHours, x.Videos, cost,
			x.QueueWaitP95Seconds, x.QueueWaitMaxSeconds, peak, x.LatencyOverTargetMinutes, x.ScaleEventsPerHour, ready,
			x.QueuedAtEnd+x.RunningAtEnd)
	}
	tw.Flush()
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
