package calendar

import (
	"errors"
	"fmt"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/meta"
)

// Horizon is how far ahead the scaler looks for windows.
const Horizon = 7 * 24 * time.Hour

// Feed is a parsed calendar plus what its fetch told: the value a Watch
// shares. It is immutable once published.
type Feed struct {
	// URL is the feed address, redacted.
	URL      string         `json:"url"`
	Calendar *ical.Calendar `json:"calendar"`
	// ETag and LastModified are the server's validators, sent back on the
	// next fetch.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	// FetchedAt is when the body was last downloaded (status 200).
	FetchedAt time.Time `json:"fetchedAt"`
	// ValidatedAt is when the server last confirmed it (200 or 304).
	ValidatedAt time.Time `json:"validatedAt"`
	// Warnings name the events of this copy the scaler cannot use, found
	// when it was parsed and expanded in UTC (a ScaledObject's own zone may
	// add some): exported and logged, so a lost event is never silent.
	Warnings []string `json:"warnings"`
}

// MaxShownWarnings is how many warnings of a feed one message names; the
// rest are counted ("and N more").
const MaxShownWarnings = 10

// Summarize returns at most MaxShownWarnings of ws, the last one saying
// how many more there are, each clipped.
func Summarize(ws []string) []string {
	out := make([]string, 0, min(len(ws), MaxShownWarnings+1))
	for _, w := range ws[:min(len(ws), MaxShownWarnings)] {
		out = append(out, meta.Clip(w, 300))
	}
	if n := len(ws) - MaxShownWarnings; n > 0 {
		out = append(out, fmt.Sprintf("and %d more warnings", n))
	}
	return out
}

// Age is how long ago the server last confirmed this copy.
func (f *Feed) Age(now time.Time) time.Duration {
	if f == nil || f.ValidatedAt.IsZero() {
		return 0
	}
	return now.Sub(f.ValidatedAt)
}

// Expand expands the feed for c over [from, to]: the windows (lead time and
// hold included) that overlap the span, sorted by From. An event whose
// recurrence is beyond the step limits is skipped with a warning (see
// Limits.MaxEventSteps); an error means the feed or the config is missing.
func (f *Feed) Expand(c *Config, from, to time.Time) (ical.Expansion, error) {
	if f == nil || f.Calendar == nil || c == nil {
		return ical.Expansion{Windows: []ical.Window{}, Warnings: []string{}}, errors.New("calendar: no feed or no config")
	}
	return f.Calendar.Expand(c.Expansion(), from, to)
}
