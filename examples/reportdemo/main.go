// Command reportdemo is `make report-demo`: `montage-scaler report` tried on
// a day that `simulate` predicted, with nothing but the scaler and Debian's
// prometheus package (prometheus and promtool, which `make test` installs):
//
//  1. simulate replays examples/traces/weekday-evening.csv and writes the
//     series the cluster would have exported (--emit-openmetrics);
//  2. promtool backfills them into a TSDB;
//  3. prometheus serves that TSDB on a port it picks itself (127.0.0.1:0)
//     and names in its log;
//  4. report measures ADR-0002's KPIs (docs/adr-0002.md) from it, and plots the day.
//
// Each step is printed as the command a person would type; README's
// recipe is the same commands (a test holds them together).
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var o options
	flag.StringVar(&o.scaler, "scaler", "bin/montage-scaler", "the montage-scaler binary (make build)")
	flag.StringVar(&o.prometheus, "prometheus", "", "the prometheus binary (default: prometheus on PATH, else /usr/bin/prometheus)")
	flag.StringVar(&o.promtool, "promtool", "", "the promtool binary (default: promtool on PATH, else /usr/bin/promtool)")
	flag.StringVar(&o.plot, "plot", "bin/report-demo.svg", "where report draws the day (.svg or .png)")
	flag.BoolVar(&o.keep, "keep", false, "leave Prometheus serving the day until Ctrl-C, to try report's flags on it")
	flag.Parse()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report-demo:", err)
		os.Exit(1)
	}
}

// options are the demo's flags.
type options struct {
	scaler, prometheus, promtool, plot string
	keep                               bool
}

// The day replayed: the trace, the ScaledObject it is simulated with, and
// its calendar.
const (
	trace    = "examples/traces/weekday-evening.csv"
	metadata = "examples/traces/scaledobject.yaml"
	calendar = "examples/traces/weekday-evening.ics"
)

// names are what the recipe's commands refer to: README's placeholders, or
// the demo's own paths and Prometheus's address.
type names struct {
	scaler, promtool, prometheus string
	// dir holds day.om and the TSDB (data).
	dir string
	// listen is Prometheus's --web.listen-address; url is where report
	// finds it (the address Prometheus bound, with port 0).
	listen, url string
	until, plot string
}

// recipe is the commands of the demo, in order; the Prometheus one runs
// in the background.
func recipe(n names) [][]string {
	om, data := filepath.Join(n.dir, "day.om"), filepath.Join(n.dir, "data")
	return [][]string{
		{n.scaler, "simulate", "--trace", trace, "--metadata", metadata, "--calendar", calendar, "--policies", "montage-scaler", "--emit-openmetrics", om},
		{n.promtool, "tsdb", "create-blocks-from", "openmetrics", om, data},
		{n.prometheus, "--config.file=/dev/null", "--storage.tsdb.path=" + data, "--web.listen-address=" + n.listen},
		{n.scaler, "report", "--prometheus", n.url, "--until", n.until, "--plot", n.plot},
	}
}

// prometheusStep is the index of the background step in recipe.
const prometheusStep = 2

func run(ctx context.Context, o options, out io.Writer) error {
	promtool, prom, err := tools(o)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.scaler); err != nil {
		return fmt.Errorf("%s: %w (make build makes it)", o.scaler, err)
	}
	until, err := traceEnd(trace)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "montage-report-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	n := names{scaler: o.scaler, promtool: promtool, prometheus: prom, dir: dir, listen: "127.0.0.1:0",
		until: until.Format(time.RFC3339), plot: o.plot}
	steps := recipe(n)

	fmt.Fprintf(out, "report-demo: a day simulate predicted (%s), backfilled into a Prometheus of its own, measured by report.\n", trace)
	fmt.Fprintf(out, "\n$ %s\n", strings.Join(steps[0], " "))
	if err := runStep(ctx, steps[0], out, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n$ %s\n", strings.Join(steps[1], " "))
	var promtoolOut strings.Builder
	if err := runStep(ctx, steps[1], &promtoolOut, &promtoolOut); err != nil {
		return fmt.Errorf("%w\n%s", err, promtoolOut.String())
	}
	blocks, _ := os.ReadDir(filepath.Join(dir, "data"))
	fmt.Fprintf(out, "(%d blocks written)\n", len(blocks))

	fmt.Fprintf(out, "\n$ %s &\n", strings.Join(steps[prometheusStep], " "))
	p, err := startPrometheus(ctx, steps[prometheusStep], filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return err
	}
	defer p.stop()
	fmt.Fprintf(out, "(Prometheus bound %s, as its log says: msg=\"Listening on\")\n", p.addr)

	n.url = "http://" + p.addr
	report := recipe(n)[3]
	fmt.Fprintf(out, "\n$ %s\n", strings.Join(report, " "))
	if err := runStep(ctx, report, out, out); err != nil {
		return err
	}
	fmt.Fprintf(out, `
What you saw: simulate predicted the day (its montage-scaler row); report measured the
same day from the series a cluster would have exported, in the same columns: videos and
scale events agree exactly, pod-hours within 15 s per deleted pod (report counts a pod
to its last scrape). Without --until, report measures the 24 hours before now, where
this Prometheus holds nothing.

Try next:
  open %s: replicas, queue and P95 over the day, the calendar event shaded
  make report-demo KEEP=1: this Prometheus keeps serving, for report --since 1h, --format json, its UI
  %s report --prometheus http://prometheus-operated.monitoring.svc:9090: your cluster's last 24 hours
`, o.plot, o.scaler)
	if o.keep {
		fmt.Fprintf(out, "\nPrometheus keeps serving the day at %s (its UI too); Ctrl-C stops it.\n", n.url)
		<-ctx.Done()
	}
	return nil
}

// tools finds promtool and prometheus: the flags, PATH, then Debian's
// /usr/bin.
func tools(o options) (promtool, prom string, err error) {
	find := func(flagValue, name string) string {
		if flagValue != "" {
			return flagValue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if _, err := os.Stat("/usr/bin/" + name); err == nil {
			return "/usr/bin/" + name
		}
		return ""
	}
	promtool, prom = find(o.promtool, "promtool"), find(o.prometheus, "prometheus")
	if promtool == "" || prom == "" {
		return "", "", errors.New("prometheus and promtool are needed: Debian's prometheus package has both (sudo apt-get install prometheus; make deps, which make test runs, installs it too)")
	}
	return promtool, prom, nil
}

// traceEnd is where the trace's day ends: its last row's time plus one
// step (the rows are the start of each step).
func traceEnd(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w (run from the repository's root, as make does)", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 3 {
		return time.Time{}, fmt.Errorf("%s: want a header and two rows at least: %v", path, err)
	}
	last, err1 := time.Parse(time.RFC3339, rows[len(rows)-1][0])
	prev, err2 := time.Parse(time.RFC3339, rows[len(rows)-2][0])
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return last.Add(last.Sub(prev)), nil
}

// runStep runs argv to its end.
func runStep(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(argv[0]), err)
	}
	return nil
}

// prometheus is the demo's Prometheus and the address it bound.
type prometheus struct {
	addr string
	stop func()
}

// Prometheus's own log lines: the address it bound, and readiness.
var (
	listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)
	readyLine   = regexp.MustCompile(`msg="Server is ready to receive web requests\."`)
)

// startPrometheus runs argv (listening on port 0), copies its log to
// logPath, and returns once its log has named the address it bound and
// said it is ready: no port is probed, the process says which it got.
func startPrometheus(ctx context.Context, argv []string, logPath string) (*prometheus, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	addrc, readyc := make(chan string, 1), make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		addr, ready := "", false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listeningOn.FindStringSubmatch(line); m != nil && addr == "" {
				addr = m[1]
				addrc <- addr
			}
			if !ready && readyLine.MatchString(line) {
				ready = true
				close(readyc)
			}
		}
	}()
	exited := make(chan struct{})
	go func() { <-logDone; _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	fail := func(why string) (*prometheus, error) {
		stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("prometheus %s; its log:\n%s", why, log)
	}
	var addr string
	limit := time.NewTimer(time.Minute)
	defer limit.Stop()
	for addr == "" || readyc != nil {
		select {
		case addr = <-addrc:
		case <-readyc:
			readyc = nil
		case <-exited:
			return fail("exited at start")
		case <-limit.C:
			return fail("did not say it was ready within a minute")
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
	}
	return &prometheus{addr: addr, stop: stop}, nil
}
