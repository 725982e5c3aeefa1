package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/feed"
	"github.com/montage/montage-scaler/scaler/components"
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

// calendarListFlags are the calendar command's flags: it prints the
// coming windows of a ScaledObject's feed.
type calendarListFlags struct {
	md     metadataFlags
	at     instant
	days   int
	format string
	cal    calendarFlags
	net    netFlags
}

func (f *calendarListFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("calendar", flag.ContinueOnError)
	f.md.register(fs)
	fs.Var(&f.at, "at", "list from this instant (RFC3339); default now")
	fs.IntVar(&f.days, "days", 7, "how many days ahead to list (1 to 7)")
	fs.StringVar(&f.format, "format", "text", "text (a table) or json")
	f.cal.register(fs)
	f.net.register(fs)
	return fs
}

// calendarList is a built calendar command: the feed's settings and
// limits, and the instant to list from.
type calendarList struct {
	f      *calendarListFlags
	now    time.Time
	c      *calendar.Config
	limits calendar.Limits
}

func (f *calendarListFlags) build(ctx context.Context, e env) (runner, error) {
	now := f.at.clock()()
	if f.days < 1 || f.days > 7 {
		return nil, usageError(fmt.Errorf("--days %d: want 1 to 7 (the scaler looks 7 days ahead)", f.days))
	}
	if err := oneOf("--format", f.format, "json", "text"); err != nil {
		return nil, usageError(err)
	}
	// Only the calendar: the other components' settings are neither read
	// nor demanded, and their variables need not be set.
	sp, err := specFromFile(f.md, "calendar", spec.Options{Table: components.Pure(), StaleAfter: time.Minute, Only: []string{calendar.Name}}, e)
	if err != nil {
		return nil, err
	}
	cal, ok := spec.Find[*calendar.Config](sp)
	if !ok {
		return nil, usageError(errors.New("the metadata names no calendarURL or calendarURLFromEnv"))
	}
	limits := f.net.calendar(f.cal.Limits())
	if err := feed.CheckURL(ctx, cal.URL, limits); err != nil {
		return nil, usageError(err)
	}
	return &calendarList{f: f, now: now, c: cal, limits: limits}, nil
}

func (c *calendarList) run(ctx context.Context, e env) error {
	fd, err := feed.FetchOnce(ctx, c.c, c.limits, nil)
	if err != nil {
		return err
	}
	l, err := calendar.List(fd, c.c, c.now, c.f.days)
	if err != nil {
		return err
	}
	if c.f.format == "json" {
		return writeJSONValue(e.stdout, l)
	}
	return calendar.RenderTable(e.stdout, l, c.c.Timezone)
}
