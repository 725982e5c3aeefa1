package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/montage/montage-scaler/scaler/kpi"
)

// kubeName is a Kubernetes object name (DNS subdomain).
var kubeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// reportFlags are report's flags: report measures ADR-0002's KPIs (docs/adr-0002.md) of a
// Deployment from Prometheus over a window, in simulate's columns, and can
// plot replicas, queue and P95.
type reportFlags struct {
	prometheus             string
	namespace, deployment  string
	scaledObject           string
	since                  time.Duration
	until                  instant
	format, plot           string
	latencyTarget, timeout time.Duration
}

func (f *reportFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.StringVar(&f.prometheus, "prometheus", "", "Prometheus base URL, like http://prometheus-operated.monitoring.svc:9090")
	fs.StringVar(&f.namespace, "namespace", "montage", "namespace of the Deployment and its ScaledObject")
	fs.StringVar(&f.deployment, "deployment", "montage", "the Deployment measured")
	fs.StringVar(&f.scaledObject, "scaledobject", "", "the ScaledObject scaling it, whose processed-task counter counts the videos (default: the Deployment's name)")
	fs.DurationVar(&f.since, "since", 24*time.Hour, "length of the window, ending at --until")
	fs.Var(&f.until, "until", "end of the window, RFC3339 (default now)")
	fs.StringVar(&f.format, "format", "table", "table or json")
	fs.StringVar(&f.plot, "plot", "", "also draw replicas, queue and P95 over the window to FILE.svg or FILE.png")
	fs.DurationVar(&f.latencyTarget, "latency-target", 80*time.Millisecond, "the trigger's latencyTarget, for the minutes with the P95 above it")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "limit on each Prometheus query")
	return fs
}

// reportRun is a built report: the Prometheus client and what to ask it.
type reportRun struct {
	f       *reportFlags
	plotExt string
	client  *kpi.Client
	req     kpi.Request
}

func (f *reportFlags) build(context.Context, env) (runner, error) {
	if f.scaledObject == "" {
		f.scaledObject = f.deployment
	}
	ext, err := f.check()
	if err != nil {
		return nil, usageError(err)
	}
	client, err := kpi.NewClient(f.prometheus, nil, f.timeout)
	if err != nil {
		return nil, usageError(fmt.Errorf("--prometheus %w", err))
	}
	req := kpi.Request{
		Target: kpi.Target{Namespace: f.namespace, Deployment: f.deployment, ScaledObject: f.scaledObject},
		Until:  f.until.clock()().Truncate(time.Millisecond), Since: f.since, LatencyTarget: f.latencyTarget, Plot: f.plot != "",
	}
	if err := req.Validate(); err != nil {
		return nil, usageError(err)
	}
	return &reportRun{f: f, plotExt: ext, client: client, req: req}, nil
}

// check checks the flags, in the order they are listed here, and returns
// the --plot file's extension.
func (f *reportFlags) check() (plotExtension string, err error) {
	if f.prometheus == "" {
		return "", errors.New("--prometheus URL is required")
	}
	for _, name := range []struct{ flag, value string }{{"--namespace", f.namespace}, {"--deployment", f.deployment}, {"--scaledobject", f.scaledObject}} {
		if !kubeName.MatchString(name.value) {
			return "", fmt.Errorf("%s %q: want a Kubernetes name (lowercase letters, digits, '-', '.')", name.flag, name.value)
		}
	}
	if err := oneOf("--format", f.format, "table", "json"); err != nil {
		return "", err
	}
	ext, err := plotExt(f.plot)
	switch {
	case err != nil:
		return "", err
	case f.since < 5*time.Minute || f.since > 2160*time.Hour || f.since%time.Second != 0:
		return "", fmt.Errorf("--since %s: want whole seconds from 5m to 2160h (90 days)", f.since)
	case f.latencyTarget <= 0:
		return "", fmt.Errorf("--latency-target %s: want above 0", f.latencyTarget)
	}
	return ext, nil
}

func (r *reportRun) run(ctx context.Context, e env) error {
	rep, err := kpi.Measure(ctx, r.client, r.client.String(), r.req)
	var missing *kpi.MissingError
	if errors.As(err, &missing) && r.f.until.t == nil {
		err = fmt.Errorf("%w\n(the window ends now, --until's default: for a day backfilled or past, give --until its end, as make report-demo does)", err)
	}
	if err != nil {
		return err
	}
	if r.f.format == "json" {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteTable(e.stdout)
	}
	if err != nil {
		return err
	}
	if r.f.plot != "" {
		if err := writeReportPlot(r.f.plot, r.plotExt, rep); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		fmt.Fprintf(e.stderr, "montage-scaler report: wrote %s\n", r.f.plot)
	}
	return nil
}

// writeReportPlot draws rep's chart to path, an SVG or a PNG by its
// extension.
func writeReportPlot(path, ext string, rep *kpi.Report) error {
	c, err := rep.Chart()
	if err != nil {
		return err
	}
	return writeFileWith(path, func(w io.Writer) error {
		if ext == ".png" {
			return c.WritePNG(w)
		}
		return c.WriteSVG(w)
	})
}
