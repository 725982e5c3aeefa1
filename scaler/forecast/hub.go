package forecast

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
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
	// Policy is the broker's address policy (celery/broker.HubOptions.Policy).
	Policy *netpolicy.Policy
	// OnRead, if set, is called after every history read and write with its
	// error (nil on success).
	OnRead func(err error)
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

// Hub runs one history poller and one Redis client per broker, shared by
// every Watch on that broker: each read fetches the history of every
// watched ScaledObject in one pipeline. Each Watch records its own samples.
type Hub struct {
	o   HubOptions
	hub *poll.Hub[string, member, histories, *History]

	mu      sync.Mutex
	brokers map[string]*broker // by broker key, while its poller runs
}

// broker is what a broker's recorders write through: its client, and its
// poll's members (the open Watches), whose longest forecastWeeks a write of
// a ScaledObject trims to, so that a watch keeping fewer weeks never drops
// what another one of the same ScaledObject uses.
type broker struct {
	client  *redis.Client
	members func() []member
}

// member is one Watch: a ScaledObject's history in a broker.
type member struct {
	cfg             *Config
	namespace, name string
}

func (m member) id() string { return m.namespace + "/" + m.name }

// histories is one read of a broker: a History per ScaledObject (by
// member.id).
type histories = poll.Parts[*History]

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	h := &Hub{o: o.withDefaults(), brokers: map[string]*broker{}}
	h.hub = poll.NewViewHub(h.start, view)
	return h
}

func (h *Hub) start(key string, first member, members func() []member) *poll.Poller[histories] {
	c, cerr := redisbroker.NewClient(first.cfg.Broker, h.o.DialTimeout, h.o.ReadTimeout, h.o.Policy)
	b := &broker{client: c, members: members}
	if cerr == nil {
		h.mu.Lock()
		h.brokers[key] = b
		h.mu.Unlock()
	}
	read := func(ctx context.Context) (histories, error) {
		if cerr != nil {
			return histories{}, fmt.Errorf("forecast: broker client: %w", cerr)
		}
		// One store per ScaledObject, read as deep as its longest watch.
		stores := map[string]*Store{}
		for _, m := range members() {
			if _, ok := stores[m.id()]; !ok {
				stores[m.id()] = b.store(m)
			}
		}
		return readAll(ctx, c, stores, h.o.Now())
	}
	stop := func() {
		if c == nil {
			return
		}
		h.mu.Lock()
		if h.brokers[key] == b {
			delete(h.brokers, key)
		}
		h.mu.Unlock()
		_ = c.Close()
	}
	return poll.Start(read, poll.Options{Interval: h.o.Refresh, Timeout: h.o.ReadTimeout * 2, Now: h.o.Now, OnAttempt: h.o.OnRead, OnStop: stop})
}

// view is one ScaledObject's history in its broker's read. One the latest
// good read did not include (it joined since) has no reading yet.
func view(m member, s poll.Snapshot[histories]) poll.Snapshot[*History] {
	return poll.Part(s, m.id(), false) // a history that does not parse is a failed read
}

// store is m's ScaledObject's history, kept as deep as the longest
// forecastWeeks of the broker's open Watches of that ScaledObject.
func (b *broker) store(m member) *Store {
	weeks := m.cfg.Weeks
	for _, o := range b.members() {
		if o.id() == m.id() {
			weeks = max(weeks, o.cfg.Weeks)
		}
	}
	return NewStore(b.client, m.namespace, m.name, weeks)
}

// Watch reads namespace/name's history in c's broker and, unless the Hub is
// ReadOnly, records into it the demand of what sample returns, sampled
// every Sample and written once per bucket (see Bucketer). One history per
// ScaledObject, whatever the watch: it is read and trimmed to the longest
// forecastWeeks of the ScaledObject's open watches; each uses its own.
// Close the Watch when done: that writes the open bucket (see poll.Watch
// for what a closed one answers).
func (h *Hub) Watch(c *Config, namespace, name string, sample func(now time.Time) Sample) *Watch {
	key, m := c.Broker.Key(), member{cfg: c, namespace: namespace, name: name}
	w := &Watch{Watch: h.hub.Acquire(key, m)}
	if !h.o.ReadOnly {
		store := func() *Store {
			h.mu.Lock()
			b := h.brokers[key]
			h.mu.Unlock()
			if b == nil {
				return nil
			}
			return b.store(m)
		}
		w.rec = startRecorder(h.o, store, w.Poke, sample, h.o.Logger.With("scaledObject", meta.ObjectRef(namespace, name)))
	}
	return w
}

// Pollers reports how many brokers' histories are read.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Close stops every poller and closes every client. Close the Watches
// first: that flushes their open buckets.
func (h *Hub) Close() { h.hub.Close() }

// Watch is one ScaledObject's view of its history, and its recorder.
type Watch struct {
	*poll.Watch[*History]
	rec *recorder
}

// Close stops the recorder, writing its open bucket, then releases the
// shared poller.
func (w *Watch) Close() {
	if w.rec != nil {
		w.rec.stop()
	}
	w.Watch.Close()
}

// recorder samples the reactive components and writes each bucket's
// demand once, when the bucket is over (or when stopped).
type recorder struct {
	o      HubOptions
	store  func() *Store // nil once the broker's client is gone
	poke   func()
	sample func(time.Time) Sample
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	b Bucketer
	// last is the bucket of the latest sample (unix seconds), for tests.
	last     atomic.Int64
	stopOnce sync.Once
}

func (r *recorder) sampledAt() time.Time { return time.Unix(r.last.Load(), 0).UTC() }

func startRecorder(o HubOptions, store func() *Store, poke func(), sample func(time.Time) Sample, logger *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{o: o, store: store, poke: poke, sample: sample, logger: logger, cancel: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

func (r *recorder) loop(ctx context.Context) {
	defer close(r.done)
	ticker := time.NewTicker(r.o.Sample)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			// A last sample, so that a replica stopping mid-bucket
			// leaves what it saw.
			r.take()
			if b, d, ok := r.b.Close(); ok {
				r.write(b, d)
			}
			return
		case <-ticker.C:
			r.take()
		}
	}
}

// take adds a sample to the open bucket, writing the previous bucket first
// when this one is new.
func (r *recorder) take() {
	now := r.o.Now()
	if b, d, ok := r.b.Add(now, r.sample(now)); ok {
		r.write(b, d)
	}
	r.last.Store(BucketOf(now).Unix())
}

func (r *recorder) write(bucket time.Time, d Demand) {
	store := r.store()
	if store == nil {
		r.logger.Warn("forecast history write skipped: the broker's client is closed", "bucket", bucket)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*r.o.ReadTimeout)
	defer cancel()
	err := store.Write(ctx, bucket, d, r.o.Now())
	if r.o.OnRead != nil {
		r.o.OnRead(err)
	}
	if err != nil {
		// The bucket is lost on this replica; another replica may have it.
		r.logger.Warn("forecast history write failed", "bucket", bucket, "err", err)
		return
	}
	if _, ok := d[KindDemand]; ok {
		e := r.b.Last
		r.logger.Debug("forecast bucket written", "bucket", bucket, "demand", d, "method", e.Method,
			"arrived", e.Arrived, "completed", e.Completed, "meanInFlight", e.MeanInFlight, "serviceSeconds", e.ServiceSeconds)
	}
	r.poke()
}

// stop ends the loop (it writes the open bucket first); calling it again
// does nothing.
func (r *recorder) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		<-r.done
	})
}
