// Package registrytest provides hand-written fake sources for tests of the
// registry and of the servers above it: no upstream, no network.
package registrytest

import (
	"context"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Source is a fake registry.Source whose reading the test sets.
type Source struct {
	name string
	// OnClose, if set, runs when the registry closes the source.
	OnClose func()

	mu        sync.Mutex
	afterRead func() // run once, after the next Reading has taken its value
	reading   decide.Reading
	read      bool          // a first reading is there
	changed   chan struct{} // closed by the next Set
	first     chan struct{} // closed by the first Set
	closed    bool
}

var _ registry.Source = (*Source)(nil)

// NewSource returns a fake source named name with no reading yet.
func NewSource(name string) *Source {
	return &Source{name: name, changed: make(chan struct{}), first: make(chan struct{})}
}

// Set gives the source a new reading: an opinion read at goodAt (zero: none
// yet) and the latest refresh's error.
func (s *Source) Set(o decide.Opinion, goodAt time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading = decide.Reading{Name: s.name, Opinion: o, GoodAt: goodAt, Err: err, NoExpiry: s.reading.NoExpiry, Optional: s.reading.Optional}
	if !s.read {
		s.read = true
		close(s.first)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// NoExpiry marks the source's evidence as valid however old.
func (s *Source) NoExpiry() *Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading.NoExpiry = true
	return s
}

// Optional marks the source as one without which a decision is still made
// (see decide.Reading.Optional).
func (s *Source) Optional() *Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading.Optional = true
	return s
}

// Closed reports whether the registry closed the source.
func (s *Source) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Name is the component's name.
func (s *Source) Name() string { return s.name }

// AfterNextRead runs fn once, right after the next Reading has taken its
// value: a test makes a reading land while its caller decides (fn calls Set).
func (s *Source) AfterNextRead(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterRead = fn
}

// Reading is the reading last Set.
func (s *Source) Reading(time.Time) decide.Reading {
	s.mu.Lock()
	r := s.reading
	r.Name = s.name
	fn := s.afterRead
	s.afterRead = nil
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
	return r
}

// Changed is closed by the next Set.
func (s *Source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.changed
}

// First waits for the first Set (or ctx).
func (s *Source) First(ctx context.Context) error {
	select {
	case <-s.first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close marks the source closed.
func (s *Source) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.OnClose != nil {
		s.OnClose()
	}
}

// Factory makes the sources its Make func returns and remembers them, per
// ScaledObject, in the order made.
type Factory struct {
	Make func(namespace, name string, s *spec.Spec) []*Source
	// Refuse, if set, may refuse a new watch before Make is called.
	Refuse func(namespace, name string, s *spec.Spec) error

	mu   sync.Mutex
	made map[string][][]*Source
}

var _ registry.Factory = (*Factory)(nil)

// Sources implements registry.Factory; it never refuses unless Refuse
// says so.
func (f *Factory) Sources(namespace, name string, s *spec.Spec) ([]registry.Source, func(), error) {
	if f.Refuse != nil {
		if err := f.Refuse(namespace, name, s); err != nil {
			return nil, nil, err
		}
	}
	srcs := f.Make(namespace, name, s)
	f.mu.Lock()
	if f.made == nil {
		f.made = map[string][][]*Source{}
	}
	f.made[namespace+"/"+name] = append(f.made[namespace+"/"+name], srcs)
	f.mu.Unlock()
	out := make([]registry.Source, len(srcs))
	for i, s := range srcs {
		out[i] = s
	}
	return out, nil, nil
}

// Made returns the source sets made for namespace/name, oldest first.
func (f *Factory) Made(namespace, name string) [][]*Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.made[namespace+"/"+name]
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
