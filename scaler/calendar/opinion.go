package calendar

import (
	"fmt"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/decide"
)

// reuse is how long one expansion of a feed copy serves an Opinion: the
// windows are concrete instants, so only which are in force changes with now.
const reuse = 30 * time.Second

// Opinion is one ScaledObject's calendar component over the shared feed.
// Expanding a large feed costs milliseconds, so the expansion is cached per
// feed copy and reused for 30 seconds.
type Opinion struct {
	c *Config

	mu       sync.Mutex
	feed     *Feed
	from     time.Time
	windows  []decide.CalendarWindow
	warnings []string
	err      error
}

// NewOpinion returns the calendar component of c.
func NewOpinion(c *Config) *Opinion { return &Opinion{c: c} }

// Of asks for the largest replicas of the windows in force at now in feed
// f; the feed's age is reported, not judged (events are future facts).
func (o *Opinion) Of(f *Feed, now time.Time) (decide.Opinion, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.feed != f || now.Before(o.from) || now.Sub(o.from) >= reuse {
		e, err := f.Expand(o.c, now, now.Add(Horizon+reuse))
		o.feed, o.from, o.err = f, now, err
		o.windows, o.warnings = ical.ForDecide(e.Windows), e.Warnings
	}
	if o.err != nil {
		// The hub refuses a copy that cannot be expanded with the plain
		// options (UTC, no lead, hold or free events); should this
		// trigger's own still fail, no windows can be trusted, so no good
		// reading. (An event beyond the step limits is only skipped, with
		// a warning.)
		return decide.Opinion{}, fmt.Errorf("calendar: expand: %w", o.err)
	}
	op := decide.CalendarOpinion(now, o.windows, f.Age(now))
	// The events skipped when the feed was parsed, then those this
	// object's expansion skipped: a lost event must show in Explain.
	var skipped []string
	if f.Calendar != nil {
		skipped = append(skipped, f.Calendar.Warnings...)
	}
	skipped = append(skipped, o.warnings...)
	op.Warnings = append(op.Warnings, Summarize(skipped)...)
	return op, nil
}
