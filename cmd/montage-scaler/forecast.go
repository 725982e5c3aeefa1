package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/simulate"
	"github.com/montage/montage-scaler/scaler/spec"
)

// forecastCmd prints the forecast of a ScaledObject from its stored history
// (or from a trace replayed as the server would have recorded it): now, and
// slot by slot over the next 24 hours; with --backtest it replays that
// history instead: forecast against demand, week by week, beside the
// seasonal naive forecast.
func forecastCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("forecast", flag.ContinueOnError)
	var mdf metadataFlags
	mdf.register(fs)
	tracePath := fs.String("trace", "", "load trace CSV (time,tasks,requests[,service_seconds]) replayed instead of the stored history")
	calPath := fs.String("calendar", "", "iCalendar file (.ics) standing in for calendarURL with --trace")
	backtest := fs.Bool("backtest", false, "replay the history: forecast vs actual per week (and queue wait with --trace)")
	name := fs.String("name", "", "ScaledObject name (default: the ScaledObject file's)")
	namespace := fs.String("namespace", "", "ScaledObject namespace (default: the ScaledObject file's)")
	var at instant
	fs.Var(&at, "at", "evaluate at this instant (RFC3339); default now, or the trace's end")
	format := fs.String("format", "text", "text or json")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of the history read")
	var nf netFlags
	nf.register(fs)
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "forecast", err)
		return exitUsage
	}
	fail := func(code int, err error) int {
		complain(e, "forecast", err)
		return code
	}
	if *format != "text" && *format != "json" {
		return fail(exitUsage, fmt.Errorf("--format %q: want text or json", *format))
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
		s, code := prepareReplay(mdf, *calPath, tr, "forecast", e)
		if s == nil {
			return code
		}
		if replay, err = simulate.ReplayForecast(tr, s, simulate.DefaultWorkload()); err != nil {
			return fail(exitUsage, err)
		}
		h, params, source = replay.History, replay.Params, "trace "+*tracePath+" replayed under montage-scaler"
		mode = decide.ForecastEnabled
		if s.Forecast != nil {
			mode = s.Forecast.Mode
		}
		now = tr.End()
	} else {
		// The history lives in the celery component's broker; the other
		// components are not read.
		o := spec.Options{Table: components.Pure(), StaleAfter: 2 * time.Minute, Only: []string{celery.Name, forecast.Name}}
		l, code := loadMetadata(mdf, "forecast", o, e)
		if l == nil {
			return code
		}
		sp, err := spec.Parse(l.md, o)
		if err != nil {
			return fail(exitUsage, err)
		}
		c, ok := spec.Find[*forecast.Config](sp)
		if !ok {
			return fail(exitUsage, fmt.Errorf("metadata %q is disabled: no history is recorded; set it to dry-run (or give --trace)", forecast.KeyMode))
		}
		ns, n := first(*namespace, l.file.Namespace), first(*name, l.file.Name)
		if ns == "" || n == "" {
			return fail(exitUsage, errors.New("--namespace and --name are required (the history is kept per ScaledObject) unless the file is a ScaledObject with both"))
		}
		// As serve and check: go-redis's pool chatter stays out of the way;
		// a failed read is reported once, below.
		redis.SetLogger(redisLog{slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		rc, err := redisbroker.NewClient(c.Broker, *timeout, *timeout, nf.policy())
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
		err = simulate.WriteBacktest(e.stdout, *format, source, forecast.Backtest(h, params), replay)
	} else {
		ev := forecast.Evaluate(h, now, mode, params)
		plan := forecast.Plan(h, now, 24*time.Hour, mode, params, ev.LastWeek)
		hist := fmt.Sprintf("%d buckets", h.Len())
		if n := h.LegacyBuckets(); n > 0 {
			hist += fmt.Sprintf(", %d written before demand was recorded (the celery component's asks, ageing out)", n)
		}
		err = printForecast(e.stdout, *format, source, hist, decide.ForecastOpinion(ev), plan)
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
	// Slots are the next 24 hours, slot by slot.
	Slots []forecast.SlotPlan `json:"slots"`
}

// printForecast prints the forecast now and the plan of the coming slots.
func printForecast(w io.Writer, format, source, history string, o decide.Opinion, plan []forecast.SlotPlan) error {
	d := o.Detail.(decide.ForecastDetail)
	if format == "json" {
		return writeJSONValue(w, forecastOut{Source: source, Desired: o.Desired, Active: o.Active, Advisory: o.Advisory, Detail: d, Slots: plan})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "source:\t%s\n", source)
	fmt.Fprintf(tw, "history:\t%s\n", history)
	fmt.Fprintf(tw, "zone:\t%s\n", d.Zone)
	fmt.Fprintf(tw, "forecast:\t%s\n", d.Explanation)
	if d.NextHour != nil {
		fmt.Fprintf(tw, "next hour:\tup to %s replicas (serve exports it as montage_scaler_forecast_next_hour_replicas)\n", strconv.FormatFloat(*d.NextHour, 'f', -1, 64))
	} else {
		fmt.Fprintf(tw, "next hour:\tsilent\n")
	}
	fmt.Fprintln(tw, "\nSLOT\tESTIMATE\tWEEKS\tACTING")
	for _, s := range plan {
		est := "-"
		if s.Estimate != nil {
			est = strconv.FormatFloat(math.Round(*s.Estimate*100)/100, 'f', 2, 64)
		}
		acting := "yes"
		switch {
		case s.Silent != "":
			acting = "no: " + s.Silent
		case !s.Acting:
			acting = "no: dry-run"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Slot, est, s.Weeks, acting)
	}
	return tw.Flush()
}

func writeJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
