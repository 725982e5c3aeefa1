package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/kpi"
)

// kubeName is a Kubernetes object name (DNS subdomain).
var kubeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// reportCmd measures ADR-0002's KPIs (docs/adr-0002.md) of a Deployment from Prometheus over a
// window, in simulate's columns, and can plot replicas, queue and P95.
func reportCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	promURL := fs.String("prometheus", "", "Prometheus base URL, like http://prometheus-operated.monitoring.svc:9090")
	namespace := fs.String("namespace", "montage", "namespace of the Deployment and its ScaledObject")
	deployment := fs.String("deployment", "montage", "the Deployment measured")
	scaledObject := fs.String("scaledobject", "", "the ScaledObject scaling it, whose processed-task counter counts the videos (default: the Deployment's name)")
	since := fs.Duration("since", 24*time.Hour, "length of the window, ending at --until")
	var until instant
	fs.Var(&until, "until", "end of the window, RFC3339 (default now)")
	format := fs.String("format", "table", "table or json")
	plot := fs.String("plot", "", "also draw replicas, queue and P95 over the window to FILE.svg or FILE.png")
	target := fs.Duration("latency-target", 80*time.Millisecond, "the trigger's latencyTarget, for the minutes with the P95 above it")
	timeout := fs.Duration("timeout", 30*time.Second, "limit on each Prometheus query")
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "report", err)
		return exitUsage
	}
	fail := func(code int, err error) int {
		complain(e, "report", err)
		return code
	}
	if *scaledObject == "" {
		*scaledObject = *deployment
	}
	ext := strings.ToLower(filepath.Ext(*plot))
	switch {
	case *promURL == "":
		return fail(exitUsage, errors.New("--prometheus URL is required"))
	case !kubeName.MatchString(*namespace):
		return fail(exitUsage, fmt.Errorf("--namespace %q: want a Kubernetes name (lowercase letters, digits, '-', '.')", *namespace))
	case !kubeName.MatchString(*deployment):
		return fail(exitUsage, fmt.Errorf("--deployment %q: want a Kubernetes name (lowercase letters, digits, '-', '.')", *deployment))
	case !kubeName.MatchString(*scaledObject):
		return fail(exitUsage, fmt.Errorf("--scaledobject %q: want a Kubernetes name (lowercase letters, digits, '-', '.')", *scaledObject))
	case *format != "table" && *format != "json":
		return fail(exitUsage, fmt.Errorf("--format %q: want table or json", *format))
	case *plot != "" && ext != ".svg" && ext != ".png":
		return fail(exitUsage, fmt.Errorf("--plot %q: want a file name ending in .svg or .png", *plot))
	case *since < 5*time.Minute || *since > 2160*time.Hour || *since%time.Second != 0:
		return fail(exitUsage, fmt.Errorf("--since %s: want whole seconds from 5m to 2160h (90 days)", *since))
	case *target <= 0:
		return fail(exitUsage, fmt.Errorf("--latency-target %s: want above 0", *target))
	}
	client, err := kpi.NewClient(*promURL, nil, *timeout)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("--prometheus %w", err))
	}
	req := kpi.Request{
		Target: kpi.Target{Namespace: *namespace, Deployment: *deployment, ScaledObject: *scaledObject},
		Until:  until.clock()().Truncate(time.Millisecond), Since: *since, LatencyTarget: *target, Plot: *plot != "",
	}
	if err := req.Validate(); err != nil {
		return fail(exitUsage, err)
	}
	rep, err := kpi.Measure(ctx, client, client.String(), req)
	var missing *kpi.MissingError
	if errors.As(err, &missing) && until.t == nil {
		err = fmt.Errorf("%w\n(the window ends now, --until's default: for a day backfilled or past, give --until its end, as make report-demo does)", err)
	}
	if err != nil {
		return fail(exitNoDecision, err)
	}
	if *format == "json" {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteTable(e.stdout)
	}
	if err != nil {
		return fail(exitNoDecision, err)
	}
	if *plot != "" {
		if err := writeReportPlot(*plot, ext, rep); err != nil {
			return fail(exitNoDecision, fmt.Errorf("--plot: %w", err))
		}
		fmt.Fprintf(e.stderr, "montage-scaler report: wrote %s\n", *plot)
	}
	return exitOK
}

func writeReportPlot(path, ext string, rep *kpi.Report) error {
	c, err := rep.Chart()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if ext == ".png" {
		err = c.WritePNG(f)
	} else {
		err = c.WriteSVG(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
