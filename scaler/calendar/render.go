package calendar

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/decide"
)

// Listing is what `montage-scaler calendar` prints: the coming windows of
// one feed. It marshals to the command's JSON.
type Listing struct {
	URL  string    `json:"url"`
	Name string    `json:"name,omitempty"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// AgeSeconds is how old the copy is at From: 0 for a copy fetched
	// after From (a fresh fetch, or a listing from an --at in the past),
	// never negative.
	AgeSeconds float64       `json:"ageSeconds"`
	Timezone   string        `json:"timezone"`
	Windows    []ical.Window `json:"windows"`
	Warnings   []string      `json:"warnings"`
}

// List expands f for c over [at, at + days].
func List(f *Feed, c *Config, at time.Time, days int) (Listing, error) {
	if days < 1 || days > 366 {
		return Listing{}, fmt.Errorf("calendar: --days %d: want 1 to 366", days)
	}
	to := at.Add(time.Duration(days) * 24 * time.Hour)
	e, err := f.Expand(c, at, to)
	if err != nil {
		return Listing{}, err
	}
	tz := c.Timezone
	if tz == nil {
		tz = time.UTC
	}
	warnings := append(append([]string{}, f.Calendar.Warnings...), e.Warnings...)
	return Listing{
		URL:        f.URL,
		Name:       f.Calendar.Name,
		From:       at.UTC(),
		To:         to.UTC(),
		AgeSeconds: max(0, f.Age(at).Seconds()),
		Timezone:   tz.String(),
		Windows:    e.Windows,
		Warnings:   warnings,
	}, nil
}

// RenderTable writes l for people: one row per window, times in loc (nil:
// UTC), then the warnings.
func RenderTable(w io.Writer, l Listing, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	const layout = "Mon 2006-01-02 15:04 MST"
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FROM\tSTART\tEND\tUNTIL\tREPLICAS\tSOURCE\tSUMMARY\n")
	for _, win := range l.Windows {
		reps := decide.FormatReplicas(win.Replicas)
		if win.Clamped {
			reps += " (asked " + decide.FormatReplicas(win.Requested) + ", clamped)"
		}
		summary := strings.ReplaceAll(win.Summary, "\n", " ")
		if summary == "" {
			summary = "(UID " + win.UID + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			win.From.In(loc).Format(layout), win.Start.In(loc).Format(layout),
			win.End.In(loc).Format(layout), win.Until.In(loc).Format(layout),
			reps, win.ReplicasSource, summary)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("calendar: render: %w", err)
	}
	if len(l.Windows) == 0 {
		if _, err := fmt.Fprintf(w, "no windows from %s to %s\n", l.From.In(loc).Format(layout), l.To.In(loc).Format(layout)); err != nil {
			return fmt.Errorf("calendar: render: %w", err)
		}
	}
	for _, warn := range l.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", warn); err != nil {
			return fmt.Errorf("calendar: render: %w", err)
		}
	}
	return nil
}
