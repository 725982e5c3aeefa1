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
// over the whole trace, during its weekly peak, and from Since on, when the
// forecast can speak.
type queueWait struct {
	P95Seconds [2]float64 `json:"p95Seconds"`
	MaxSeconds [2]float64 `json:"maxSeconds"`
	// PeakP95Seconds is the queue wait P95 of the tasks that arrived during
	// the weekly peak (see simulate.WeeklyPeak); nil without one.
	PeakP95Seconds *[2]float64 `json:"peakP95Seconds"`
	PodHours       [2]float64  `json:"podHours"`
	Since          time.Time   `json:"since"`
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
	// trace (the history holds demand, not arrivals and waits).
	QueueWait *queueWait `json:"queueWait"`
}

// WriteBacktest prints a forecast backtest, as text or JSON: per week, the
// estimator's error beside the seasonal naive forecast's (last week's slot)
// and, with a replayed trace, the queue wait and cost without and with the
// forecast.
func WriteBacktest(w io.Writer, format, source string, r forecast.BacktestReport, replay *ForecastReplay) error {
	loc, err := time.LoadLocation(r.Zone)
	if err != nil {
		loc = time.UTC
	}
	out := backtestOut{Source: source, BacktestReport: r}
	if replay != nil {
		a, b := replay.Reactive, replay.Forecast
		out.QueueWait = &queueWait{
			P95Seconds: [2]float64{a.QueueWaitP95Seconds, b.QueueWaitP95Seconds},
			MaxSeconds: [2]float64{a.QueueWaitMaxSeconds, b.QueueWaitMaxSeconds},
			PodHours:   [2]float64{round(a.PodHours, 2), round(b.PodHours, 2)},
			Since:      r.From.In(loc).AddDate(0, 0, 7*forecast.MinWeeks).UTC(),
		}
		if a.PeakQueueWaitP95Seconds != nil && b.PeakQueueWaitP95Seconds != nil {
			out.QueueWait.PeakP95Seconds = &[2]float64{*a.PeakQueueWaitP95Seconds, *b.PeakQueueWaitP95Seconds}
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
	const day = "2006-01-02 Mon 15:04 MST"
	fmt.Fprintf(tw, "history:\t%s to %s (%s), %d buckets of %s%s\n", r.From.In(loc).Format(day), r.To.In(loc).Format(day), r.Zone, r.Buckets, forecast.Bucket, legacyNote(r.LegacyBuckets))
	fmt.Fprintf(tw, "naive:\tthe seasonal naive forecast, last week's slot\n")
	fmt.Fprintf(tw, "MAPE:\tmean |estimate − demand| / demand over buckets of at least %g replica\n", decide.ForecastStakeReplicas)
	fmt.Fprintf(tw, "under:\tminutes of at least %g replica whose estimate was a whole replica short\n", decide.ForecastStakeReplicas)
	fmt.Fprintf(tw, "over:\tthe over-forecast the forecast backs off on, Σ(estimate − demand)⁺ / Σ demand\n")
	fmt.Fprintln(tw, "\nWEEK FROM\tBUCKETS\tMAPE\tNAIVE MAPE\tUNDER MIN\tNAIVE UNDER MIN\tEXTRA POD-H\tNAIVE EXTRA POD-H\tOVER")
	pct := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f %%", 100**v)
	}
	row := func(label string, fe, naive *decide.ForecastError) {
		if fe == nil {
			fmt.Fprintf(tw, "%s\t0\t-\t-\t-\t-\t-\t-\t-\tsilent: under %d weeks of history\n", label, forecast.MinWeeks)
			return
		}
		if naive == nil {
			naive = &decide.ForecastError{}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\n", label, fe.Buckets, pct(fe.MAPE), pct(naive.MAPE),
			fe.UnderMinutes, naive.UnderMinutes, fe.ExtraPodHours, naive.ExtraPodHours, fe.Over)
	}
	for _, wk := range r.Weeks {
		row(wk.From.In(loc).Format("2006-01-02 Mon"), wk.Error, wk.Naive)
	}
	row("total", r.Total, r.Naive)
	if q := out.QueueWait; q != nil {
		fmt.Fprintln(tw, "\nQUEUE WAIT\tWITHOUT FORECAST\tWITH FORECAST")
		fmt.Fprintf(tw, "p95\t%.1fs\t%.1fs\n", q.P95Seconds[0], q.P95Seconds[1])
		if p := q.PeakP95Seconds; p != nil {
			fmt.Fprintf(tw, "p95 during the weekly peak\t%.1fs\t%.1fs\n", p[0], p[1])
		}
		fmt.Fprintf(tw, "max\t%.0fs\t%.0fs\n", q.MaxSeconds[0], q.MaxSeconds[1])
		fmt.Fprintf(tw, "pod-hours\t%.2f\t%.2f\n", q.PodHours[0], q.PodHours[1])
		if q.Since.Before(r.To) {
			fmt.Fprintf(tw, "from %s:\t\t\n", q.Since.In(loc).Format("2006-01-02"))
			fmt.Fprintf(tw, "  longest wait of a queued task\t%.0fs\t%.0fs\n", q.OldestWaitMaxSeconds[0], q.OldestWaitMaxSeconds[1])
			fmt.Fprintf(tw, "  minutes with a task waiting over 30s\t%d\t%d\n", q.MinutesOver30s[0], q.MinutesOver30s[1])
		} else {
			// No row "from <a date after the trace>:" that would read as measured.
			fmt.Fprintf(tw, "\nthe forecast could act from %s, after the trace ends (%s): replay at least %d weeks to see it\n",
				q.Since.In(loc).Format("2006-01-02"), r.To.In(loc).Format("2006-01-02"), forecast.MinWeeks+1)
		}
	} else {
		fmt.Fprintln(tw, "\nqueue wait: give --trace to see it (the history holds demand, not arrivals and waits)")
	}
	return tw.Flush()
}

// legacyNote says how many buckets are in the previous format.
func legacyNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d written before demand was recorded: the celery component's asks, ageing out)", n)
}
