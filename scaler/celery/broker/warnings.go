package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
)

// newWaitWarnings returns the counter of montage_scaler_celery_wait_warnings_total,
// each kind from 0. Its only label is the kind: the log line names the
// broker (metrics never show broker addresses).
func newWaitWarnings() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "montage_scaler_celery_wait_warnings_total",
		Help: "Problems with the queue waits read from the Celery brokers, by kind, once per message (the WARN log line names the broker): " +
			"first_seen_lost (a first-seen key evicted or deleted; set maxmemory-policy noeviction), " +
			"stamp_ahead (a publish stamp ahead of the broker's clock: the producer's clock runs ahead).",
	}, []string{"kind"})
	for _, kind := range []string{celery.WarnFirstSeenLost, celery.WarnStampAhead} {
		c.WithLabelValues(kind)
	}
	return c
}

// Collector exports montage_scaler_celery_wait_warnings_total by kind; the
// caller registers it.
func (h *Hub) Collector() prometheus.Collector { return h.warnings }
