package registry

import (
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/spec"
)

type watchKey struct {
	namespace, name, metadata string
}

// Watch is one ScaledObject's view: its spec and its sources.
type Watch struct {
	key      watchKey
	spec     *spec.Spec
	sources  []Source
	release  func()
	logger   *slog.Logger
	lastUsed atomic.Int64 // unix nanoseconds
	// metricsAt is when GetMetrics last answered from the watch (unix
	// nanoseconds, 0: never).
	metricsAt atomic.Int64
	streams   atomic.Int32
	ready     chan struct{} // closed once every source had its first attempt (or FirstWait passed)
}

// Namespace and Name are the ScaledObject's.
func (w *Watch) Namespace() string { return w.key.namespace }

// Name is the ScaledObject's name.
func (w *Watch) Name() string { return w.key.name }

// Spec is the watch's parsed metadata.
func (w *Watch) Spec() *spec.Spec { return w.spec }

// Readings are the sources' latest readings at now.
func (w *Watch) Readings(now time.Time) []decide.Reading {
	out := make([]decide.Reading, 0, len(w.sources))
	for _, s := range w.sources {
		out = append(out, s.Reading(now))
	}
	return out
}

// Decide computes the watch's decision from its sources' latest readings.
func (w *Watch) Decide(now time.Time) decide.Decision {
	d := decide.Decide(now, w.spec.Policy, w.Readings(now))
	d.Warnings = append(d.Warnings, w.spec.Warnings...)
	return d
}

// MarkMetrics records that GetMetrics, the read the HPA acts on (through
// KEDA), was answered from the watch at now.
func (w *Watch) MarkMetrics(now time.Time) { w.metricsAt.Store(now.UnixNano()) }

// MetricsAt is when GetMetrics last answered from the watch; zero: never
// (a watch that only explain or IsActive asked about).
func (w *Watch) MetricsAt() time.Time {
	if n := w.metricsAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// OpenStream marks the watch as followed by a push stream, which keeps it
// from being dropped as idle; call the returned func when the stream ends.
func (w *Watch) OpenStream(now func() time.Time) (end func()) {
	w.streams.Add(1)
	return func() {
		w.lastUsed.Store(now().UnixNano())
		w.streams.Add(-1)
	}
}

// Changes takes the change channels of the watch's sources now. Take them
// BEFORE reading the decision, then Wait: a reading that lands in between
// closes a channel already taken, so Wait returns at once instead of
// missing it until the next tick.
func (w *Watch) Changes() Changes {
	c := Changes{chans: make([]<-chan struct{}, 0, len(w.sources))}
	for _, s := range w.sources {
		c.chans = append(c.chans, s.Changed())
	}
	return c
}

// Changes are a watch's change channels taken at one moment (Watch.Changes).
type Changes struct {
	chans []<-chan struct{}
}

// Wait blocks until some source has had a newer reading since the channels
// were taken, tick fires, or done is closed. It reports false when done.
func (c Changes) Wait(done <-chan struct{}, tick <-chan time.Time) bool {
	cases := make([]reflect.SelectCase, 0, len(c.chans)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tick)})
	for _, ch := range c.chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen != 0
}
