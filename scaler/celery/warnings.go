package celery

import "github.com/prometheus/client_golang/prometheus"

// Kinds of montage_scaler_celery_wait_warnings_total: what a queue wait's
// note says, counted once per message it concerns.
const (
	// warnFirstSeenLost: a first-seen key vanished (or came back later)
	// while its message stayed at the head of its list.
	warnFirstSeenLost = "first_seen_lost"
	// warnStampAhead: a publish stamp is ahead of the broker's clock.
	warnStampAhead = "stamp_ahead"
)

// newWaitWarnings returns the counter, each kind from 0. Its only label is
// the kind: the log line names the broker (metrics never show broker
// addresses).
func newWaitWarnings() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "montage_scaler_celery_wait_warnings_total",
		Help: "Problems with the queue waits read from the Celery brokers, by kind, once per message (the WARN log line names the broker): " +
			"first_seen_lost (a first-seen key evicted or deleted; set maxmemory-policy noeviction), " +
			"stamp_ahead (a publish stamp ahead of the broker's clock: the producer's clock runs ahead).",
	}, []string{"kind"})
	for _, kind := range []string{warnFirstSeenLost, warnStampAhead} {
		c.WithLabelValues(kind)
	}
	return c
}

// Collector exports montage_scaler_celery_wait_warnings_total by kind; the
// caller registers it.
func (h *Hub) Collector() prometheus.Collector { return h.warnings }

// warn logs a problem with the broker's queue waits at WARN (the logger's
// handler holds back repeats) and counts it.
func (bc *brokerConn) warn(kind, msg string, args ...any) {
	bc.o.Logger.Warn(msg, append([]any{"broker", bc.broker.Redacted(), "kind", kind}, args...)...)
	if bc.warnings != nil {
		bc.warnings.WithLabelValues(kind).Inc()
	}
}
