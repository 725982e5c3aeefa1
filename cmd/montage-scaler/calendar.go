package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/feed"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/spec"
)

// allowHosts is the repeatable --calendar-allow-host flag.
type allowHosts []string

func (a *allowHosts) String() string { return strings.Join(*a, ",") }

func (a *allowHosts) Set(v string) error {
	if _, err := feed.ParseAllowHost(v); err != nil {
		return err
	}
	*a = append(*a, v)
	return nil
}

// calendarFlags are the feed limits and network policy shared by serve,
// check and calendar.
type calendarFlags struct {
	limits calendar.Limits
	allow  allowHosts
}

func (c *calendarFlags) register(fs *flag.FlagSet) {
	d := calendar.DefaultLimits()
	fs.Int64Var(&c.limits.MaxBytes, "calendar-max-bytes", d.MaxBytes, "largest calendar feed accepted, in bytes")
	fs.DurationVar(&c.limits.FetchTimeout, "calendar-fetch-timeout", d.FetchTimeout, "bound on one feed fetch, redirects and body included")
	fs.IntVar(&c.limits.MaxEvents, "calendar-max-events", d.MaxEvents, "most events accepted in one feed")
	fs.IntVar(&c.limits.MaxSteps, "calendar-max-steps", d.MaxSteps, "most recurrence steps in one expansion of a feed, all its events together (events past it are skipped with a warning)")
	fs.IntVar(&c.limits.MaxEventSteps, "calendar-max-event-steps", d.MaxEventSteps, "most recurrence steps of one event in one expansion (an event past it is skipped with a warning, the rest kept)")
	fs.Var(&c.allow, "calendar-allow-host", "a host, host:port or CIDR whose private address a feed may use (repeatable)")
	fs.BoolVar(&c.limits.AllowPrivate, "calendar-allow-private", false, "let feeds live on loopback, private and link-local addresses (cloud metadata still needs --calendar-allow-host)")
}

func (c *calendarFlags) Limits() calendar.Limits {
	l := c.limits
	l.AllowHosts = append([]string(nil), c.allow...)
	return l
}

// calendarCmd prints the coming windows of a ScaledObject's feed.
func calendarCmd(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("calendar", flag.ContinueOnError)
	var mdf metadataFlags
	mdf.register(fs)
	var at instant
	fs.Var(&at, "at", "list from this instant (RFC3339); default now")
	days := fs.Int("days", 7, "how many days ahead to list (1 to 7)")
	format := fs.String("format", "text", "text (a table) or json")
	var cf calendarFlags
	cf.register(fs)
	var nf netFlags
	nf.register(fs)
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "calendar", err)
		return exitUsage
	}
	now := at.clock()()
	if *days < 1 || *days > 7 {
		fmt.Fprintf(e.stderr, "montage-scaler calendar: --days %d: want 1 to 7 (the scaler looks 7 days ahead)\n", *days)
		return exitUsage
	}
	if err := checkFormat(*format); err != nil {
		complain(e, "calendar", err)
		return exitUsage
	}
	// Only the calendar: the other components' settings are neither read
	// nor demanded, and their variables need not be set.
	sp, code := specFromFile(mdf, "calendar", spec.Options{StaleAfter: time.Minute, Components: []string{decide.Calendar}}, e)
	if sp == nil {
		return code
	}
	if sp.Calendar == nil {
		fmt.Fprintln(e.stderr, "montage-scaler calendar: the metadata names no calendarURL or calendarURLFromEnv")
		return exitUsage
	}
	limits := nf.calendar(cf.Limits())
	if err := feed.CheckURL(ctx, sp.Calendar.URL, limits); err != nil {
		complain(e, "calendar", err)
		return exitUsage
	}
	f, err := feed.FetchOnce(ctx, sp.Calendar, limits, nil)
	if err != nil {
		complain(e, "calendar", err)
		return exitNoDecision
	}
	l, err := calendar.List(f, sp.Calendar, now, *days)
	if err != nil {
		complain(e, "calendar", err)
		return exitNoDecision
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(l)
	} else {
		err = calendar.RenderTable(e.stdout, l, sp.Calendar.Timezone)
	}
	if err != nil {
		complain(e, "calendar", err)
		return exitNoDecision
	}
	return exitOK
}
