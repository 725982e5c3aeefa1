package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/simulate"
)

// simulateFlags are simulate's flags: simulate replays a load trace
// through the real decision code and the HPA model, beside the
// alternatives, and prints one row per policy.
type simulateFlags struct {
	trace            string
	md               metadataFlags
	calendar         string
	format, plot     string
	policies         string
	workload         simulate.Workload
	loop             simulate.Loop
	emit, emitPolicy string
	samples          string
	sampleEvery      time.Duration
}

func (f *simulateFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.StringVar(&f.trace, "trace", "", "load trace CSV: time,tasks,requests[,service_seconds]")
	f.md.register(fs)
	fs.StringVar(&f.calendar, "calendar", "", "iCalendar file (.ics) standing in for calendarURL")
	fs.StringVar(&f.format, "format", "table", "table, markdown (the table alone, as README.md shows it), json or csv")
	fs.StringVar(&f.plot, "plot", "", "write load, replicas and queue wait over time to FILE.svg or FILE.png")
	fs.StringVar(&f.policies, "policies", "", "comma-separated policies to run (default "+strings.Join(simulate.Policies(), ",")+
		", and "+simulate.MontageForecast+" when forecastMode is set)")
	f.workload = simulate.DefaultWorkload()
	w := &f.workload
	fs.IntVar(&w.Concurrency, "concurrency", w.Concurrency, "tasks one replica runs at once (Celery --concurrency)")
	f.registerLoop(fs)
	f.registerPod(fs)
	fs.StringVar(&f.samples, "samples", "", "write every policy's replicas, ready pods, queue and head wait at each --sample-every to FILE.csv")
	fs.DurationVar(&f.sampleEvery, "sample-every", time.Minute, "the resolution of --samples and --plot (whole seconds)")
	fs.StringVar(&f.emit, "emit-openmetrics", "", "write the series the cluster would have exported under --emit-policy to FILE (OpenMetrics text, for promtool tsdb create-blocks-from openmetrics)")
	fs.StringVar(&f.emitPolicy, "emit-policy", simulate.MontageScaler, "the policy --emit-openmetrics records: "+simulate.MontageScaler+" or "+simulate.MontageForecast)
	return fs
}

// registerLoop registers the flags of the timing the model would otherwise
// fix: the controllers', the metrics pipeline's and the pods' start-up.
// Each help says what the live loop (test/e2e, make e2e) runs with.
func (f *simulateFlags) registerLoop(fs *flag.FlagSet) {
	w, l := &f.workload, &f.loop
	fs.DurationVar(&w.PodStartup, "pod-startup", w.PodStartup, "time from a pod's creation to serving, at the least (the live loop's KWOK pods: 8s)")
	fs.DurationVar(&w.StartupJitter, "pod-startup-jitter", 0, "a new pod's start-up is --pod-startup plus a delay drawn uniformly below this; default 0: none (the live loop: 4s, KWOK's Ready at 8–12 s)")
	fs.Uint64Var(&w.Seed, "seed", 0, "seed of the --pod-startup-jitter draws, default 0: a seed gives the same delays on every run")
	fs.Func("pod-startups", "comma-separated start-up delays the new pods take in order of creation (a measured run's own), then --pod-startup plus jitter", func(v string) error {
		w.Startups = nil
		for _, s := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil || d < 0 || d > time.Hour {
				return fmt.Errorf("%q: want durations from 0s to 1h, such as 12.4s,14s", s)
			}
			w.Startups = append(w.Startups, d)
		}
		return nil
	})
	f.loop = simulate.DefaultLoop()
	fs.DurationVar(&l.HPASync, "hpa-sync-period", l.HPASync, "the HPA controller's --horizontal-pod-autoscaler-sync-period (the live loop's cluster: 2s)")
	fs.DurationVar(&l.Polling, "polling-interval", 0, "KEDA's pollingInterval, replacing the metadata file's; default 0: the file's, 30s for a flat map (the live loop's ScaledObject sets none: 30s)")
	fs.BoolVar(&l.CachedMetrics, "cached-metrics", false, "the triggers' useCachedMetrics: an HPA sync between polls reads the metric of the last poll; default off (the live loop: off)")
	fs.DurationVar(&l.ResourceLag, "resource-metrics-lag", 0, "how old the cpu and memory utilisation the HPA reads is; default 0: current (the live loop's metrics-server --metric-resolution: 10s)")
}

// registerPod registers the flags of a pod's CPU and memory, which the
// cpu and memory triggers read (simulate.Workload).
func (f *simulateFlags) registerPod(fs *flag.FlagSet) {
	w := &f.workload
	fs.Float64Var(&w.CPURequest, "cpu-request", w.CPURequest, "a pod's CPU request in cores, what the cpu trigger's utilisation divides by (deploy/app: 0.5)")
	fs.Float64Var(&w.TaskCPU, "task-cpu", w.TaskCPU, "cores a running task uses (the live loop's renders: 0.05)")
	fs.Float64Var(&w.IdleCPU, "idle-cpu", w.IdleCPU, "cores a ready pod uses with no task and no request (the live loop: 0.02)")
	fs.Float64Var(&w.MemoryBase, "memory-base", w.MemoryBase, "a pod's memory use with no task, in percent of its request (the live loop: 300Mi of 1Gi, 29.3)")
	fs.Float64Var(&w.MemoryPerTask, "memory-per-task", w.MemoryPerTask, "memory a running task adds, in percent of the pod's request (the live loop: 0)")
}

// validPod refuses the pod flags the model cannot run.
func (f *simulateFlags) validPod() error {
	w := f.workload
	for _, c := range []struct {
		name   string
		v      float64
		lo, hi float64
		open   bool // lo itself is refused
	}{
		{"cpu-request", w.CPURequest, 0, 64, true},
		{"task-cpu", w.TaskCPU, 0, 64, false},
		{"idle-cpu", w.IdleCPU, 0, 64, false},
		{"memory-base", w.MemoryBase, 0, 1000, false},
		{"memory-per-task", w.MemoryPerTask, 0, 1000, false},
	} {
		if !(c.v >= c.lo) || c.v > c.hi || (c.open && c.v == c.lo) {
			low := "from"
			if c.open {
				low = "above"
			}
			return fmt.Errorf("--%s %g: want %s %g to %g", c.name, c.v, low, c.lo, c.hi)
		}
	}
	return nil
}

// validLoop refuses the timing flags the model cannot run; the model
// advances one second at a time.
func (f *simulateFlags) validLoop() error {
	w, l := f.workload, f.loop
	for _, d := range []struct {
		name    string
		v       time.Duration
		lo, hi  time.Duration
		seconds bool
	}{
		{"pod-startup", w.PodStartup, 0, time.Hour, false},
		{"pod-startup-jitter", w.StartupJitter, 0, time.Hour, false},
		{"hpa-sync-period", l.HPASync, time.Second, 10 * time.Minute, true},
		{"polling-interval", l.Polling, 0, time.Hour, true},
		{"resource-metrics-lag", l.ResourceLag, 0, 10 * time.Minute, true},
	} {
		switch {
		case d.v < d.lo || d.v > d.hi:
			return fmt.Errorf("--%s %s: want %s to %s", d.name, d.v, d.lo, d.hi)
		case d.seconds && d.v%time.Second != 0:
			return fmt.Errorf("--%s %s: want whole seconds (the model steps one second at a time)", d.name, d.v)
		}
	}
	return nil
}

// simulateRun is a built simulate: the trace and its setup, and the
// options of the run.
type simulateRun struct {
	f       *simulateFlags
	plotExt string
	tr      simulate.Trace
	setup   *simulate.Setup
	opts    simulate.Options
}

func (f *simulateFlags) build(_ context.Context, e env) (runner, error) {
	if f.trace == "" {
		return nil, usageError(errors.New("--trace FILE.csv is required"))
	}
	if err := oneOf("--format", f.format, "table", "markdown", "json", "csv"); err != nil {
		return nil, usageError(err)
	}
	ext, err := plotExt(f.plot)
	if err != nil {
		return nil, usageError(err)
	}
	if err := f.validLoop(); err != nil {
		return nil, usageError(err)
	}
	if err := f.validPod(); err != nil {
		return nil, usageError(err)
	}
	if f.sampleEvery < time.Second || f.sampleEvery > 24*time.Hour || f.sampleEvery%time.Second != 0 {
		return nil, usageError(fmt.Errorf("--sample-every %s: want whole seconds from 1s to 24h", f.sampleEvery))
	}
	opts := simulate.Options{Workload: f.workload, Loop: f.loop, SampleEvery: f.sampleEvery}
	for _, p := range strings.Split(f.policies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			opts.Policies = append(opts.Policies, p)
		}
	}
	tr, err := readTraceFile(f.trace)
	if err != nil {
		return nil, usageError(err)
	}
	setup, err := prepareReplay(f.md, f.calendar, tr, "simulate", e)
	if err != nil {
		return nil, err
	}
	if f.emit != "" {
		if opts.Record, err = emitted(f.emitPolicy); err != nil {
			return nil, usageError(err)
		}
	}
	return &simulateRun{f: f, plotExt: ext, tr: tr, setup: setup, opts: opts}, nil
}

func (r *simulateRun) run(_ context.Context, e env) error {
	rep, err := simulate.Run(r.tr, r.setup, r.opts)
	if err != nil {
		return usageError(err)
	}
	if err := writeReport(e.stdout, r.f.format, rep); err != nil {
		return err
	}
	if r.f.format != "table" {
		// The table prints the goal under it; the other formats are data.
		for _, l := range simulate.Goal(rep) {
			fmt.Fprintf(e.stderr, "montage-scaler simulate: %s\n", l)
		}
	}
	if r.f.emit != "" {
		if err := writeOpenMetrics(r.f.emit, rep, simulate.NamesOf(r.setup.File.Bytes)); err != nil {
			return fmt.Errorf("--emit-openmetrics: %v", err)
		}
		fmt.Fprintf(e.stderr, "montage-scaler simulate: wrote %s (OpenMetrics of %s)\n", r.f.emit, r.f.emitPolicy)
	}
	if r.f.samples != "" {
		if err := writeFileWith(r.f.samples, func(w io.Writer) error { return simulate.WriteSamples(w, rep) }); err != nil {
			return fmt.Errorf("--samples: %v", err)
		}
		fmt.Fprintf(e.stderr, "montage-scaler simulate: wrote %s\n", r.f.samples)
	}
	if r.f.plot != "" {
		if err := writePlot(r.f.plot, r.plotExt, rep); err != nil {
			return fmt.Errorf("--plot: %v", err)
		}
		// On stderr: stdout is the table, JSON or CSV.
		fmt.Fprintf(e.stderr, "montage-scaler simulate: wrote %s\n", r.f.plot)
	}
	return nil
}

// writeReport prints rep in the --format asked for.
func writeReport(w io.Writer, format string, rep *simulate.Report) error {
	switch format {
	case "json":
		return simulate.WriteJSON(w, rep)
	case "csv":
		return simulate.WriteCSV(w, rep)
	case "markdown":
		return simulate.WriteMarkdown(w, rep)
	}
	return simulate.WriteTable(w, rep)
}

// prepareReplay reads the metadata file (as a replay: no address needed)
// and the --calendar feed for a run over tr; its error is a usage error.
// Without a feed it says, in one line on stderr, that the run has no
// calendar events.
func prepareReplay(mdf metadataFlags, calPath string, tr simulate.Trace, cmd string, e env) (*simulate.Setup, error) {
	mf, err := mdf.read(cmd, e)
	if err != nil {
		return nil, err
	}
	var ics []byte
	if calPath != "" {
		if ics, err = os.ReadFile(calPath); err != nil {
			return nil, usageError(fmt.Errorf("--calendar: %v", err))
		}
	}
	setup, err := simulate.Prepare(components.Pure(), mf, ics, tr)
	if err != nil {
		return nil, usageError(fmt.Errorf("--metadata %s: %v", mdf.file, err))
	}
	if setup.NoCalendar {
		fmt.Fprintf(e.stderr, "montage-scaler %s: %s\n", cmd, setup.NoCalendarNote())
	}
	return setup, nil
}

// writePlot draws rep to path, an SVG or a PNG by its extension.
func writePlot(path, ext string, rep *simulate.Report) error {
	return writeFileWith(path, func(w io.Writer) error {
		if ext == ".png" {
			return simulate.WritePNG(w, rep)
		}
		return simulate.WriteSVG(w, rep)
	})
}
