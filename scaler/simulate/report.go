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

// seconds prints a target in seconds ("60s", not "1m0s").
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" }

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
		x.QueueWaitOverTargetMinutes = round(x.QueueWaitOverTargetMinutes, 1)
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
	"queueWaitOverTargetMinutes", "latencyOverTargetMinutes", "scaleEventsPerHour", "readyAtEventStart", "arrived", "queuedAtEnd", "runningAtEnd",
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
			num(x.QueueWaitP95Seconds), num(x.QueueWaitMaxSeconds), num(x.QueueWaitOverTargetMinutes), strconv.Itoa(x.LatencyOverTargetMinutes),
			num(x.ScaleEventsPerHour), opt(x.ReadyAtEventStart), strconv.Itoa(x.Arrived), strconv.Itoa(x.QueuedAtEnd),
			strconv.Itoa(x.RunningAtEnd), strconv.Itoa(int(x.PeakReplicas)), strconv.Itoa(x.ScaleDownsBelowInFlight), opt(x.PeakQueueWaitP95Seconds)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// table is the report's table for people: a header and one row per
// policy, the same cells whether aligned (WriteTable) or in Markdown
// (WriteMarkdown).
func table(r *Report) (header []string, body [][]string) {
	header = []string{"policy", "pod-hours", "videos", "pod-h/video", "wait P95 s", "wait max s"}
	if r.Peak != nil {
		header = append(header, "peak wait P95 s")
	}
	header = append(header, fmt.Sprintf("min wait>%s", seconds(r.QueueWaitTarget)), fmt.Sprintf("min P95>%s", r.LatencyTarget),
		"scale ev/h", "ready at event", "left at end")
	for _, x := range rows(r) {
		cost, ready := "-", "-"
		if x.CostPerVideo != nil {
			cost = strconv.FormatFloat(*x.CostPerVideo, 'f', 4, 64)
		}
		if x.ReadyAtEventStart != nil {
			ready = strconv.FormatFloat(*x.ReadyAtEventStart*100, 'f', 0, 64) + " %"
		}
		row := []string{x.Policy, fmt.Sprintf("%.3f", x.PodHours), strconv.Itoa(x.Videos), cost,
			fmt.Sprintf("%.1f", x.QueueWaitP95Seconds), fmt.Sprintf("%.1f", x.QueueWaitMaxSeconds)}
		if r.Peak != nil {
			peak := "-"
			if x.PeakQueueWaitP95Seconds != nil {
				peak = fmt.Sprintf("%.1f", *x.PeakQueueWaitP95Seconds)
			}
			row = append(row, peak)
		}
		body = append(body, append(row, fmt.Sprintf("%.1f", x.QueueWaitOverTargetMinutes), strconv.Itoa(x.LatencyOverTargetMinutes),
			fmt.Sprintf("%.2f", x.ScaleEventsPerHour), ready, strconv.Itoa(x.QueuedAtEnd+x.RunningAtEnd)))
	}
	return header, body
}

// WriteTable prints the report for people: what was simulated, then the
// table aligned.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	arrived := 0
	if len(r.Results) > 0 {
		arrived = r.Results[0].Arrived
	}
	fmt.Fprintf(&b, "trace %s to %s (%s, step %s): %d video tasks, %d calendar events\n",
		r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), r.End.Sub(r.Start), r.Step, arrived, len(r.Events))
	fmt.Fprintf(&b, "ScaledObject: %s\n", r.Settings)
	if p := r.Peak; p != nil {
		fmt.Fprintf(&b, "weekly peak: the %d slots of the week (%s) with at least half the busiest slot's mean arrivals, from %s\n",
			p.Slots, p.Zone, p.From.In(p.Zone).Format("Mon 2006-01-02"))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	header, body := table(r)
	for _, row := range append([][]string{header}, body...) {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	tw.Flush()
	if goal := Goal(r); len(goal) > 0 {
		b.WriteString("\n" + strings.Join(goal, "\n") + "\n")
	}
	return finish(w, &b, r)
}

// WriteMarkdown prints the table alone, as a Markdown table (README.md's
// tables are this output).
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	header, body := table(r)
	fmt.Fprintf(&b, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(&b, "|%s\n", strings.Repeat("---|", len(header)))
	for _, row := range body {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	return finish(w, &b, r)
}

// finish adds the warnings to b and writes it.
func finish(w io.Writer, b *strings.Builder, r *Report) error {
	for _, wn := range r.Warnings {
		fmt.Fprintf(b, "warning: %s\n", wn)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteSamples prints every policy's samples as CSV, one row per policy and
// instant: seconds since the trace's start, the Deployment's replicas, its
// ready pods, the tasks queued and running, and the head's wait.
func WriteSamples(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"policy", "time", "seconds", "replicas", "ready", "queued", "running", "oldest_wait_seconds"})
	for _, x := range r.Results {
		for _, s := range x.Samples {
			_ = cw.Write([]string{x.Policy, s.At.UTC().Format(time.RFC3339), num(s.At.Sub(r.Start).Seconds()), strconv.Itoa(int(s.Replicas)),
				strconv.Itoa(s.Ready), strconv.Itoa(s.Queued), strconv.Itoa(s.Running), num(s.OldestWaitSecond)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	return nil
}
