package scaler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
)

// source is one component's shared evidence as one watch sees it.
type source interface {
	name() string
	// reading returns the latest evidence at now without waiting on I/O.
	reading(now time.Time) decide.Reading
	// changed is closed when the source has a newer reading.
	changed() <-chan struct{}
	// first waits for the source's first attempt.
	first(ctx context.Context) error
	close()
}

type celerySource struct {
	w          *celery.Watch
	perReplica float64
}

func (s celerySource) name() string                    { return decide.Celery }
func (s celerySource) changed() <-chan struct{}        { return s.w.Changed() }
func (s celerySource) close()                          { s.w.Close() }
func (s celerySource) first(ctx context.Context) error { _, err := s.w.First(ctx); return err }

func (s celerySource) reading(time.Time) decide.Reading {
	snap := s.w.Latest()
	r := decide.Reading{Name: decide.Celery, GoodAt: snap.GoodAt, Err: snap.Err}
	if !snap.GoodAt.IsZero() {
		b := snap.Value
		r.Opinion = decide.CeleryOpinion(decide.CeleryBacklog{Queued: b.Queued, InFlight: b.InFlight}, s.perReplica, b)
	}
	return r
}

type latencySource struct{ w *latency.Watch }

func (s latencySource) name() string                    { return decide.Latency }
func (s latencySource) changed() <-chan struct{}        { return s.w.Changed() }
func (s latencySource) close()                          { s.w.Close() }
func (s latencySource) first(ctx context.Context) error { _, err := s.w.First(ctx); return err }

func (s latencySource) reading(time.Time) decide.Reading {
	snap := s.w.Latest()
	r := decide.Reading{Name: decide.Latency, GoodAt: snap.GoodAt, Err: snap.Err}
	if !snap.GoodAt.IsZero() {
		r.Opinion = snap.Value.Opinion()
	}
	return r
}

// calendarReuse is how long one expansion of the feed serves readings: the
// windows are concrete instants, so only which are in force changes with now.
const calendarReuse = 30 * time.Second

// calendarSource turns the shared feed into the calendar component. Expanding
// a large feed costs milliseconds, so the expansion is cached per feed copy
// and reused for calendarReuse.
type calendarSource struct {
	w *calendar.Watch
	c *calendar.Config

	mu       sync.Mutex
	feed     *calendar.Feed
	from     time.Time
	windows  []decide.CalendarWindow
	warnings []string
	err      error
}

func (s *calendarSource) name() string                    { return decide.Calendar }
func (s *calendarSource) changed() <-chan struct{}        { return s.w.Changed() }
func (s *calendarSource) close()                          { s.w.Close() }
func (s *calendarSource) first(ctx context.Context) error { _, err := s.w.First(ctx); return err }

func (s *calendarSource) reading(now time.Time) decide.Reading {
	snap := s.w.Latest()
	r := decide.Reading{Name: decide.Calendar, GoodAt: snap.GoodAt, Err: snap.Err, NoExpiry: true}
	f := snap.Value
	if f == nil || snap.GoodAt.IsZero() {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feed != f || now.Before(s.from) || now.Sub(s.from) >= calendarReuse {
		e, err := f.Expand(s.c, now, now.Add(calendar.Horizon+calendarReuse))
		s.feed, s.from, s.err = f, now, err
		s.windows, s.warnings = ical.ForDecide(e.Windows), e.Warnings
	}
	if s.err != nil {
		// The hub refuses feeds that cannot be expanded, so this copy
		// expanded before; an error here is not evidence of anything.
		r.Err = fmt.Errorf("calendar: expand: %w", s.err)
		r.GoodAt = time.Time{}
		return r
	}
	r.Opinion = decide.CalendarOpinion(now, s.windows, f.Age(now))
	r.Opinion.Warnings = append(r.Opinion.Warnings, s.warnings...)
	return r
}

// forecastSource turns the shared history into the forecast component.
// Last week's error compares 2016 buckets with their estimates, so the
// evidence is cached per history copy and pair of slots.
type forecastSource struct {
	w *forecast.Watch
	c *forecast.Config

	mu   sync.Mutex
	hist *forecast.History
	now  time.Time // bucket of now the cache is for
	slot time.Time // bucket of now + lead time
	ev   decide.ForecastEvidence
}

func (s *forecastSource) name() string                    { return decide.Forecast }
func (s *forecastSource) changed() <-chan struct{}        { return s.w.Changed() }
func (s *forecastSource) close()                          { s.w.Close() }
func (s *forecastSource) first(ctx context.Context) error { _, err := s.w.First(ctx); return err }

// reading holds its history copy through failing refreshes with no time
// limit, as a calendar does: weeks of history do not go stale in minutes,
// and the forecast only ever raises the decision.
func (s *forecastSource) reading(now time.Time) decide.Reading {
	snap := s.w.Latest()
	r := decide.Reading{Name: decide.Forecast, GoodAt: snap.GoodAt, Err: snap.Err, NoExpiry: true}
	h := snap.Value
	if h == nil || snap.GoodAt.IsZero() {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nb, sb := forecast.BucketOf(now), forecast.BucketOf(now.Add(s.c.LeadTime))
	if s.hist != h || !s.now.Equal(nb) || !s.slot.Equal(sb) {
		s.ev = forecast.Evaluate(h, now, s.c.Mode, s.c.Params())
		s.hist, s.now, s.slot = h, nb, sb
	}
	ev := s.ev
	ev.Target = now.Add(s.c.LeadTime).UTC()
	r.Opinion = decide.ForecastOpinion(ev)
	return r
}

// reactiveDemand returns what the reactive components (celery, latency) ask
// for at now, for the forecast's history: a fresh reading without an opinion
// counts as 0; a failing or stale one is left out (no invented 0).
func reactiveDemand(sources []source, staleAfter time.Duration) func(time.Time) forecast.Demand {
	return func(now time.Time) forecast.Demand {
		d := forecast.Demand{}
		for _, s := range sources {
			if n := s.name(); n != decide.Celery && n != decide.Latency {
				continue
			}
			r := s.reading(now)
			if r.Err != nil || r.GoodAt.IsZero() || now.Sub(r.GoodAt) > staleAfter {
				continue
			}
			d[r.Name] = 0
			if r.Opinion.Desired != nil {
				d[r.Name] = *r.Opinion.Desired
			}
		}
		return d
	}
}
