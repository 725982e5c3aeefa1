package source

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Options configure a Set. Zero fields take each component's defaults.
type Options struct {
	// Now is the clock readings are taken and judged by (check --at pins
	// it); nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnUpstream, if set, is called after every read of every upstream (and
	// every write of the forecast's history) with the component's name and
	// the error (nil on success).
	OnUpstream func(component string, err error)

	// Tuning are the components' own settings, by component name (what
	// their Flags set, or a command's own: check reads the latency twice
	// a window apart); a component without one takes its defaults.
	Tuning map[string]Tuning
	// RedisTimeout bounds each Redis dial, read and write, of every
	// component that talks to the broker (2s).
	RedisTimeout time.Duration
	// Replicas finds a ScaledObject's current replicas for the latency
	// component (the Kubernetes API, or check's --current-replicas); nil:
	// latency triggers need replicasQuery.
	Replicas latency.ReplicaLookup
	// Calendar are the feed limits and network policy.
	Calendar calendar.Limits
	// Policy is the address policy of brokerURL, prometheusURL and
	// metricsURLs (--allow-host); nil: netpolicy.Upstreams(nil).
	Policy *netpolicy.Policy
	// ReadOnly reads the forecast's history and records nothing (check).
	ReadOnly bool
	// Limits bound what the watches hold in the whole process (see
	// LimitFlags and package quota); nil: the defaults of LimitFlags.
	Limits map[quota.Kind]quota.Limits
}

// LoggerOf is the log of the named component.
func (o Options) LoggerOf(name string) *slog.Logger { return o.Logger.With("component", name) }

// UpstreamHook is the OnUpstream hook of the named component; nil without OnUpstream.
func (o Options) UpstreamHook(name string) func(error) {
	if o.OnUpstream == nil {
		return nil
	}
	return func(err error) { o.OnUpstream(name, err) }
}

// Component is a component's whole descriptor: its pure half and how it
// becomes a source. The binary's table of them is package components'.
type Component struct {
	component.Component
	// Flags registers the component's own serve flags on fs and returns
	// the Tuning they set, given to NewHub through Options.Tuning; nil: the
	// component has none. A component's tuning is its own: no other
	// package names its flags.
	Flags func(fs *flag.FlagSet) Tuning
	// NewHub starts the component's I/O half: the pollers every
	// ScaledObject's source of it shares, tuned by t (nil: its defaults).
	// A Set calls it once.
	NewHub func(o Options, t Tuning) Hub
	// CheckAddresses resolves every address c names and refuses what the
	// address policy of o refuses (netpolicy.ErrRefused, or the component's
	// own stricter rule), before any source is read (`check` exits 2 on
	// it, as on bad metadata). An address that does not resolve here is
	// left for the source to report, as a failed read. nil: nothing to
	// check.
	CheckAddresses func(ctx context.Context, c component.Config, o Options) error
}

// Tuning is a component's own settings, of a type the component defines.
type Tuning any

// RegisterFlags registers the flags of every component of table on fs and
// returns their Tuning by component name, for Options.Tuning.
func RegisterFlags(table []Component, fs *flag.FlagSet) map[string]Tuning {
	out := map[string]Tuning{}
	for _, c := range table {
		if c.Flags != nil {
			out[c.Name] = c.Flags(fs)
		}
	}
	return out
}

// Pure returns the pure halves of table, for the packages that parse,
// decide and replay (spec, simulate).
func Pure(table []Component) []component.Component {
	out := make([]component.Component, len(table))
	for i, c := range table {
		out[i] = c.Component
	}
	return out
}

// Hub is a component's I/O half as a Set holds it. A Hub that is also a
// prometheus.Collector exports its own metrics, built at scrape time.
type Hub interface {
	// Source makes one ScaledObject's source from its config.
	Source(r Request) registry.Source
	// Close stops every poller and closes every client. The Set closes
	// its hubs after the registry closed their sources.
	Close()
}

// Request is one ScaledObject's ask for a component's source.
type Request struct {
	Namespace, Name string
	Config          component.Config
	Policy          decide.Policy
	// Observed are the latest readings of the ScaledObject's sources
	// made before this one, in the table's order: a component that learns
	// from the others (the forecast) observes them through it, without
	// knowing their names.
	Observed func(now time.Time) []decide.Reading
}

// Set owns one hub per component: every ScaledObject's sources share its
// pollers. It is the one place where sources are made.
type Set struct {
	ledger *quota.Ledger
	hubs   map[string]Hub
	order  []string
}

var _ registry.Factory = (*Set)(nil)

// New returns a Set of table's components; Close it when done.
func New(table []Component, o Options) *Set {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Limits == nil {
		o.Limits = Limits(nil)
	}
	s := &Set{ledger: quota.New(o.Limits), hubs: map[string]Hub{}}
	for _, c := range table {
		s.hubs[c.Name] = c.NewHub(o, o.Tuning[c.Name])
		s.order = append(s.order, c.Name)
	}
	return s
}

// Sources makes one ScaledObject's sources from its spec, in the spec's
// (the table's) order. What the watch holds is reserved first, all or
// nothing: beyond a limit nothing is made and the error
// (quota.ErrExhausted) names the limit and the upstream; release gives the
// reservation back.
func (s *Set) Sources(namespace, name string, sp *spec.Spec) (_ []registry.Source, release func(), _ error) {
	release, err := s.ledger.Reserve(namespace, claims(sp))
	if err != nil {
		return nil, nil, err
	}
	var out []registry.Source
	for _, p := range sp.Parts {
		made := out[:len(out):len(out)] // the sources before this one, never appended to
		observed := func(now time.Time) []decide.Reading {
			rs := make([]decide.Reading, len(made))
			for i, src := range made {
				rs[i] = src.Reading(now)
			}
			return rs
		}
		out = append(out, s.hubs[p.Component.Name].Source(Request{
			Namespace: namespace, Name: name, Config: p.Config, Policy: sp.Policy, Observed: observed}))
	}
	return out, release, nil
}

// Collector exports the metrics of the components whose hubs export their
// own.
func (s *Set) Collector() prometheus.Collector {
	var cs collectors
	for _, n := range s.order {
		if c, ok := s.hubs[n].(prometheus.Collector); ok {
			cs = append(cs, c)
		}
	}
	return cs
}

// collectors is several collectors registered as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// Close stops every hub, last made first; a forecast source still open
// writes its open bucket first (its poller owns its recorders).
func (s *Set) Close() {
	for i := len(s.order) - 1; i >= 0; i-- {
		s.hubs[s.order[i]].Close()
	}
}
