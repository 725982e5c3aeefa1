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
	sourceErrors *prometheus.CounterVec
	sourceReads  *prometheus.CounterVec

	mu      sync.Mutex
	objects map[objectKey]*objectState
}

type objectKey struct{ namespace, name string }

// objectState is what Metrics remembers of one ScaledObject between its
// decisions.
type objectState struct {
	// components are the components of its latest decision.
	components map[string]bool
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
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_errors_total",
			Help: "Failed reads of a source.",
		}, []string{"component"}),
		sourceReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_reads_total",
			Help: "Reads of a source (one per poll of a shared upstream), failed ones included.",
		}, []string{"component"}),
		objects: map[objectKey]*objectState{},
	}
	r.MustRegister(m.decision, m.available, m.component, m.sourceErrors, m.sourceReads)
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
	components := map[string]bool{}
	for _, c := range d.Components {
		components[c.Name] = true
		if c.Desired != nil {
			m.component.WithLabelValues(ns, name, c.Name).Set(*c.Desired)
		} else {
			m.component.DeleteLabelValues(ns, name, c.Name)
		}
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
}

func (m *Metrics) object(ns, name string) *objectState {
	k := objectKey{ns, name}
	st := m.objects[k]
	if st == nil {
		st = &objectState{}
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
		m.decision, m.available, m.component,
	} {
		v.DeletePartialMatch(labels)
	}
	m.mu.Lock()
	delete(m.objects, objectKey{namespace, name})
	m.mu.Unlock()
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
