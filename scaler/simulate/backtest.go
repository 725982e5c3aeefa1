package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
)

// queueWait is a trace's queue wait and cost without and with the forecast:
// over the whole trace, and from Since on, when the forecast can speak.
type queueWait struct {
	P95Seconds [2]float64 `json:"p95Seconds"`
	MaxSeconds [2]float64 `json:"maxSeconds"`
	PodHours   [2]float64 `json:"podHours"`
	Since      time.Time  `json:"since"`
	// OldestWaitMaxSeconds is the longest any queued task had waited, at
	// one-minute samples from Since on.
	OldestWaitMaxSeconds [2]float64 `json:"oldestWaitMaxSeconds"`
	// MinutesOver30s counts samples from Since on whose oldest queued task
	// had waited over 30 s.
	MinutesOver30s [2]int `json:"minutesOver30s"`
}

// waitsSince fills the From-Since figures of results a and b.
func (q *queueWait) waitsSince(a, b Result) {
	for i, r := range []Result{a, b} {
		for _, s := range r.Samples {
			if s.At.Before(q.Since) {
				continue
			}
			q.OldestWaitMaxSeconds[i] = max(q.OldestWaitMaxSeconds[i], s.OldestWaitSecond)
			if s.OldestWaitSecond > 30 {
				q.MinutesOver30s[i]++
			}
		}
	}
}

type backtestOut struct {
	Source string `json:"source"`
	forecast.BacktestReport
	// QueueWait is [montage-scaler, montage-scaler+forecast]; nil without a
	// trace (the history holds asks, not arrivals).
	QueueWait *queueWait `json:"queueWait"`
}

// WriteBacktest prints a forecast backtest, as text or JSON: per week, the
// estimator's error beside last week's slot and, with a replayed trace, the
// queue wait and cost without and with the forecast.
func WriteBacktest(w io.Writer, format, source string, r forecast.BacktestReport, replay *ForecastReplay) error {
	out := backtestOut{Source: source, BacktestReport: r}
	if replay != nil {
		a, b := replay.Reactive, replay.Forecast
		out.QueueWait = &queueWait{
			P95Seconds: [2]float64{a.QueueWaitP95Seconds, b.QueueWaitP95Seconds},
			MaxSeconds: [2]float64{a.QueueWaitMaxSeconds, b.QueueWaitMaxSeconds},
			PodHours:   [2]float64{round(a.PodHours, 2), round(b.PodHours, 2)},
			Since:      r.From.Add(time.Duration(forecast.MinWeeks) * forecast.Week),
		}
		out.QueueWait.waitsSince(a, b)
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "source:\t%s\n", source)
	if r.Buckets == 0 {
		fmt.Fprintln(tw, "history:\tempty")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "history:\t%s to %s, %d buckets of %s\n", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Buckets, forecast.Bucket)
	fmt.Fprintln(tw, "\nWEEK FROM\tBUCKETS\tMEAN ERROR\tMEAN |ERROR|\tRELATIVE\tMINUTES UNDER\tEXTRA POD-HOURS")
	row := func(label string, fe *decide.ForecastError) {
		if fe == nil {
			fmt.Fprintf(tw, "%s\t0\tsilent (under %d weeks of history)\t\t\t\t\n", label, forecast.MinWeeks)
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%+.2f\t%.2f\t%.2f\t%.0f\t%.1f\n", label, fe.Buckets, fe.MeanError, fe.MeanAbsError, fe.Relative, fe.UnderMinutes, fe.ExtraPodHours)
	}
	for _, wk := range r.Weeks {
		row(wk.From.Format("2006-01-02 Mon"), wk.Error)
	}
	row("total", r.Total)
	row("last week's slot", r.Naive)
	if q := out.QueueWait; q != nil {
		fmt.Fprintln(tw, "\nQUEUE WAIT\tWITHOUT FORECAST\tWITH FORECAST")
		fmt.Fprintf(tw, "p95\t%.0fs\t%.0fs\n", q.P95Seconds[0], q.P95Seconds[1])
		fmt.Fprintf(tw, "max\t%.0fs\t%.0fs\n", q.MaxSeconds[0], q.MaxSeconds[1])
		fmt.Fprintf(tw, "pod-hours\t%.2f\t%.2f\n", q.PodHours[0], q.PodHours[1])
		if q.Since.Before(r.To) {
			fmt.Fprintf(tw, "from %s:\t\t\n", q.Since.Format("2006-01-02"))
			fmt.Fprintf(tw, "  longest wait of a queued task\t%.0fs\t%.0fs\n", q.OldestWaitMaxSeconds[0], q.OldestWaitMaxSeconds[1])
			fmt.Fprintf(tw, "  minutes with a task waiting over 30s\t%d\t%d\n", q.MinutesOver30s[0], q.MinutesOver30s[1])
		} else {
			// No row "from <a date after the trace>:" that would read as measured.
			fmt.Fprintf(tw, "\nthe forecast could act from %s, after the trace ends (%s): replay at least %d weeks to see it\n",
				q.Since.Format("2006-01-02"), r.To.Format("2006-01-02"), forecast.MinWeeks+1)
		}
	} else {
		fmt.Fprintln(tw, "\nqueue wait: give --trace to see it (the history holds what was asked for, not arrivals)")
	}
	return tw.Flush()
}
