package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/metafile"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
)

// check reads a metadata file's sources once, with no server, and prints
// the decision as explain does.
func check(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var mdf metadataFlags
	mdf.register(fs)
	name := fs.String("name", "", "ScaledObject name (default: the ScaledObject file's)")
	namespace := fs.String("namespace", "", "ScaledObject namespace (default: the ScaledObject file's)")
	var at instant
	fs.Var(&at, "at", "evaluate at this instant (RFC3339); default now")
	format := fs.String("format", "json", "json or text")
	logLevel := fs.String("log-level", "error", "the sources' log lines on stderr from this level: debug, info, warn or error (the printed decision already has their errors and warnings)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the sources' first reading")
	staleAfter := fs.Duration("stale-after", 2*time.Minute, "default staleAfter")
	waitWindow := fs.Bool("wait-window", false, "latency in direct-scrape mode (metricsURLs): take the second scrape latencyWindow after the first, so the P95 over the window exists (check otherwise reads once)")
	strict := fs.Bool("strict", false, "exit 2 on an unknown metadata key (a typo serve would only warn about), before reading any source: for CI")
	currentReplicas := fs.Int("current-replicas", -1, "current replicas of the Deployment, for the latency component (instead of the Kubernetes API or replicasQuery)")
	var cf calendarFlags
	cf.register(fs)
	var nf netFlags
	nf.register(fs)
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "check", err)
		return exitUsage
	}
	now := at.clock()
	if err := checkFormat(*format); err != nil {
		complain(e, "check", err)
		return exitUsage
	}
	var replicas latency.ReplicaLookup
	if *currentReplicas >= 0 {
		if err := decide.CheckReplicas(float64(*currentReplicas)); err != nil {
			complain(e, "check", fmt.Errorf("--current-replicas %w", err)) // int32 would cut it
			return exitUsage
		}
		replicas = latency.FixedReplicas(*currentReplicas)
	}
	parse := spec.Options{Table: components.Pure(), StaleAfter: *staleAfter, ReplicaLookup: replicas != nil}
	l, code := loadMetadata(mdf, "check", parse, e)
	if l == nil {
		return code
	}
	sp, err := spec.Parse(l.md, parse)
	if err != nil {
		complain(e, "check", err)
		return exitUsage
	}
	if *strict && len(sp.Unknown) > 0 {
		warnUnknown(e, sp)
		fmt.Fprintf(e.stderr, "montage-scaler check: --strict: %d unknown metadata key(s)\n", len(sp.Unknown))
		return exitUsage
	}
	lat, _ := spec.Find[*latency.Config](sp)
	scrape := lat != nil && lat.Mode == latency.ModeScrape
	var latencyInterval time.Duration
	if *waitWindow {
		switch {
		case !scrape:
			fmt.Fprintln(e.stderr, "montage-scaler check: --wait-window: only a direct-scrape latency (metricsURLs) needs a second read; the metadata has none")
			return exitUsage
		case at.t != nil:
			fmt.Fprintln(e.stderr, "montage-scaler check: --wait-window waits on the real clock: drop --at")
			return exitUsage
		}
		// The first scrape now, the second one window later.
		latencyInterval = lat.Window
	}
	limits := nf.calendar(cf.Limits())
	if err := checkAddresses(ctx, sp, nf.policy(), limits); err != nil {
		complain(e, "check", err)
		return exitUsage
	}

	// The decision printed carries every source's error and warning: the
	// sources' own log lines (a failing read, its retry) would only repeat
	// them, so they show from --log-level on.
	logger, err := newLogger(e.stderr, *logLevel, "text")
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
		return exitUsage
	}
	redis.SetLogger(redisLog{logger}) // as serve: go-redis's pool chatter is debug, the source's error is reported once
	// The same sources as serve, reading once at the pinned instant; the
	// forecast reads its history and records nothing.
	sources := source.New(components.Table(), source.Options{Now: now, Logger: logger, Replicas: replicas, Calendar: limits, Policy: nf.policy(), ReadOnly: true, LatencyInterval: latencyInterval})
	defer sources.Close()
	reg := registry.New(registry.Options{Sources: sources, Parse: parse, Now: now, FirstWait: *timeout, Logger: logger})
	defer reg.Close()
	ns, n := first(*namespace, l.file.Namespace), first(*name, l.file.Name)
	d, err := reg.Decide(ctx, ns, n, l.md)
	if err != nil {
		complain(e, "check", err)
		return exitUsage
	}
	if *waitWindow {
		// The second scrape starts a window after the first and takes at
		// most latencyTimeout.
		wait := lat.Window + lat.Timeout + time.Second
		fmt.Fprintf(e.stderr, "montage-scaler check: --wait-window: the second scrape comes %s after the first; waiting %s\n", lat.Window, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return exitNoDecision
		}
		if d, err = reg.Decide(ctx, ns, n, l.md); err != nil {
			complain(e, "check", err)
			return exitUsage
		}
	}
	code = printDecision(e, "check", d, *format)
	if scrape && !*waitWindow {
		fmt.Fprintf(e.stderr, "note: a direct-scrape latency needs two scrapes latencyWindow (%s) apart and check took one: give --wait-window, or ask a running serve (explain)\n", lat.Window)
	}
	// Last, where a person reads: serve only warns (KEDA must not break on
	// a key the scaler does not know); check says it plainly.
	warnUnknown(e, sp)
	return code
}

// warnUnknown prints a line per unknown key of sp on stderr.
func warnUnknown(e env, sp *spec.Spec) {
	for _, k := range sp.Unknown {
		fmt.Fprintf(e.stderr, "warning: %s\n", spec.UnknownKeyWarning(components.Pure(), k))
	}
}

// loaded is a metadata file read for a command.
type loaded struct {
	file *metafile.File
	md   map[string]string // xFromEnv resolved from this command's environment
}

// metadataFlags are --metadata and --trigger, shared by every command that
// reads a metadata file.
type metadataFlags struct {
	file, trigger string
}

func (m *metadataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.file, "metadata", "", "file with trigger metadata (flat key: value map) or a ScaledObject YAML")
	fs.StringVar(&m.trigger, "trigger", "", "which external trigger of a ScaledObject with several: its index in spec.triggers or its name")
}

// read reads the metadata file; a nil result comes with the exit status
// (the message is on stderr). The trigger a ScaledObject gave is named on
// stderr, so nobody reads another trigger's settings unawares.
func (m *metadataFlags) read(cmd string, e env) (*metafile.File, int) {
	if m.file == "" {
		fmt.Fprintf(e.stderr, "montage-scaler %s: --metadata FILE is required\n", cmd)
		return nil, exitUsage
	}
	mf, err := metafile.Read(m.file, m.trigger)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler %s: --metadata %s: %v\n", cmd, m.file, err)
		return nil, exitUsage
	}
	if mf.Trigger != "" {
		fmt.Fprintf(e.stderr, "montage-scaler %s: reading %s of ScaledObject %s\n", cmd, mf.Trigger, meta.ObjectRef(mf.Namespace, mf.Name))
	}
	return mf, exitOK
}

// loadMetadata reads the metadata file and resolves the xFromEnv keys that
// a command reading with o wants; a nil result comes with the exit status
// (the message is on stderr).
func loadMetadata(m metadataFlags, cmd string, o spec.Options, e env) (*loaded, int) {
	mf, code := m.read(cmd, e)
	if mf == nil {
		return nil, code
	}
	md, err := metafile.Resolve(mf.Metadata, e.getenv, o.Wants)
	if err != nil {
		complain(e, cmd, err)
		return nil, exitUsage
	}
	return &loaded{file: mf, md: md}, exitOK
}

// specFromFile is loadMetadata plus parsing into a Spec.
func specFromFile(m metadataFlags, cmd string, o spec.Options, e env) (*spec.Spec, int) {
	l, code := loadMetadata(m, cmd, o, e)
	if l == nil {
		return nil, code
	}
	sp, err := spec.Parse(l.md, o)
	if err != nil {
		complain(e, cmd, err)
		return nil, exitUsage
	}
	return sp, exitOK
}
