// Package component describes a source of evidence to the code that works
// over every one of them: spec parses a component's keys through its
// descriptor, source makes its watch, decide judges its reading by the
// descriptor's expiry rule, simulate replays it, the commands list its keys.
// A component is its own package plus one line in the binary's table
// (package components); nothing else names it.
//
// This package is pure: it imports no client library, so spec, registry,
// decide and simulate compile without a broker's or Kubernetes' code.
package component

import (
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/quota"
)

// Component is the pure half of a component's descriptor: what parsing,
// deciding and replaying need to know of it.
type Component struct {
	// Name names the component in explanations, metrics and errors.
	Name string
	// Keys are the metadata keys it reads (xFromEnv forms not listed).
	Keys []string
	// Parse reads the component's keys from m. It returns (nil, nil) when
	// the metadata does not configure the component.
	Parse func(m *meta.Map, c Context) (Config, error)
	// Configures names the keys that make the component a source of its
	// own ("brokerURL (or brokerURLFromEnv)"), for the error of metadata
	// that configures none; empty for a component that only refines the
	// others (the forecast).
	Configures string
	// Expiry is how long its evidence stays valid.
	Expiry Expiry
	// Optional marks a component whose absence never withholds the
	// decision: until its first good reading it has no opinion, with a
	// warning (decide.Reading.Optional).
	Optional bool
	// Replay is its opinion in a simulated world (simulate); nil: the
	// simulator does not model it and leaves it out.
	Replay func(c Config, w World) (decide.Opinion, error)
	// NewReplay, when set, is Replay with a memory: the simulator makes
	// one per replayed policy and calls it every simulated second, in
	// order (a component that measures rates over time keeps them there).
	NewReplay func(c Config) func(w World) (decide.Opinion, error)
}

// Expiry says how long a component's last good reading counts while its
// refreshes fail.
type Expiry int

const (
	// Expires: past the ScaledObject's staleAfter the reading withholds the
	// decision (a queue, a latency: evidence of now).
	Expires Expiry = iota
	// NeverExpires: the reading stays valid however old (a calendar's
	// events are future facts, a forecast's weeks of history do not go
	// stale in minutes).
	NeverExpires
)

// Config is a component's parsed metadata.
type Config interface {
	// Claims are what a watch of the config holds in the process (see
	// package quota): brokers, lists, endpoints, feeds.
	Claims() []quota.Claim
}

// Context is what a component's Parse may know beyond its own keys.
type Context struct {
	// ReplicaLookup says the current replicas can be found without
	// replicasQuery (serve in a cluster, or check --current-replicas).
	ReplicaLookup bool
	// Policy is the decision's clamp and staleness, parsed first (a
	// calendar clamps its hints to maxReplicas, and says so).
	Policy decide.Policy
	// Parsed are the configs of the components before this one in the
	// table, nil where a component is not configured or not looked at
	// (the forecast keeps its history in the celery component's broker).
	Parsed []Config
}

// Find returns the first config of type T among cs.
func Find[T Config](cs []Config) (T, bool) {
	for _, c := range cs {
		if t, ok := c.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// World is what the simulator knows at one instant: the queue it models,
// the pods, the API's latency and the calendar it was given. A component's
// Replay takes what it needs from it.
type World struct {
	Now time.Time
	// Queued and Running are the tasks waiting and in flight.
	Queued, Running int
	// OldestWait is how long the oldest waiting task has waited.
	OldestWait time.Duration
	// Ready are the pods serving (each runs one live worker).
	Ready int
	// Completed counts the tasks the workers finished so far, as their
	// heartbeats would.
	Completed int
	// Current are the replicas the workload has.
	Current float64
	// P95 is the API's 95th percentile latency in seconds.
	P95 float64
	// Windows are the calendar's sessions over the simulated span.
	Windows []decide.CalendarWindow
}
