package scaler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Metrics are the scaler's own Prometheus metrics.
type Metrics struct {
	decision     *prometheus.GaugeVec
	component    *prometheus.GaugeVec
	forecast     *prometheus.GaugeVec
	sourceErrors *prometheus.CounterVec
	sourceReads  *prometheus.CounterVec
	reg          *Registry
	ageDesc      *prometheus.Desc
}

// NewMetrics registers the scaler's metrics on r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		decision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_decision_replicas",
			Help: "Desired replicas last answered for a ScaledObject (the clamped decision).",
		}, []string{"namespace", "scaledobject"}),
		component: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_component_replicas",
			Help: "Replicas a component asked for in the last decision (absent: no opinion).",
		}, []string{"namespace", "scaledobject", "component"}),
		forecast: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "montage_scaler_forecast_replicas",
			Help: "Replicas the forecast expects lead time ahead, in dry-run too (absent: the forecast is silent).",
		}, []string{"namespace", "scaledobject", "mode"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_errors_total",
			Help: "Failed reads of a source.",
		}, []string{"component"}),
		sourceReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "montage_scaler_source_reads_total",
			Help: "Reads of a source (one per poll of a shared upstream), failed ones included.",
		}, []string{"component"}),
		ageDesc: prometheus.NewDesc("montage_scaler_source_age_seconds",
			"Age of the oldest last good reading of a component among the watched ScaledObjects.",
			[]string{"component"}, nil),
	}
	r.MustRegister(m.decision, m.component, m.forecast, m.sourceErrors, m.sourceReads, (*ageCollector)(m))
	return m
}

// SourceRead counts one read of component's source, and its failure.
func (m *Metrics) SourceRead(component string, err error) {
	m.sourceReads.WithLabelValues(component).Inc()
	if err != nil {
		m.sourceErrors.WithLabelValues(component).Inc()
	}
}

// Forget removes a dropped ScaledObject's series.
func (m *Metrics) Forget(namespace, name string) {
	m.decision.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "scaledobject": name})
	m.component.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "scaledobject": name})
	m.forecast.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "scaledobject": name})
}

// forecastReplicas exports the forecast component's estimate with its mode,
// so that a dry-run shows what it would do.
func (m *Metrics) forecastReplicas(namespace, name string, c decide.ComponentResult) {
	d, ok := c.Detail.(decide.ForecastDetail)
	if !ok {
		return
	}
	if c.Desired == nil {
		m.forecast.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "scaledobject": name})
		return
	}
	m.forecast.WithLabelValues(namespace, name, d.Mode).Set(*c.Desired)
}

type ageCollector Metrics

func (c *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.ageDesc }

func (c *ageCollector) Collect(ch chan<- prometheus.Metric) {
	if c.reg == nil {
		return
	}
	now := c.reg.o.Now()
	oldest := map[string]float64{}
	c.reg.each(func(w *watch) {
		for _, s := range w.sources {
			r := s.reading(now)
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
		ch <- prometheus.MustNewConstMetric(c.ageDesc, prometheus.GaugeValue, age, name)
	}
}
