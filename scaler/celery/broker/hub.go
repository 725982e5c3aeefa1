// Package broker is the celery component's I/O half: the Hub that polls
// the Celery brokers, one poll per broker shared by every watch of it,
// whatever the broker's transport (Redis today, see package
// celery/redisbroker), keeps each layout's last good Backlog through a
// poll that fails for it alone, and counts the problems with queue waits.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/poll"
)

// HubOptions tune a Hub. Zero fields take the defaults noted.
type HubOptions struct {
	PollInterval time.Duration // between polls; default 250ms
	// PollMaxBackoff spaces the polls of a broker whose polls fail: the
	// pause doubles from PollInterval up to it (see poll.Options.
	// MaxBackoff); default 2s.
	PollMaxBackoff time.Duration
	Now            func() time.Time // default time.Now; stamps the readings, while ages are judged by the broker's clock (TIME)
	Logger         *slog.Logger     // default discards
	// OnPoll, if set, is called after every poll of every broker with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnPoll func(err error)
	// Redis tunes the polls of Redis brokers (timeouts, the address
	// policy, the unacked passes, the heartbeat warm-up); the Hub gives
	// them its own Now, Logger and queue-wait warning counter.
	Redis redisbroker.Options
}

func (o HubOptions) withDefaults() HubOptions {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.PollMaxBackoff <= 0 {
		o.PollMaxBackoff = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// redis is what of o the Redis transport takes; it fills its own
// defaults.
func (o HubOptions) redis(onWarning func(kind string)) redisbroker.Options {
	r := o.Redis
	r.Now, r.Logger, r.OnWarning = o.Now, o.Logger, onWarning
	return r
}

// Conn is the poll of one broker, the seam between the Hub and a
// transport: Redis today (redisbroker.Conn); a RabbitMQ transport is a
// sibling package and one more case in Hub.open. Poll reads every layout
// once (by celery.Layout.ID) and gives each its fresh Backlog, or in Errs
// why it has none (celery.ErrWarmingUp: not read yet); its error says no
// layout could be read. The Hub calls Poll from one goroutine at a time,
// and Close once, when the broker's last watch is gone.
type Conn interface {
	Poll(ctx context.Context, layouts map[string]celery.Layout) (Reading, error)
	Close()
}

// Reading is one poll of a broker: a Backlog per layout (by its ID).
type Reading = poll.Parts[celery.Backlog]

var _ Conn = (*redisbroker.Conn)(nil)

// Hub runs one poll per broker, shared by every Watch on that broker:
// each poll reads every watched layout. Under it, the Redis transport
// keeps one client per broker and one worker heartbeat subscription per
// Redis server.
type Hub struct {
	o     HubOptions
	hub   *poll.Hub[string, watchCfg, Reading, celery.Backlog]
	redis *redisbroker.Transport

	warnings *prometheus.CounterVec // problems with queue waits, by kind
}

// watchCfg is one Watch's broker and layout.
type watchCfg struct {
	broker celery.Broker
	layout celery.Layout
	id     string
}

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	h := &Hub{o: o.withDefaults(), warnings: newWaitWarnings()}
	h.redis = redisbroker.New(h.o.redis(func(kind string) { h.warnings.WithLabelValues(kind).Inc() }))
	h.hub = poll.NewViewHub(h.start, view)
	return h
}

func (h *Hub) start(_ string, first watchCfg, members func() []watchCfg) *poll.Poller[Reading] {
	conn, limit := h.open(first.broker)
	bp := &brokerPoll{conn: conn, now: h.o.Now, held: map[string]heldBacklog{}, layouts: func() map[string]celery.Layout {
		out := map[string]celery.Layout{}
		for _, m := range members() {
			out[m.id] = m.layout
		}
		return out
	}}
	return poll.Start(bp.poll, poll.Options{Interval: h.o.PollInterval, Timeout: limit, Now: h.o.Now,
		OnAttempt: h.o.OnPoll, OnStop: conn.Close, Logger: h.o.Logger.With("broker", first.broker.Redacted()), MaxBackoff: h.o.PollMaxBackoff})
}

// open starts the poll of broker b with the transport of its kind, and
// says how long one whole poll of it may take.
func (h *Hub) open(b celery.Broker) (Conn, time.Duration) {
	switch b.Transport() {
	case celery.TransportRedis:
		return h.redis.Open(b), h.redis.PollLimit()
	case "":
		return unreadable{errors.New("celery: zero Broker: use ParseBrokerURL")}, h.redis.PollLimit()
	}
	return unreadable{fmt.Errorf("celery: broker %s: no transport reads it", b.Redacted())}, h.redis.PollLimit()
}

// unreadable is the poll of a broker no transport reads: every poll fails.
type unreadable struct{ err error }

func (u unreadable) Poll(context.Context, map[string]celery.Layout) (Reading, error) {
	return Reading{}, u.err
}
func (unreadable) Close() {}

// Watch starts watching layout l on broker b (or joins the poller already
// running for b). Its snapshot is the layout's Backlog; close it when done
// (see poll.View for what a closed Watch answers).
func (h *Hub) Watch(b celery.Broker, l celery.Layout) *poll.View[celery.Backlog] {
	l = l.Normalize()
	return h.hub.Acquire(b.Key(), watchCfg{broker: b, layout: l, id: l.ID()})
}

// Pollers reports how many brokers are polled.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Close stops every poller and closes every client.
func (h *Hub) Close() { h.hub.Close() }

// view is one layout's part of its broker's reading. A layout the latest
// good poll did not read (it joined since) or that waits for worker
// heartbeats has no reading yet; one whose round failed, or whose key
// Redis refused, has that error (with its last good Backlog, if any).
func view(c watchCfg, s poll.Snapshot[Reading]) poll.Snapshot[celery.Backlog] {
	return poll.Part(s, c.id) // a layout warming up is not read yet (celery.ErrWarmingUp)
}
