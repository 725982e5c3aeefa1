package calendar

import (
	"fmt"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// ForDecide returns the windows as the decide package sees them.
func ForDecide(ws []Window) []decide.CalendarWindow {
	out := make([]decide.CalendarWindow, len(ws))
	for i, w := range ws {
		out[i] = w.CalendarWindow
	}
	return out
}

// Opinion expands f over [now, now + Horizon] for c and returns the
// calendar component's opinion, the expansion's warnings included. An
// error means the feed could not be expanded (a limit was hit).
func (f *Feed) Opinion(c *Config, now time.Time) (decide.Opinion, error) {
	e, err := f.Expand(c, now, now.Add(Horizon))
	if err != nil {
		return decide.Opinion{}, err
	}
	o := decide.CalendarOpinion(now, ForDecide(e.Windows), f.Age(now))
	o.Warnings = append(o.Warnings, e.Warnings...)
	return o, nil
}

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
		o.windows, o.warnings = ForDecide(e.Windows), e.Warnings
	}
	if o.err != nil {
		// The hub refuses feeds that cannot be expanded, so this copy
		// expanded before; an error here is not evidence of anything.
		return decide.Opinion{}, fmt.Errorf("calendar: expand: %w", o.err)
	}
	op := decide.CalendarOpinion(now, o.windows, f.Age(now))
	op.Warnings = append(op.Warnings, o.warnings...)
	return op, nil
}
