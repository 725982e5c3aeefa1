package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/kube"
	"github.com/montage/montage-scaler/scaler/latency"
	latencyprom "github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/scaler/podcost"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
)

// checkFlags are check's flags: check reads a metadata file's sources
// once, with no server, and prints the decision as explain does.
type checkFlags struct {
	md                  metadataFlags
	obj                 objectFlags
	at                  instant
	format, logLevel    string
	timeout, staleAfter time.Duration
	waitWindow, strict  bool
	currentReplicas     int
	podCosts            bool
	kubeconfig          string
	cal                 calendarFlags
	net                 netFlags
}

func (f *checkFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	f.md.register(fs)
	f.obj.register(fs, "", "")
	fs.Var(&f.at, "at", "evaluate at this instant (RFC3339); default now")
	fs.StringVar(&f.format, "format", "json", "json or text")
	fs.StringVar(&f.logLevel, "log-level", "error", "the sources' log lines on stderr from this level: debug, info, warn or error (the printed decision already has their errors and warnings)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the sources' first reading")
	fs.DurationVar(&f.staleAfter, "stale-after", 2*time.Minute, "default staleAfter")
	fs.BoolVar(&f.waitWindow, "wait-window", false, "latency in direct-scrape mode (metricsURLs): take the second scrape latencyWindow after the first, so the P95 over the window exists (check otherwise reads once)")
	fs.BoolVar(&f.strict, "strict", false, "exit 2 on an unknown metadata key (a typo serve would only warn about), before reading any source: for CI")
	fs.IntVar(&f.currentReplicas, "current-replicas", -1, "current replicas of the Deployment, for the latency component (instead of the Kubernetes API or replicasQuery)")
	fs.BoolVar(&f.podCosts, "pod-costs", false, "also show the pod costs serve --pod-deletion-cost would write for the ScaledObject's target, and why (reads the Kubernetes API, writes nothing)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for --pod-costs outside a cluster; default: the pod's service account")
	f.cal.register(fs)
	f.net.register(fs)
	return fs
}

// checkRun is a built check: a registry over sources of its own, and the
// metadata to ask it about.
type checkRun struct {
	f       *checkFlags
	l       *loaded
	sp      *spec.Spec
	sources *source.Set
	reg     *registry.Registry
	kc      *kube.Client // --pod-costs
}

// build checks the flags, the metadata and its addresses, and makes the
// same sources as serve, reading once at the pinned instant; the forecast
// reads its history and records nothing.
func (f *checkFlags) build(ctx context.Context, e env) (runner, error) {
	if err := oneOf("--format", f.format, "json", "text"); err != nil {
		return nil, usageError(err)
	}
	replicas, err := f.replicas()
	if err != nil {
		return nil, err
	}
	var kc *kube.Client
	if f.podCosts {
		if kc, err = kubeClient(slog.New(slog.DiscardHandler), f.kubeconfig); err == nil && kc == nil {
			err = errors.New("--pod-costs needs the Kubernetes API: run in a cluster or give --kubeconfig")
		}
		if err != nil {
			return nil, usageError(err)
		}
	}
	parse := spec.Options{Table: components.Pure(), StaleAfter: f.staleAfter, ReplicaLookup: replicas != nil}
	l, sp, err := f.spec(parse, e)
	if err != nil {
		return nil, err
	}
	latencyInterval, err := f.latencyInterval(sp)
	if err != nil {
		return nil, err
	}
	limits := f.net.calendar(f.cal.Limits())
	if err := checkAddresses(ctx, sp, f.net.policy(), limits); err != nil {
		return nil, usageError(err)
	}
	// The decision printed carries every source's error and warning: the
	// sources' own log lines (a failing read, its retry) would only repeat
	// them, so they show from --log-level on.
	logger, err := newLogger(e.stderr, f.logLevel, "text")
	if err != nil {
		return nil, usageError(err)
	}
	redis.SetLogger(redisLog{logger}) // as serve: go-redis's pool chatter is debug, the source's error is reported once
	now := f.at.clock()
	sources := source.New(components.Table(), source.Options{Now: now, Logger: logger, Replicas: replicas, Calendar: limits, Policy: f.net.policy(), ReadOnly: true,
		Tuning: map[string]source.Tuning{latency.Name: &latencyprom.Tuning{Interval: latencyInterval}}})
	reg := registry.New(registry.Options{Sources: sources, Parse: parse, Now: now, FirstWait: f.timeout, Logger: logger})
	return &checkRun{f: f, l: l, sp: sp, sources: sources, reg: reg, kc: kc}, nil
}

// replicas is --current-replicas as the latency component's lookup; nil
// without it.
func (f *checkFlags) replicas() (latency.ReplicaLookup, error) {
	if f.currentReplicas < 0 {
		return nil, nil
	}
	if err := decide.CheckReplicas(float64(f.currentReplicas)); err != nil {
		return nil, usageError(fmt.Errorf("--current-replicas %w", err)) // int32 would cut it
	}
	return latency.FixedReplicas(f.currentReplicas), nil
}

// spec reads and parses the metadata file; with --strict an unknown key
// is a usage error.
func (f *checkFlags) spec(parse spec.Options, e env) (*loaded, *spec.Spec, error) {
	l, err := loadMetadata(f.md, "check", parse, e)
	if err != nil {
		return nil, nil, err
	}
	sp, err := spec.Parse(l.md, parse)
	if err != nil {
		return nil, nil, usageError(err)
	}
	if f.strict && len(sp.Unknown) > 0 {
		warnUnknown(e, sp)
		return nil, nil, usageError(fmt.Errorf("--strict: %d unknown metadata key(s)", len(sp.Unknown)))
	}
	return l, sp, nil
}

// latencyInterval is how far apart the latency component's reads are:
// with --wait-window, the first scrape now and the second one window
// later; else 0, the source's default (check reads once).
func (f *checkFlags) latencyInterval(sp *spec.Spec) (time.Duration, error) {
	if !f.waitWindow {
		return 0, nil
	}
	switch {
	case !directScrape(sp):
		return 0, usageError(errors.New("--wait-window: only a direct-scrape latency (metricsURLs) needs a second read; the metadata has none"))
	case f.at.t != nil:
		return 0, usageError(errors.New("--wait-window waits on the real clock: drop --at"))
	}
	lat, _ := spec.Find[*latency.Config](sp)
	return lat.Window, nil
}

// directScrape says whether sp's latency scrapes pods itself, and so
// needs two scrapes a window apart for a P95.
func directScrape(sp *spec.Spec) bool {
	lat, ok := spec.Find[*latency.Config](sp)
	return ok && lat.Mode == latency.ModeScrape
}

func (c *checkRun) run(ctx context.Context, e env) error {
	defer c.sources.Close()
	defer c.reg.Close()
	ns, name := c.f.obj.of(c.l.file)
	d, err := c.reg.Decide(ctx, ns, name, c.l.md)
	if err != nil {
		return usageError(err)
	}
	if wait := c.secondLook(e); wait > 0 {
		if d, err = c.decideAfter(ctx, wait, ns, name); err != nil {
			return err
		}
	}
	if c.kc != nil {
		d.PodCosts = podcost.Look(ctx, c.kc, podcost.Target{Namespace: ns, Name: name, Decision: d})
	}
	code := printDecision(e, "check", d, c.f.format)
	if directScrape(c.sp) && !c.f.waitWindow {
		fmt.Fprintf(e.stderr, "note: a direct-scrape latency needs two scrapes latencyWindow (%s) apart and check took one: give --wait-window, or ask a running serve (explain)\n", c.latency().Window)
	}
	// Last, where a person reads: serve only warns (KEDA must not break on
	// a key the scaler does not know); check says it plainly.
	warnUnknown(e, c.sp)
	return exitWith(code)
}

// heartbeatWait is how long check --pod-costs follows the workers'
// heartbeats before it plans: Celery's workers heartbeat every 2 s, and a
// broker's heartbeats count once followed for 3 s.
const heartbeatWait = 4 * time.Second

// secondLook is how long to wait before deciding again, saying why on
// stderr; 0: the first decision stands. --wait-window waits for the
// second scrape (a window after the first, at most latencyTimeout);
// --pod-costs for the workers' heartbeats (the costs follow each worker's
// running tasks). With both, the longer wait serves both.
func (c *checkRun) secondLook(e env) time.Duration {
	var wait time.Duration
	if c.f.waitWindow {
		lat := c.latency()
		wait = lat.Window + lat.Timeout + time.Second
		fmt.Fprintf(e.stderr, "montage-scaler check: --wait-window: the second scrape comes %s after the first; waiting %s\n", lat.Window, wait)
	}
	if c.kc != nil {
		fmt.Fprintf(e.stderr, "montage-scaler check: --pod-costs: following the workers' heartbeats for %s\n", heartbeatWait)
		wait = max(wait, heartbeatWait)
	}
	return wait
}

// decideAfter decides again once wait has passed.
func (c *checkRun) decideAfter(ctx context.Context, wait time.Duration, ns, name string) (decide.Decision, error) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return decide.Decision{}, exitWith(exitNoDecision)
	}
	d, err := c.reg.Decide(ctx, ns, name, c.l.md)
	if err != nil {
		return decide.Decision{}, usageError(err)
	}
	return d, nil
}

// latency is the metadata's latency config (nil: none).
func (c *checkRun) latency() *latency.Config {
	lat, _ := spec.Find[*latency.Config](c.sp)
	return lat
}
