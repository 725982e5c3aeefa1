// Package source turns the components' shared pollers into the sources a
// registry watch decides from: the seam a component's I/O half implements
// (Hub), one generic adapter (Of) from a poll.View and an opinion
// function to a registry.Source, and the Set that owns every component's
// hub and makes a ScaledObject's sources from its spec.
package source

import (
	"context"
	"time"

	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/scaler/registry"
)

// View is what an adapter needs of a component's watch (*poll.View has
// it; a component may wrap one to add its own Close).
type View[T any] interface {
	Latest() poll.Snapshot[T]
	Changed() <-chan struct{}
	First(ctx context.Context) (poll.Snapshot[T], error)
	Close()
}

// OpinionFunc turns a good value of a component into its opinion at now.
// An error means the value cannot be judged: the reading counts as having
// no good value.
type OpinionFunc[T any] func(v T, now time.Time) (decide.Opinion, error)

// Adapter is a component's View seen as a registry.Source.
type Adapter[T any] struct {
	c       component.Component
	w       View[T]
	opinion OpinionFunc[T]
}

var _ registry.Source = (*Adapter[int])(nil)

// Of adapts w as component c's source; opinion judges each good value. The
// descriptor says how long a reading counts (c.Expiry) and whether the
// component's absence withholds the decision (c.Optional).
func Of[T any](c component.Component, w View[T], opinion OpinionFunc[T]) *Adapter[T] {
	return &Adapter[T]{c: c, w: w, opinion: opinion}
}

// Name is the component's name.
func (a *Adapter[T]) Name() string { return a.c.Name }

// Reading is the component's latest evidence at now: its last good value's
// opinion, when it was read, and the latest refresh's error.
func (a *Adapter[T]) Reading(now time.Time) decide.Reading {
	s := a.w.Latest()
	r := decide.Reading{Name: a.c.Name, GoodAt: s.GoodAt, Err: s.Err,
		NoExpiry: a.c.Expiry == component.NeverExpires, Optional: a.c.Optional}
	if s.GoodAt.IsZero() {
		return r
	}
	o, err := a.opinion(s.Value, now)
	if err != nil {
		r.Err, r.GoodAt = err, time.Time{}
		return r
	}
	r.Opinion = o
	return r
}

// Changed is closed when the component has a newer reading.
func (a *Adapter[T]) Changed() <-chan struct{} { return a.w.Changed() }

// First waits for the component's first reading.
func (a *Adapter[T]) First(ctx context.Context) error {
	_, err := a.w.First(ctx)
	return err
}

// Close releases the component's watch.
func (a *Adapter[T]) Close() { a.w.Close() }
