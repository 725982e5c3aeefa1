package source

import (
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/feed"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/poll"
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
	// OnRead, if set, is called after every read of every upstream with
	// the component's name and the read's error (nil on success).
	OnRead func(component string, err error)

	// PollInterval is how often each broker is polled (250ms).
	PollInterval time.Duration
	// PollMaxBackoff is the longest pause between the polls of a broker
	// whose polls fail (2s).
	PollMaxBackoff time.Duration
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
	// Policy is the address policy of brokerURL, prometheusURL and
	// metricsURLs (--allow-host); nil: netpolicy.Upstreams(nil).
	Policy *netpolicy.Policy
	// ForecastSample is how often the forecast samples the broker's counts
	// and the latency ask (15s).
	ForecastSample time.Duration
	// ReadOnly reads the forecast's history and records nothing (check).
	ReadOnly bool
	// Limits bound what the watches hold in the whole process (see
	// LimitFlags and package quota); nil: the defaults of LimitFlags.
	Limits map[quota.Kind]quota.Limits
}

// Set owns one hub per component: every ScaledObject's sources share its
// pollers. It is the one place where sources are made.
type Set struct {
	ledger   *quota.Ledger
	celery   *celery.Hub
	latency  *latency.Hub
	calendar *feed.Hub
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
	if o.Limits == nil {
		o.Limits = Limits(nil)
	}
	return &Set{
		ledger: quota.New(o.Limits),
		celery: celery.NewHub(celery.HubOptions{Now: o.Now, Logger: log(decide.Celery), OnPoll: onRead(decide.Celery),
			PollInterval: o.PollInterval, PollMaxBackoff: o.PollMaxBackoff, DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Policy: o.Policy}),
		latency: latency.NewHub(latency.HubOptions{Now: o.Now, Logger: log(decide.Latency), OnPoll: onRead(decide.Latency),
			Interval: o.LatencyInterval, Replicas: o.Replicas, Policy: o.Policy}),
		calendar: feed.NewHub(feed.HubOptions{Now: o.Now, Logger: log(decide.Calendar), OnFetch: onRead(decide.Calendar),
			Limits: o.Calendar}),
		forecast: forecast.NewHub(forecast.HubOptions{Now: o.Now, Logger: log(decide.Forecast), OnRead: onRead(decide.Forecast),
			DialTimeout: o.RedisTimeout, ReadTimeout: o.RedisTimeout, Sample: o.ForecastSample, ReadOnly: o.ReadOnly, Policy: o.Policy}),
	}
}

// Sources makes one ScaledObject's sources from its spec, in the order
// explanations list them. A fifth component is one more line here (and
// one in claims). What the watch holds is reserved first, all or nothing:
// beyond a limit nothing is made and the error (quota.ErrExhausted) names
// the limit and the upstream; release gives the reservation back.
func (s *Set) Sources(namespace, name string, sp *spec.Spec) (_ []registry.Source, release func(), _ error) {
	release, err := s.ledger.Reserve(namespace, claims(sp))
	if err != nil {
		return nil, nil, err
	}
	var out []registry.Source
	var tasks *poll.Watch[celery.Backlog]
	if c := sp.Celery; c != nil {
		tasks = s.celery.Watch(c.Broker, c.Layout)
		out = append(out, Of(decide.Celery, tasks, c.Opinion, false))
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
		sample := reactiveSample(tasks, sp.Celery, slices.Clone(out), sp.Policy.StaleAfter)
		out = append(out, Of(decide.Forecast, s.forecast.Watch(c, namespace, name, sample), forecast.NewOpinion(c).Of, true))
	}
	return out, release, nil
}

// Collector exports the components' own metrics (the calendar copies' age,
// the celery brokers' queue-wait warnings).
func (s *Set) Collector() prometheus.Collector {
	return collectors{s.calendar.Collector(), s.celery.Collector()}
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

// Close stops every poller and closes every client. Close the sources
// first (the registry does): a forecast source writes its open bucket.
func (s *Set) Close() {
	s.forecast.Close()
	s.calendar.Close()
	s.latency.Close()
	s.celery.Close()
}

// reactiveSample returns what the forecast's recorder samples at now: the
// broker's counts from the celery watch (the forecast records the demand
// they show, see forecast.EstimateDemand) and the latency component's ask
// (recorded as asked; a fresh reading without an opinion is a 0). A failing
// or stale reading is left out (no invented 0).
func reactiveSample(tasks *poll.Watch[celery.Backlog], cel *celery.Config, sources []registry.Source, staleAfter time.Duration) func(time.Time) forecast.Sample {
	fresh := func(goodAt time.Time, err error, now time.Time) bool {
		return err == nil && !goodAt.IsZero() && now.Sub(goodAt) <= staleAfter
	}
	return func(now time.Time) forecast.Sample {
		s := forecast.Sample{Asks: forecast.Demand{}}
		if tasks != nil {
			if snap := tasks.Latest(); fresh(snap.GoodAt, snap.Err, now) {
				b := snap.Value
				s.Tasks = &forecast.TaskSample{At: now, Backlog: b.Queued + b.InFlight, InFlight: b.InFlight, Completed: b.Completed}
				s.TasksPerReplica = cel.TasksPerReplica
			}
		}
		for _, src := range sources {
			if src.Name() != decide.Latency {
				continue
			}
			r := src.Reading(now)
			if !fresh(r.GoodAt, r.Err, now) {
				continue
			}
			s.Asks[forecast.KindLatency] = 0
			if r.Opinion.Desired != nil {
				s.Asks[forecast.KindLatency] = *r.Opinion.Desired
			}
		}
		return s
	}
}
