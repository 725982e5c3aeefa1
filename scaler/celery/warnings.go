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

func newWaitWarnings() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "montage_scaler_celery_wait_warnings_total",
		Help: "Problems with the queue waits read from a Celery broker, by kind, once per message: first_seen_lost (a first-seen key " +
			"evicted or deleted; set maxmemory-policy noeviction), stamp_ahead (a publish stamp ahead of the broker's clock: the producer's clock runs ahead).",
	}, []string{"broker", "kind"})
}

// Collector exports montage_scaler_celery_wait_warnings_total, per broker
// (URL redacted) and kind; the caller registers it.
func (h *Hub) Collector() prometheus.Collector { return h.warnings }

// countWarnings makes bc count its warnings in c, each kind from 0.
func (bc *brokerConn) countWarnings(c *prometheus.CounterVec) {
	bc.warnings = c
	for _, kind := range []string{warnFirstSeenLost, warnStampAhead} {
		c.WithLabelValues(bc.broker.Redacted(), kind)
	}
}

// warn logs a problem with the broker's queue waits at WARN (the logger's
// handler holds back repeats) and counts it.
func (bc *brokerConn) warn(kind, msg string, args ...any) {
	bc.o.Logger.Warn(msg, append([]any{"broker", bc.broker.Redacted(), "kind", kind}, args...)...)
	if bc.warnings != nil {
		bc.warnings.WithLabelValues(bc.broker.Redacted(), kind).Inc()
	}
}
