package main

import (
	"context"
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
	"github.com/montage/montage-scaler/scaler/forecast/store"
	"github.com/montage/montage-scaler/scaler/simulate"
	"github.com/montage/montage-scaler/scaler/spec"
)

// forecastFlags are forecast's flags. forecast prints the forecast of a
// ScaledObject from its stored history (or from a trace replayed as the
// server would have recorded it): now, and slot by slot over the next 24
// hours; with --backtest it replays that history instead: forecast
// against demand, week by week, beside the seasonal naive forecast.
type forecastFlags struct {
	md              metadataFlags
	trace, calendar string
	backtest        bool
	obj             objectFlags
	at              instant
	format          string
	timeout         time.Duration
	net             netFlags
}

func (f *forecastFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("forecast", flag.ContinueOnError)
	f.md.register(fs)
	fs.StringVar(&f.trace, "trace", "", "load trace CSV (time,tasks,requests[,service_seconds]) replayed instead of the stored history")
	fs.StringVar(&f.calendar, "calendar", "", "iCalendar file (.ics) standing in for calendarURL with --trace")
	fs.BoolVar(&f.backtest, "backtest", false, "replay the history: forecast vs actual per week (and queue wait with --trace)")
	f.obj.register(fs, "", "")
	fs.Var(&f.at, "at", "evaluate at this instant (RFC3339); default now, or the trace's end")
	fs.StringVar(&f.format, "format", "text", "text or json")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline of the history read")
	f.net.register(fs)
	return fs
}

// forecastRun is a built forecast: the history (or how to read it), what
// it is learned with, and the instant to forecast from.
type forecastRun struct {
	f      *forecastFlags
	source string // where the history comes from, for people
	mode   string
	params forecast.Params
	now    time.Time
	// history is the trace's, replayed; without --trace, read reads it
	// from the broker, and closeBroker closes the broker's client.
	history     *forecast.History
	replay      *simulate.ForecastReplay
	read        func(context.Context) (*forecast.History, error)
	closeBroker func() error
}

func (f *forecastFlags) build(_ context.Context, e env) (runner, error) {
	if err := oneOf("--format", f.format, "text", "json"); err != nil {
		return nil, usageError(err)
	}
	from := f.stored
	if f.trace != "" {
		from = f.replayed
	}
	r, err := from(e)
	if err != nil {
		return nil, err
	}
	if f.at.t != nil {
		r.now = *f.at.t
	}
	return r, nil
}

// replayed is the forecast of --trace replayed under montage-scaler.
func (f *forecastFlags) replayed(e env) (*forecastRun, error) {
	tr, err := readTraceFile(f.trace)
	if err != nil {
		return nil, usageError(err)
	}
	s, err := prepareReplay(f.md, f.calendar, tr, "forecast", e)
	if err != nil {
		return nil, err
	}
	replay, err := simulate.ReplayForecast(tr, s, simulate.DefaultWorkload())
	if err != nil {
		return nil, usageError(err)
	}
	mode := decide.ForecastEnabled
	if s.Forecast != nil {
		mode = s.Forecast.Mode
	}
	return &forecastRun{f: f, source: "trace " + f.trace + " replayed under montage-scaler", mode: mode,
		params: replay.Params, now: tr.End(), history: replay.History, replay: replay}, nil
}

// stored is the forecast of the history serve records. It lives in the
// celery component's broker; the other components are not read.
func (f *forecastFlags) stored(e env) (*forecastRun, error) {
	o := spec.Options{Table: components.Pure(), StaleAfter: 2 * time.Minute, Only: []string{celery.Name, forecast.Name}}
	l, err := loadMetadata(f.md, "forecast", o, e)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Parse(l.md, o)
	if err != nil {
		return nil, usageError(err)
	}
	c, ok := spec.Find[*forecast.Config](sp)
	if !ok {
		return nil, usageError(fmt.Errorf("metadata %q is disabled: no history is recorded; set it to dry-run (or give --trace)", forecast.KeyMode))
	}
	ns, n := f.obj.of(l.file)
	if ns == "" || n == "" {
		return nil, usageError(errors.New("--namespace and --name are required (the history is kept per ScaledObject) unless the file is a ScaledObject with both"))
	}
	// As serve and check: go-redis's pool chatter stays out of the way;
	// a failed read is reported once, by run.
	redis.SetLogger(redisLog{slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	rc, err := redisbroker.NewClient(c.Broker, f.timeout, f.timeout, f.net.policy())
	if err != nil {
		return nil, err
	}
	history := store.New(rc, ns, n, c.Weeks)
	now := f.at.clock()()
	read := func(ctx context.Context) (*forecast.History, error) {
		h, err := history.Read(ctx, now)
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", c.Broker.Redacted(), err)
		}
		return h, nil
	}
	return &forecastRun{f: f, source: fmt.Sprintf("history %s in %s", history.Key(), c.Broker.Redacted()), mode: c.Mode,
		params: c.Params(), now: now, read: read, closeBroker: rc.Close}, nil
}

func (r *forecastRun) run(ctx context.Context, e env) error {
	h := r.history
	if r.read != nil {
		defer r.closeBroker()
		rctx, cancel := context.WithTimeout(ctx, r.f.timeout)
		defer cancel()
		var err error
		if h, err = r.read(rctx); err != nil {
			return err
		}
	}
	if r.f.backtest {
		return simulate.WriteBacktest(e.stdout, r.f.format, r.source, forecast.Backtest(h, r.params), r.replay)
	}
	ev := forecast.Evaluate(h, r.now, r.mode, r.params)
	plan := forecast.Plan(h, r.now, 24*time.Hour, r.mode, r.params, ev.LastWeek)
	hist := fmt.Sprintf("%d buckets", h.Len())
	if n := h.LegacyBuckets(); n > 0 {
		hist += fmt.Sprintf(", %d written before demand was recorded (the celery component's asks, ageing out)", n)
	}
	return printForecast(e.stdout, r.f.format, r.source, hist, decide.ForecastOpinion(ev), plan)
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
