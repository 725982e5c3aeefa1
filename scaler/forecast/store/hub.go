package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/poll"
)

// HubOptions tune a Hub. Zero fields take the defaults noted.
type HubOptions struct {
	// Now is the clock that buckets observations and trims the history;
	// default time.Now.
	Now func() time.Time
	// Refresh is how often a history is read back; default 1m.
	Refresh time.Duration
	// Sample is how often a Watch samples the reactive components' asks;
	// default 15s.
	Sample      time.Duration
	Logger      *slog.Logger  // default discards
	DialTimeout time.Duration // default 2s
	ReadTimeout time.Duration // default 2s (also the write timeout)
	// Policy is the broker's address policy (broker.HubOptions.Policy).
	Policy *netpolicy.Policy
	// OnUpstream, if set, is called after every history read and write with its
	// error (nil on success).
	OnUpstream func(err error)
	// ReadOnly reads histories and records nothing: a one-off check must
	// not write, least of all at a pinned --at.
	ReadOnly bool
}

func (o HubOptions) withDefaults() HubOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	if o.Sample <= 0 {
		o.Sample = 15 * time.Second
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
	return o
}

// Hub runs one history poller per broker, shared by every Watch on that
// broker: each read fetches the history of every watched ScaledObject in
// one pipeline. The poller owns the broker's Redis client and the
// recorders writing through it (see broker).
type Hub struct {
	o   HubOptions
	hub *poll.Hub[string, *member, histories, *forecast.History]
}

// member is one Watch: a ScaledObject's history in a broker.
type member struct {
	cfg             *forecast.Config
	namespace, name string
	// broker is set, by start, on the member a broker's poller was started
	// for; every later Watch of the broker finds it there (AcquireFirst).
	broker *broker
}

func (m *member) id() string { return m.namespace + "/" + m.name }

// histories is one read of a broker: a History per ScaledObject (by
// member.id).
type histories = poll.Parts[*forecast.History]

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	h := &Hub{o: o.withDefaults()}
	h.hub = poll.NewViewHub(h.start, view)
	return h
}

// dial makes c's broker client: the one place the forecast dials a broker.
func dial(c *forecast.Config, o HubOptions) (*redis.Client, error) {
	return redisbroker.NewClient(c.Broker, o.DialTimeout, o.ReadTimeout, o.Policy)
}

func (h *Hub) start(_ string, first *member, members func() []*member) *poll.Poller[histories] {
	b := newBroker(first.cfg, h.o, members)
	first.broker = b
	read := func(ctx context.Context) (histories, error) { return b.read(ctx, h.o.Now()) }
	return poll.Start(read, poll.Options{Interval: h.o.Refresh, Timeout: h.o.ReadTimeout * 2, Now: h.o.Now, OnAttempt: h.o.OnUpstream, OnStop: b.stop})
}

// view is one ScaledObject's history in its broker's read. One the latest
// good read did not include (it joined since) has no reading yet.
func view(m *member, s poll.Snapshot[histories]) poll.Snapshot[*forecast.History] {
	return poll.Part(s, m.id()) // a history that does not parse is a failed read
}

// Watch reads namespace/name's history in c's broker and, unless the Hub is
// ReadOnly, records into it the demand of what sample returns, sampled
// every Sample and written once per bucket (see forecast.Bucketer). One
// history per ScaledObject, whatever the watch: it is read and trimmed to
// the longest forecastWeeks of the ScaledObject's open watches; each uses
// its own. Closing the Watch, or the Hub, writes its open bucket (see
// poll.View for what a closed one answers).
func (h *Hub) Watch(c *forecast.Config, namespace, name string, sample func(now time.Time) forecast.Sample) *Watch {
	m := &member{cfg: c, namespace: namespace, name: name}
	pw, first := h.hub.AcquireFirst(c.Broker.Key(), m)
	w := &Watch{View: pw}
	if first == nil || h.o.ReadOnly {
		return w // a closed Hub has no broker to write to
	}
	w.broker = first.broker
	w.rec = w.broker.record(m, pw.Poke, sample, h.o.Logger.With("scaledObject", meta.ObjectRef(namespace, name)))
	return w
}

// Pollers reports how many brokers' histories are read.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Close closes every Watch, and so stops every poller: each writes its
// recorders' open buckets, then closes its client.
func (h *Hub) Close() { h.hub.Close() }

// Watch is one ScaledObject's view of its history, and its recorder.
type Watch struct {
	*poll.View[*forecast.History]
	broker *broker
	rec    *recorder // nil when read-only
}

// Close stops the recorder, writing its open bucket, then releases the
// broker's poller (which closes the client with its last Watch).
func (w *Watch) Close() {
	if w.rec != nil {
		w.broker.forget(w.rec)
	}
	w.View.Close()
}
