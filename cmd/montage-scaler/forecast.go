package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/montage/montage-scaler/scaler"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/simulate"
)

// forecastCmd prints the forecast of a ScaledObject from its stored history
// (or from a trace replayed as the server would have recorded it) and, with
// --backtest, replays that history: forecast against actual, week by week.
func forecastCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("forecast", flag.ContinueOnError)
	file := fs.String("metadata", "", "file with trigger metadata (flat key: value map) or a ScaledObject YAML")
	tracePath := fs.String("trace", "", "load trace CSV (time,tasks,requests[,service_seconds]) replayed instead of the stored history")
	calPath := fs.String("calendar", "", "iCalendar file (.ics) standing in for calendarURL with --trace")
	backtest := fs.Bool("backtest", false, "replay the history: forecast vs actual per week (and queue wait with --trace)")
	name := fs.String("name", "", "ScaledObject name (default: the ScaledObject file's)")
	namespace := fs.String("namespace", "", "ScaledObject namespace (default: the ScaledObject file's)")
	var at instant
	fs.Var(&at, "at", "evaluate at this instant (RFC3339); default now, or the trace's end")
	format := fs.String("format", "text", "text or json")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of the history read")
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(e.stderr, "montage-scaler forecast: %v\n", err)
		return exitUsage
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "montage-scaler forecast: %v\n", err)
		return code
	}
	if *format != "text" && *format != "json" {
		return fail(exitUsage, fmt.Errorf("--format %q: want text or json", *format))
	}
	if *file == "" {
		return fail(exitUsage, errors.New("--metadata FILE is required"))
	}

	var (
		h      *forecast.History
		params forecast.Params
		mode   string
		source string
		replay *simulate.ForecastReplay
		now    time.Time
	)
	if *tracePath != "" {
		tr, err := readTraceFile(*tracePath)
		if err != nil {
			return fail(exitUsage, err)
		}
		var ics []byte
		if *calPath != "" {
			if ics, err = os.ReadFile(*calPath); err != nil {
				return fail(exitUsage, fmt.Errorf("--calendar: %w", err))
			}
		}
		mdFile, err := os.ReadFile(*file)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("--metadata: %w", err))
		}
		s, err := simulate.Prepare(mdFile, ics, tr)
		if err != nil {
			return fail(exitUsage, err)
		}
		if replay, err = simulate.ReplayForecast(tr, s, simulate.DefaultWorkload()); err != nil {
			return fail(exitUsage, err)
		}
		h, params, source = replay.History, replay.Params, "trace "+*tracePath+" replayed under montage-scaler"
		mode = decide.ForecastEnabled
		if s.Spec.Forecast != nil {
			mode = s.Spec.Forecast.Mode
		}
		now = tr.End()
	} else {
		l, code := loadMetadata(*file, "forecast", e)
		if l == nil {
			return code
		}
		spec, err := scaler.ParseSpec(l.md, scaler.ParseOptions{StaleAfter: 2 * time.Minute, ReplicaLookup: true})
		if err != nil {
			return fail(exitUsage, err)
		}
		if spec.Forecast == nil {
			return fail(exitUsage, fmt.Errorf("metadata %q is disabled: no history is recorded; set it to dry-run (or give --trace)", forecast.KeyMode))
		}
		ns, n := first(*namespace, l.file.Namespace), first(*name, l.file.Name)
		if ns == "" || n == "" {
			return fail(exitUsage, errors.New("--namespace and --name are required (the history is kept per ScaledObject) unless the file is a ScaledObject with both"))
		}
		c := spec.Forecast
		rc, err := c.Broker.NewClient(*timeout, *timeout)
		if err != nil {
			return fail(exitNoDecision, err)
		}
		defer rc.Close()
		now = at.clock()()
		store := forecast.NewStore(rc, ns, n, c.Weeks)
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if h, err = store.Read(rctx, now); err != nil {
			return fail(exitNoDecision, fmt.Errorf("broker %s: %w", c.Broker.Redacted(), err))
		}
		params, mode, source = c.Params(), c.Mode, fmt.Sprintf("history %s in %s", store.Key(), c.Broker.Redacted())
	}
	if at.t != nil {
		now = *at.t
	}

	var err error
	if *backtest {
		err = printBacktest(e.stdout, *format, source, forecast.Backtest(h, params), replay)
	} else {
		err = printForecast(e.stdout, *format, source, decide.ForecastOpinion(forecast.Evaluate(h, now, mode, params)))
	}
	if err != nil {
		return fail(exitNoDecision, err)
	}
	return exitOK
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readTraceFile(path string) (simulate.Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return simulate.Trace{}, fmt.Errorf("--trace: %w", err)
	}
	defer f.Close()
	tr, err := simulate.ReadTrace(f)
	if err != nil {
		return simulate.Trace{}, fmt.Errorf("--trace %s: %w", path, err)
	}
	return tr, nil
}

type forecastOut struct {
	Source   string                `json:"source"`
	Desired  *float64              `json:"desiredReplicas"`
	Active   bool                  `json:"active"`
	Advisory bool                  `json:"advisory"`
	Detail   decide.ForecastDetail `json:"detail"`
}

func printForecast(w io.Writer, format, source string, o decide.Opinion) error {
	d := o.Detail.(decide.ForecastDetail)
	if format == "json" {
		return writeJSON(w, forecastOut{Source: source, Desired: o.Desired, Active: o.Active, Advisory: o.Advisory, Detail: d})
	}
	_, err := fmt.Fprintf(w, "source:   %s\nforecast: %s\n", source, d.Explanation)
	return err
}

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
func (q *queueWait) waitsSince(a, b simulate.Result) {
	for i, r := range []simulate.Result{a, b} {
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

func printBacktest(w io.Writer, format, source string, r forecast.BacktestReport, replay *simulate.ForecastReplay) error {
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
		return writeJSON(w, out)
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
		fmt.Fprintf(tw, "from %s:\t\t\n", q.Since.Format("2006-01-02"))
		fmt.Fprintf(tw, "  longest wait of a queued task\t%.0fs\t%.0fs\n", q.OldestWaitMaxSeconds[0], q.OldestWaitMaxSeconds[1])
		fmt.Fprintf(tw, "  minutes with a task waiting over 30s\t%d\t%d\n", q.MinutesOver30s[0], q.MinutesOver30s[1])
	} else {
		fmt.Fprintln(tw, "\nqueue wait: give --trace to see it (the history holds what was asked for, not arrivals)")
	}
	return tw.Flush()
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
