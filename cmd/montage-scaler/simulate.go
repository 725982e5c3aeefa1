package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/simulate"
)

// simulateCmd replays a load trace through the real decision code and the
// HPA model, beside the alternatives, and prints one row per policy.
func simulateCmd(args []string, e env) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	tracePath := fs.String("trace", "", "load trace CSV: time,tasks,requests[,service_seconds]")
	var mdf metadataFlags
	mdf.register(fs)
	calPath := fs.String("calendar", "", "iCalendar file (.ics) standing in for calendarURL")
	format := fs.String("format", "table", "table, markdown (the table alone, as README.md shows it), json or csv")
	plot := fs.String("plot", "", "write load, replicas and queue wait over time to FILE.svg or FILE.png")
	policies := fs.String("policies", "", "comma-separated policies to run (default "+strings.Join(simulate.Policies(), ",")+
		", and "+simulate.MontageForecast+" when forecastMode is set)")
	w := simulate.DefaultWorkload()
	fs.IntVar(&w.Concurrency, "concurrency", w.Concurrency, "tasks one replica runs at once (Celery --concurrency)")
	fs.DurationVar(&w.PodStartup, "pod-startup", w.PodStartup, "time from a pod's creation to serving")
	emit := fs.String("emit-openmetrics", "", "write the series the cluster would have exported under --emit-policy to FILE (OpenMetrics text, for promtool tsdb create-blocks-from openmetrics)")
	emitPolicy := fs.String("emit-policy", simulate.MontageScaler, "the policy --emit-openmetrics records: "+simulate.MontageScaler+" or "+simulate.MontageForecast)
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "simulate", err)
		return exitUsage
	}
	fail := func(err error) int {
		complain(e, "simulate", err)
		return exitUsage
	}
	switch {
	case *tracePath == "":
		return fail(errors.New("--trace FILE.csv is required"))
	case *format != "table" && *format != "markdown" && *format != "json" && *format != "csv":
		return fail(fmt.Errorf("--format %q: want table, markdown, json or csv", *format))
	}
	ext := strings.ToLower(filepath.Ext(*plot))
	if *plot != "" && ext != ".svg" && ext != ".png" {
		return fail(fmt.Errorf("--plot %q: want a file name ending in .svg or .png", *plot))
	}
	var ids []string
	for _, p := range strings.Split(*policies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ids = append(ids, p)
		}
	}

	tf, err := os.Open(*tracePath)
	if err != nil {
		return fail(fmt.Errorf("--trace: %w", err))
	}
	tr, err := simulate.ReadTrace(tf)
	tf.Close()
	if err != nil {
		return fail(fmt.Errorf("--trace %s: %w", *tracePath, err))
	}
	setup, code := prepareReplay(mdf, *calPath, tr, "simulate", e)
	if setup == nil {
		return code
	}
	opts := simulate.Options{Workload: w, Policies: ids}
	if *emit != "" {
		if opts.Record, err = emitted(*emitPolicy); err != nil {
			return fail(err)
		}
	}
	rep, err := simulate.Run(tr, setup, opts)
	if err != nil {
		return fail(err)
	}
	switch *format {
	case "json":
		err = simulate.WriteJSON(e.stdout, rep)
	case "csv":
		err = simulate.WriteCSV(e.stdout, rep)
	case "markdown":
		err = simulate.WriteMarkdown(e.stdout, rep)
	default:
		err = simulate.WriteTable(e.stdout, rep)
	}
	if err != nil {
		complain(e, "simulate", err)
		return exitNoDecision
	}
	if *emit != "" {
		if err := writeOpenMetrics(*emit, rep, simulate.NamesOf(setup.File.Bytes)); err != nil {
			fmt.Fprintf(e.stderr, "montage-scaler simulate: --emit-openmetrics: %v\n", err)
			return exitNoDecision
		}
		fmt.Fprintf(e.stderr, "montage-scaler simulate: wrote %s (OpenMetrics of %s)\n", *emit, *emitPolicy)
	}
	if *plot != "" {
		if err := writePlot(*plot, ext, rep); err != nil {
			fmt.Fprintf(e.stderr, "montage-scaler simulate: --plot: %v\n", err)
			return exitNoDecision
		}
		// On stderr: stdout is the table, JSON or CSV.
		fmt.Fprintf(e.stderr, "montage-scaler simulate: wrote %s\n", *plot)
	}
	return exitOK
}

// prepareReplay reads the metadata file (as a replay: no address needed)
// and the --calendar feed for a run over tr; a nil result comes with the
// exit status (the message is on stderr). Without a feed it says, in one
// line on stderr, that the run has no calendar events.
func prepareReplay(mdf metadataFlags, calPath string, tr simulate.Trace, cmd string, e env) (*simulate.Setup, int) {
	mf, code := mdf.read(cmd, e)
	if mf == nil {
		return nil, code
	}
	var ics []byte
	if calPath != "" {
		var err error
		if ics, err = os.ReadFile(calPath); err != nil {
			fmt.Fprintf(e.stderr, "montage-scaler %s: --calendar: %v\n", cmd, err)
			return nil, exitUsage
		}
	}
	setup, err := simulate.Prepare(components.Pure(), mf, ics, tr)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler %s: --metadata %s: %v\n", cmd, mdf.file, err)
		return nil, exitUsage
	}
	if setup.NoCalendar {
		fmt.Fprintf(e.stderr, "montage-scaler %s: %s\n", cmd, setup.NoCalendarNote())
	}
	return setup, exitOK
}

func writePlot(path, ext string, rep *simulate.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if ext == ".png" {
		err = simulate.WritePNG(f, rep)
	} else {
		err = simulate.WriteSVG(f, rep)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
