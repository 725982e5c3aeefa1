package celery

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// FlowWindow is how far back the flow (arrivals, service time) is measured:
// long enough for a one-minute render to complete in it, short enough to
// follow a burst.
const FlowWindow = 2 * time.Minute

// DefaultPodStartup is the pod start-up the wait-based ask assumes until it
// has learned one from the heartbeats.
const DefaultPodStartup = 45 * time.Second

// MaxPodStartup bounds podStartupTime, and the start-ups the flow learns (a
// longer one says the new pod never came, not how long one takes).
const MaxPodStartup = time.Hour

// learnedKept is how many learned start-ups the median is taken over.
const learnedKept = 5

type flowSample struct {
	at                           time.Time
	backlog, inFlight, completed int64
	workers                      int
}

// Flow measures, for one watch, what the wait-based ask needs beyond one
// reading: the arrivals and the service time over the last FlowWindow of
// readings (each judged at the broker's clock), and how long a rise of the
// ask takes to give a new worker's first heartbeat (the pod start-up, with
// whatever KEDA, the HPA and the scheduler add). It is fed every reading
// (Observe) and asked at each call (Opinion). Two scaler replicas feed
// theirs the same polls and heartbeats, so they measure alike up to the
// instants they sample at.
type Flow struct {
	c *Config

	mu      sync.Mutex
	samples []flowSample
	source  string
	// riseAt is when the ask rose above the live workers (zero: no rise
	// pending), riseWorkers how many were live then.
	riseAt      time.Time
	riseWorkers int
	learned     []time.Duration
}

// NewFlow returns the flow of a watch of c.
func NewFlow(c *Config) *Flow { return &Flow{c: c} }

// Observe adds a reading at its broker time (at when it has none). A
// reading no later than the last one is the same poll seen again; a new
// counter (CompletedSource) starts the window afresh.
func (f *Flow) Observe(b Backlog, at time.Time) {
	if !b.BrokerTime.IsZero() {
		at = b.BrokerTime
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.CompletedSource != f.source {
		f.samples, f.source = f.samples[:0], b.CompletedSource
	}
	if n := len(f.samples); n > 0 && at.Sub(f.samples[n-1].at) < time.Second {
		return // finer than a second adds nothing but memory
	}
	if !f.riseAt.IsZero() && b.HeartbeatWorkers > f.riseWorkers {
		if d := at.Sub(f.riseAt); d > 0 && d <= MaxPodStartup {
			f.learned = append(f.learned, d)
			if len(f.learned) > learnedKept {
				f.learned = f.learned[1:]
			}
		}
		f.riseAt = time.Time{}
	}
	f.samples = append(f.samples, flowSample{at: at, backlog: b.Queued + b.InFlight, inFlight: b.InFlight, completed: b.Completed, workers: b.HeartbeatWorkers})
	cut := 0
	for cut < len(f.samples) && at.Sub(f.samples[cut].at) > FlowWindow {
		cut++
	}
	f.samples = slices.Delete(f.samples, 0, cut)
}

// PodStartup is podStartupTime when set, else the median of the last
// learned start-ups, else DefaultPodStartup.
func (f *Flow) PodStartup() time.Duration {
	if f.c.PodStartup > 0 {
		return f.c.PodStartup
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.learned) == 0 {
		return DefaultPodStartup
	}
	s := slices.Clone(f.learned)
	slices.Sort(s)
	return s[len(s)/2]
}

// Measure is the flow over the window: arrivals = Δ(queued + inFlight) +
// completions, less the queue's growth (those tasks are in the queue the
// drain term counts), service time = mean in flight × span / completions (Little's
// law). Without heartbeats or without a completion it is not measured, and
// says why.
func (f *Flow) Measure() decide.CeleryFlow {
	out := decide.CeleryFlow{PodStartup: f.PodStartup()}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.samples)
	heard := false
	for _, s := range f.samples {
		heard = heard || s.workers > 0
	}
	switch {
	case n < 2:
		out.Why = "no flow measured yet (one reading)"
		return out
	case !heard:
		out.Why = "no worker heartbeats in the last " + FlowWindow.String() + " (none running, or started with --without-heartbeat)"
		return out
	}
	var completed int64
	var inFlight float64
	for i, s := range f.samples {
		inFlight += float64(s.inFlight)
		if i == 0 {
			continue
		}
		if d := s.completed - f.samples[i-1].completed; d >= 0 {
			completed += d
		} else {
			completed += s.completed // the count restarted from 0
		}
	}
	first, last := f.samples[0], f.samples[n-1]
	span := last.at.Sub(first.at).Seconds()
	if completed == 0 {
		out.Why = fmt.Sprintf("no task completed in the last %.0f s yet: no service time", span)
		return out
	}
	// Arrivals = Δ(queued + inFlight) + completions; those still queued
	// (the queue's growth) are left out: the drain term counts them, in
	// the queue, and a burst must not count twice (as a rate to keep up
	// with, and as a queue to drain).
	grown := max(0, (last.backlog-last.inFlight)-(first.backlog-first.inFlight))
	arrived := math.Max(0, float64(last.backlog-first.backlog+completed-grown))
	out.Measured = true
	// Over the whole window even while the readings span less of it: a
	// burst is a queue to drain, not a rate, and a window shorter than
	// FlowWindow would turn the part of it already served into one.
	out.ArrivalsPerSecond = arrived / math.Max(span, FlowWindow.Seconds())
	out.ServiceSeconds = inFlight / float64(n) * span / float64(completed)
	return out
}

// Opinion is Config.Opinion with the flow: it observes b, and with a
// queueWaitTarget asks for the wait-based ask (decide.CeleryFlowAsk)
// instead of the depth ask. A rise of that ask above the live workers
// starts the clock of a start-up, which the next new worker stops.
func (f *Flow) Opinion(b Backlog, now time.Time) (decide.Opinion, error) {
	f.Observe(b, now)
	o, err := f.c.opinion(b, f.Measure)
	if err != nil || f.c.QueueWaitTarget <= 0 {
		return o, err
	}
	at := now
	if !b.BrokerTime.IsZero() {
		at = b.BrokerTime
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch need := math.Ceil(*o.Desired - 1e-9); {
	case need > float64(b.HeartbeatWorkers) && f.riseAt.IsZero():
		f.riseAt, f.riseWorkers = at, b.HeartbeatWorkers
	case need <= float64(b.HeartbeatWorkers):
		f.riseAt = time.Time{}
	}
	return o, nil
}
