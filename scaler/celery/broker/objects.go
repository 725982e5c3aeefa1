package broker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/source"
)

var (
	queuedDesc = prometheus.NewDesc("montage_scaler_celery_queued_tasks",
		"Celery tasks waiting for a worker in the ScaledObject's queues, at its latest reading (absent: no fresh reading).",
		[]string{"namespace", "scaledobject"}, nil)
	inFlightDesc = prometheus.NewDesc("montage_scaler_celery_in_flight_tasks",
		"Celery tasks taken by a worker and not acknowledged, at the ScaledObject's latest reading (absent: no fresh reading).",
		[]string{"namespace", "scaledobject"}, nil)
	processedDesc = prometheus.NewDesc("montage_scaler_celery_tasks_processed_total",
		"Tasks the Celery workers on the ScaledObject's broker completed, from their heartbeats' processed, counted while this replica watches the ScaledObject.",
		[]string{"namespace", "scaledobject"}, nil)
	oldestWaitDesc = prometheus.NewDesc("montage_scaler_celery_oldest_wait_seconds",
		"How long the oldest task of a queue has waited for a worker, at the ScaledObject's latest reading (0: none waits; absent: unknown).",
		[]string{"namespace", "scaledobject", "queue"}, nil)
)

// objectMetrics are the celery component's series per ScaledObject, built
// at scrape time from each one's latest reading. Only the processed-task
// counter keeps state between scrapes.
type objectMetrics struct {
	mu        sync.Mutex
	processed map[[2]string]*processedCount
}

// processedCount is one ScaledObject's processed-task counter: the last
// running count seen of each heartbeat counter (CompletedSource), so that
// readings of the same counter never count the same tasks twice.
type processedCount struct {
	last  map[string]int64
	total float64
}

func (m *objectMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuedDesc
	ch <- inFlightDesc
	ch <- processedDesc
	ch <- oldestWaitDesc
}

// collect exports objs' series. A ScaledObject whose reading is not fresh
// has no gauges (no made-up value) and keeps its counter; one no longer
// watched loses its counter too, which starts again from 0 if it comes
// back (a counter reset to Prometheus).
func (m *objectMetrics) collect(objs []source.ObjectReading, ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.processed == nil {
		m.processed = map[[2]string]*processedCount{}
	}
	seen := map[[2]string]bool{}
	for _, o := range objs {
		k := [2]string{o.Namespace, o.Name}
		seen[k] = true
		b, ok := o.Reading.Opinion.Detail.(celery.Backlog)
		if o.Fresh && ok {
			m.count(k, b)
			gauge := func(d *prometheus.Desc, v float64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{o.Namespace, o.Name}, labels...)...)
			}
			queued, inFlight := b.TaskCounts()
			gauge(queuedDesc, float64(queued))
			gauge(inFlightDesc, float64(inFlight))
			for q, v := range b.OldestWaits() {
				gauge(oldestWaitDesc, v, q)
			}
		}
		if c := m.processed[k]; c != nil {
			ch <- prometheus.MustNewConstMetric(processedDesc, prometheus.CounterValue, c.total, o.Namespace, o.Name)
		}
	}
	for k := range m.processed {
		if !seen[k] {
			delete(m.processed, k)
		}
	}
}

// count adds what b's heartbeat counter completed since it was last seen.
// The first sight of a counter is its baseline: what it counted before the
// ScaledObject was watched is not its own.
func (m *objectMetrics) count(k [2]string, b celery.Backlog) {
	c := m.processed[k]
	if c == nil {
		c = &processedCount{last: map[string]int64{}}
		m.processed[k] = c
	}
	src, total := b.CompletedTasks()
	last, seen := c.last[src]
	switch {
	case !seen:
	case total >= last:
		c.total += float64(total - last)
	default:
		c.total += float64(total) // a counter that restarted: all it holds is new
	}
	c.last[src] = total
}
