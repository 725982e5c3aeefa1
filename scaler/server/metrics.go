package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/registry"
)

// Metrics are the scaler's own Prometheus metrics.
type Metrics struct {
	decision     *prometheus.GaugeVec
	available    *prometheus.GaugeVec
	component    *prometheus.GaugeVec
	forecast     *prometheus.GaugeVec
	nextHour     *prometheus.GaugeVec
	sourceErrors *prometheus.CounterVec
	sourceReads  *prometheus.CounterVec
	queued       *prometheus.GaugeVec
	inFlight     *prometheus.GaugeVec
	processed    *prometheus.CounterVec
	oldestWait   *prometheus.GaugeVec

	mu      sync.Mutex
	objects map[objectKey]*objectState
}

type objectKey struct{ namespace, name string }

// objectState is what Metrics remembers of one ScaledObject between its
// decisions.
type objectState struct {
	// completed is the last celery Completed seen, by CompletedSource:
	// every watch of the ScaledObject on the same counter shares it, so
	// two watches (two triggers, or a metadata change) never count the
	// same tasks twice.
	completed map[string]int64
	// components are the components of its latest decision.
	components map[string]bool
	// queues are the queues whose oldest wait its latest decision exported.
	queues map[string]bool
}

// celeryEvidence is what Metrics exports of the celery component's detail;
// celery.Backlog has it. An interface keeps this package free of the
// broker's.
type celeryEvidence interface {
	// TaskCounts are the tasks queued and in flight.
	TaskCounts() (queued, inFlight int64)
	// CompletedTasks is a running count of the tasks the workers
	// completed, and the counter it comes from: for one source it never
	// decreases.
	CompletedTasks() (source string, total int64)
	// OldestWaits are how long the oldest task of each queue has waited,
	// in seconds; a queue whose wait could not be read is absent.
	OldestWaits() map[string]float64
}

// NewMetrics registers the scaler's metrics on r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		decision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_decision_replicas",
			Help: "Desired replicas last answered for a ScaledObject (the clamped decision); absent while there is no decision (see montage_scaler_decision_available).",
		}, []string{"namespace", "scaledobject"}),
		available: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_decision_available",
			Help: "1 when the last answer for a ScaledObject was a decision, 0 when GetMetrics and IsActive answered Unavailable (a source past staleAfter; KEDA's fallback holds the replicas).",
		}, []string{"namespace", "scaledobject"}),
		component: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_component_replicas",
			Help: "Replicas a component asked for in the last decision (absent: no opinion).",
		}, []string{"namespace", "scaledobject", "component"}),
		forecast: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_forecast_replicas",
			Help: "Replicas the forecast expects lead time ahead, in dry-run too (absent: the forecast is silent).",
		}, []string{"namespace", "scaledobject", "mode"}),
		nextHour: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_forecast_next_hour_replicas",
			Help: "The most the forecast would ask for over the next hour, in dry-run too (absent: it would be silent).",
		}, []string{"namespace", "scaledobject", "mode"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_errors_total",
			Help: "Failed reads of a source.",
		}, []string{"component"}),
		sourceReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_reads_total",
			Help: "Reads of a source (one per poll of a shared upstream), failed ones included.",
		}, []string{"component"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_celery_queued_tasks",
			Help: "Celery tasks waiting for a worker in the ScaledObject's queues, at its last decision (absent: no fresh reading).",
		}, []string{"namespace", "scaledobject"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_celery_in_flight_tasks",
			Help: "Celery tasks taken by a worker and not acknowledged, at the ScaledObject's last decision (absent: no fresh reading).",
		}, []string{"namespace", "scaledobject"}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_celery_tasks_processed_total",
			Help: "Tasks the Celery workers on the ScaledObject's broker completed, from their heartbeats' processed, counted between this replica's decisions.",
		}, []string{"namespace", "scaledobject"}),
		oldestWait: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_celery_oldest_wait_seconds",
			Help: "How long the oldest task of a queue has waited for a worker, at the ScaledObject's last decision (0: none waits; absent: unknown).",
		}, []string{"namespace", "scaledobject", "queue"}),
		objects: map[objectKey]*objectState{},
	}
	r.MustRegister(m.decision, m.available, m.component, m.forecast, m.nextHour, m.sourceErrors, m.sourceReads, m.queued, m.inFlight, m.processed, m.oldestWait)
	return m
}

// SourceRead counts one read of component's source, and its failure.
func (m *Metrics) SourceRead(component string, err error) {
	m.sourceReads.WithLabelValues(component).Inc()
	if err != nil {
		m.sourceErrors.WithLabelValues(component).Inc()
	}
}

// record exports one decision of namespace/name. The series follow the
// ScaledObject's latest decision: a component its metadata no longer
// configures loses its series. Without a decision the replicas series is
// dropped rather than left at its last value: a graph or an alert must not
// read an old number while the RPCs answer Unavailable.
func (m *Metrics) record(ns, name string, d decide.Decision) {
	if d.Desired != nil {
		m.decision.WithLabelValues(ns, name).Set(*d.Desired)
		m.available.WithLabelValues(ns, name).Set(1)
	} else {
		m.decision.DeleteLabelValues(ns, name)
		m.available.WithLabelValues(ns, name).Set(0)
	}
	var celery celeryEvidence
	forecast := false
	components := map[string]bool{}
	for _, c := range d.Components {
		components[c.Name] = true
		if c.Desired != nil {
			m.component.WithLabelValues(ns, name, c.Name).Set(*c.Desired)
		} else {
			m.component.DeleteLabelValues(ns, name, c.Name)
		}
		switch c.Name {
		case "forecast":
			forecast = true
			m.forecastReplicas(ns, name, c)
		case "celery":
			celery, _ = c.Detail.(celeryEvidence)
		}
	}
	if !forecast {
		m.forecast.DeletePartialMatch(prometheus.Labels{"namespace": ns, "scaledobject": name})
	}
	m.mu.Lock()
	st := m.object(ns, name)
	for c := range st.components {
		if !components[c] {
			m.component.DeleteLabelValues(ns, name, c)
		}
	}
	st.components = components
	m.mu.Unlock()
	m.celery(ns, name, celery)
}

// celery exports the celery component's evidence; ev is nil when the
// decision has none (no celery source, or a stale one).
func (m *Metrics) celery(ns, name string, ev celeryEvidence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.object(ns, name)
	waits := map[string]float64{}
	if ev != nil {
		waits = ev.OldestWaits()
	}
	for q := range st.queues {
		if _, ok := waits[q]; !ok {
			m.oldestWait.DeleteLabelValues(ns, name, q)
		}
	}
	st.queues = map[string]bool{}
	for q, v := range waits {
		m.oldestWait.WithLabelValues(ns, name, q).Set(v)
		st.queues[q] = true
	}
	if ev == nil {
		m.queued.DeleteLabelValues(ns, name)
		m.inFlight.DeleteLabelValues(ns, name)
		return
	}
	queued, inFlight := ev.TaskCounts()
	m.queued.WithLabelValues(ns, name).Set(float64(queued))
	m.inFlight.WithLabelValues(ns, name).Set(float64(inFlight))

	source, total := ev.CompletedTasks()
	counter := m.processed.WithLabelValues(ns, name) // the series exists from the first decision, at 0
	last, seen := st.completed[source]
	switch {
	case !seen:
		// The first sight of this counter is its baseline: what it counted
		// before this ScaledObject was decided on is not its own.
	case total >= last:
		counter.Add(float64(total - last))
	default:
		counter.Add(float64(total)) // a counter that restarted: all it holds is new
	}
	st.completed[source] = total
}

func (m *Metrics) object(ns, name string) *objectState {
	k := objectKey{ns, name}
	st := m.objects[k]
	if st == nil {
		st = &objectState{completed: map[string]int64{}}
		m.objects[k] = st
	}
	return st
}

// Forget removes a dropped ScaledObject's series and what was remembered of
// it. Its processed counter starts again from 0 if it comes back, which
// Prometheus reads as a counter reset.
func (m *Metrics) Forget(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "scaledobject": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.decision, m.available, m.component, m.forecast, m.nextHour, m.queued, m.inFlight, m.processed, m.oldestWait,
	} {
		v.DeletePartialMatch(labels)
	}
	m.mu.Lock()
	delete(m.objects, objectKey{namespace, name})
	m.mu.Unlock()
}

// forecastReplicas exports the forecast component's estimate and the most
// it would ask for over the next hour, with its mode, so that a dry-run
// shows what it would do.
func (m *Metrics) forecastReplicas(namespace, name string, c decide.ComponentResult) {
	d, ok := c.Detail.(decide.ForecastDetail)
	if !ok {
		return
	}
	so := prometheus.Labels{"namespace": namespace, "scaledobject": name}
	if c.Desired == nil {
		m.forecast.DeletePartialMatch(so)
	} else {
		m.forecast.WithLabelValues(namespace, name, d.Mode).Set(*c.Desired)
	}
	if d.NextHour == nil {
		m.nextHour.DeletePartialMatch(so)
	} else {
		m.nextHour.WithLabelValues(namespace, name, d.Mode).Set(*d.NextHour)
	}
}

var ageDesc = prometheus.NewDesc("montage_scaler_source_age_seconds",
	"Age of the oldest last good reading of a component among the watched ScaledObjects.",
	[]string{"component"}, nil)

// SourceAges exports montage_scaler_source_age_seconds from the watches of
// reg at each scrape, by the clock now (nil: time.Now).
func SourceAges(reg *registry.Registry, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	return ageCollector{watches: reg, now: now}
}

type ageCollector struct {
	watches *registry.Registry
	now     func() time.Time
}

func (c ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ageDesc }

func (c ageCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	oldest := map[string]float64{}
	c.watches.Each(func(w *registry.Watch) {
		for _, r := range w.Readings(now) {
			if r.GoodAt.IsZero() {
				continue
			}
			if age := now.Sub(r.GoodAt).Seconds(); age > oldest[r.Name] {
				oldest[r.Name] = age
			} else if _, ok := oldest[r.Name]; !ok {
				oldest[r.Name] = age
			}
		}
	})
	for name, age := range oldest {
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age, name)
	}
}
