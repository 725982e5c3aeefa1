package celery

import (
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/poll"
)

// errWarmingUp marks a reading that waits for the first worker heartbeats.
var errWarmingUp = errors.New("celery: waiting for worker heartbeats")

// HubOptions tune a Hub. Zero fields take the defaults noted.
type HubOptions struct {
	PollInterval time.Duration // between polls; default 250ms
	PollTimeout  time.Duration // bounds one round of a poll (see RoundLists); default 2s
	// PollMaxBackoff spaces the polls of a broker whose polls fail: the
	// pause doubles from PollInterval up to it (see poll.Options.
	// MaxBackoff); default 2s.
	PollMaxBackoff time.Duration
	Now            func() time.Time // default time.Now; stamps the readings, while ages are judged by the broker's clock (TIME)
	// Clock measures intervals (heartbeat freshness and warm-up, spacing of
	// passes over the unacked hash); default time.Now. It stays the real
	// clock when Now is pinned (check --at).
	Clock       func() time.Time
	Logger      *slog.Logger  // default discards
	DialTimeout time.Duration // default 2s
	ReadTimeout time.Duration // default 2s (also the write timeout)
	// Policy is the address policy of brokerURL (--allow-host); nil:
	// netpolicy.Upstreams(nil), loopback and private open, link-local and
	// cloud metadata refused before dialling.
	Policy *netpolicy.Policy

	// AttributionInterval is the least time between the starts of two
	// passes over the unacked hash; default 5s.
	AttributionInterval time.Duration
	// ScanCount is the HSCAN COUNT of one step of a pass (one step per
	// poll); default 500.
	ScanCount int
	// HeartbeatWarmup is how long after subscribing to worker heartbeats a
	// layout with AcksLate=false waits before its first reading (workers
	// send one every 2s by default); default 3s.
	HeartbeatWarmup time.Duration
	// Hooks are added to every Redis client (tests count round trips).
	Hooks []redis.Hook
	// OnPoll, if set, is called after every poll of every broker with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnPoll func(err error)
}

func (o HubOptions) withDefaults() HubOptions {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 2 * time.Second
	}
	if o.PollMaxBackoff <= 0 {
		o.PollMaxBackoff = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.AttributionInterval <= 0 {
		o.AttributionInterval = 5 * time.Second
	}
	if o.ScanCount <= 0 {
		o.ScanCount = 500
	}
	if o.HeartbeatWarmup <= 0 {
		o.HeartbeatWarmup = 3 * time.Second
	}
	return o
}

// Hub runs one poller and one Redis client per broker, shared by every
// Watch on that broker: each poll reads every watched layout, in rounds
// (see RoundLists); and one worker heartbeat subscription per Redis
// server.
type Hub struct {
	o   HubOptions
	hub *poll.Hub[string, watchCfg, reading, Backlog]
	// hbs are the worker heartbeat subscriptions, one per Redis server.
	hbs *hbShare

	warnings *prometheus.CounterVec // problems with queue waits, by kind
}

// watchCfg is one Watch's broker and layout.
type watchCfg struct {
	broker Broker
	layout Layout
	id     string
}

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	h := &Hub{o: o.withDefaults(), hbs: newHBShare(), warnings: newWaitWarnings()}
	h.hub = poll.NewViewHub(h.start, view)
	return h
}

func (h *Hub) start(_ string, first watchCfg, members func() []watchCfg) *poll.Poller[reading] {
	bc := newBrokerConn(h.o, first.broker, func() []Layout {
		ms := members()
		out := make([]Layout, len(ms))
		for i, m := range ms {
			out[i] = m.layout
		}
		return out
	}, h.hbs)
	bc.warnings = h.warnings
	// Each round has PollTimeout; the poll's own limit only guards against
	// a poll that would outlast every round's.
	return poll.Start(bc.poll, poll.Options{Interval: h.o.PollInterval, Timeout: maxRounds * h.o.PollTimeout, Now: h.o.Now,
		OnAttempt: h.o.OnPoll, OnStop: bc.close, Logger: bc.log, MaxBackoff: h.o.PollMaxBackoff})
}

// maxRounds bounds the rounds of one poll that its own limit allows for:
// --max-lists-per-broker's default (10,000 lists) packs into 10 to 20.
const maxRounds = 32

// Watch starts watching layout l on broker b (or joins the poller already
// running for b). Its snapshot is the layout's Backlog; close it when done
// (see poll.Watch for what a closed Watch answers).
func (h *Hub) Watch(b Broker, l Layout) *poll.Watch[Backlog] {
	l = normalize(l)
	return h.hub.Acquire(b.Key(), watchCfg{broker: b, layout: l, id: l.id()})
}

// Pollers reports how many brokers are polled.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Close stops every poller and closes every client.
func (h *Hub) Close() { h.hub.Close() }

// view is one layout's part of its broker's reading. A layout the latest
// good poll did not read (it joined since) or that waits for worker
// heartbeats has no reading yet; one whose round failed, or whose key
// Redis refused, has that error (with its last good Backlog, if any).
func view(c watchCfg, s poll.Snapshot[reading]) poll.Snapshot[Backlog] {
	return poll.Part(s, c.id, errors.Is(s.Value.Errs[c.id], errWarmingUp))
}

func normalize(l Layout) Layout {
	if len(l.Queues) == 0 {
		l.Queues = []string{DefaultQueue}
	}
	l.Queues = slices.Clone(l.Queues)
	if l.PrioritySteps == nil {
		l.PrioritySteps = DefaultPrioritySteps()
	}
	if l.Separator == "" {
		l.Separator = DefaultSeparator
	}
	if l.VisibilityTimeout <= 0 {
		l.VisibilityTimeout = DefaultVisibilityTimeout
	}
	return l
}
