package source

import (
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Options configure a Set. Zero fields take each component's defaults.
type Options struct {
	// Now is the clock readings are taken and judged by (check --at pins
	// it); nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnRead, if set, is called after every read of every upstream with
	// the component's name and the read's error (nil on success).
	OnRead func(component string, err error)

	// PollInterval is how often each broker is polled (250ms).
	PollInterval time.Duration
	// RedisTimeout bounds each Redis dial, read and write (2s).
	RedisTimeout time.Duration
	// LatencyInterval is how often each Prometheus query or set of pods is
	// read (15s).
	LatencyInterval time.Duration
	// Replicas finds a ScaledObject's current replicas for the latency
	// component (the Kubernetes API, or check's --current-replicas); nil:
	// latency triggers need replicasQuery.
	Replicas latency.ReplicaLookup
	// Calendar are the feed limits and network policy.
	Calendar calendar.Limits
	// ForecastSample is how often the forecast samples the reactive asks
	// (15s).
	ForecastSample time.Duration
	// ReadOnly reads the forecast's history and records nothing (check).
	ReadOnly bool
}

// Set owns one hub per component: every ScaledObject's sources share its
// pollers. It is the one place where sources are made.
type Set struct {
	celery   *celery.Hub
	latency  *latency.Hub
	calendar *calendar.Hub
	forecast *forecast.Hub
}

var _ registry.Factory = (*Set)(nil)

// New returns a Set; Close it when done.
func New(o Options) *Set {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	onRead := func(component string) func(error) {
		if o.OnRead == nil {
			return nil
		}
		return func(err error) { o.OnRead(component, err) }
	}
	log := func(component string) *slog.Logger { return o.Logger.With("component", component) }
	return &Set{
		celery: celery.NewHub(celery.HubOptions{Now: o.Now, Logger: log(decide.Celery), OnPoll: onRead(decide.Celery),
			PollInterval: o.PollInterval, DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout}),
		latency: latency.NewHub(latency.HubOptions{Now: o.Now, Logger: log(decide.Latency), OnPoll: onRead(decide.Latency),
			Interval: o.LatencyInterval, Replicas: o.Replicas}),
		calendar: calendar.NewHub(calendar.HubOptions{Now: o.Now, Logger: log(decide.Calendar), OnFetch: onRead(decide.Calendar),
			Limits: o.Calendar}),
		forecast: forecast.NewHub(forecast.HubOptions{Now: o.Now, Logger: log(decide.Forecast), OnRead: onRead(decide.Forecast),
			DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Sample: o.ForecastSample, ReadOnly: o.ReadOnly}),
	}
}

// Sources makes one ScaledObject's sources from its spec, in the order
// explanations list them. A fifth component is one more line here.
func (s *Set) Sources(namespace, name string, sp *spec.Spec) []registry.Source {
	var out []registry.Source
	if c := sp.Celery; c != nil {
		out = append(out, Of(decide.Celery, s.celery.Watch(c.Broker, c.Layout), c.Opinion, false))
	}
	if c := sp.Latency; c != nil {
		out = append(out, Of(decide.Latency, s.latency.Watch(namespace, name, c), latency.Opinion, false))
	}
	if c := sp.Calendar; c != nil {
		// A feed that has never been read is no opinion, never a reason
		// to withhold the others' decision; its copy is then kept forever.
		out = append(out, Of(decide.Calendar, s.calendar.Watch(c), calendar.NewOpinion(c).Of, true).Optional())
	}
	if c := sp.Forecast; c != nil {
		// Weeks of history do not go stale in minutes, and the forecast
		// only ever raises the decision: held like a calendar.
		demand := reactiveDemand(slices.Clone(out), sp.Policy.StaleAfter)
		out = append(out, Of(decide.Forecast, s.forecast.Watch(c, namespace, name, demand), forecast.NewOpinion(c).Of, true))
	}
	return out
}

// Collector exports the components' own metrics (the calendar copies' age).
func (s *Set) Collector() prometheus.Collector { return s.calendar.Collector() }

// Close stops every poller and closes every client. Close the sources
// first (the registry does): a forecast source writes its open bucket.
func (s *Set) Close() {
	s.forecast.Close()
	s.calendar.Close()
	s.latency.Close()
	s.celery.Close()
}

// reactiveDemand returns what the reactive components (celery, latency) ask
// for at now, for the forecast's history: a fresh reading without an opinion
// counts as 0; a failing or stale one is left out (no invented 0).
func reactiveDemand(sources []registry.Source, staleAfter time.Duration) func(time.Time) forecast.Demand {
	return func(now time.Time) forecast.Demand {
		d := forecast.Demand{}
		for _, s := range sources {
			if n := s.Name(); n != decide.Celery && n != decide.Latency {
				continue
			}
			r := s.Reading(now)
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
