package forecast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/poll"
)

// ErrClosed is the error of a Watch made on a closed Hub.
var ErrClosed = errors.New("forecast: hub closed")

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

// Hub shares one Redis client per broker and one history poller per
// ScaledObject among every Watch.
type Hub struct {
	o HubOptions

	mu      sync.Mutex
	clients map[string]*clientEntry
	polls   map[historyKey]*pollEntry
	closed  bool
}

type clientEntry struct {
	c    *redis.Client
	err  error
	refs int
}

type historyKey struct {
	broker, namespace, name string
	weeks                   int
}

type pollEntry struct {
	p     *poll.Poller[*History]
	store *Store
	refs  int
}

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	return &Hub{o: o.withDefaults(), clients: map[string]*clientEntry{}, polls: map[historyKey]*pollEntry{}}
}

// Watch reads namespace/name's history in c's broker and records into it
// what demand returns, sampled every Sample and written once per bucket.
// Close the Watch when done.
func (h *Hub) Watch(c *Config, namespace, name string, demand func(now time.Time) Demand) *Watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &Watch{h: h, key: historyKey{broker: c.Broker.Key(), namespace: namespace, name: name, weeks: c.Weeks}}
	if h.closed {
		return w
	}
	ce, ok := h.clients[w.key.broker]
	if !ok {
		ce = &clientEntry{}
		ce.c, ce.err = c.Broker.NewClient(h.o.DialTimeout, h.o.ReadTimeout)
		h.clients[w.key.broker] = ce
	}
	ce.refs++
	pe, ok := h.polls[w.key]
	if !ok {
		pe = &pollEntry{}
		if ce.err == nil {
			pe.store = NewStore(ce.c, namespace, name, c.Weeks)
		}
		store, cerr := pe.store, ce.err
		pe.p = poll.Start(func(ctx context.Context) (*History, error) {
			if cerr != nil {
				return nil, fmt.Errorf("forecast: broker client: %w", cerr)
			}
			return store.Read(ctx, h.o.Now())
		}, poll.Options{Interval: h.o.Refresh, Timeout: h.o.ReadTimeout * 2, Now: h.o.Now, OnAttempt: h.o.OnRead})
		h.polls[w.key] = pe
	}
	pe.refs++
	w.pe = pe
	if !h.o.ReadOnly {
		w.rec = startRecorder(h.o, pe, demand, h.o.Logger.With("scaledObject", namespace+"/"+name))
	}
	return w
}

// Close stops every poller and recorder's client. Watches made before keep
// their last snapshot; close them first to flush their open buckets.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	polls, clients := h.polls, h.clients
	h.polls, h.clients = map[historyKey]*pollEntry{}, map[string]*clientEntry{}
	h.mu.Unlock()
	for _, pe := range polls {
		pe.p.Stop()
	}
	for _, ce := range clients {
		if ce.c != nil {
			_ = ce.c.Close()
		}
	}
}

func (h *Hub) release(w *Watch) {
	h.mu.Lock()
	var stop *pollEntry
	var closeC *redis.Client
	if pe, ok := h.polls[w.key]; ok && pe == w.pe {
		pe.refs--
		if pe.refs == 0 {
			delete(h.polls, w.key)
			stop = pe
		}
	}
	if ce, ok := h.clients[w.key.broker]; ok {
		ce.refs--
		if ce.refs == 0 {
			delete(h.clients, w.key.broker)
			closeC = ce.c
		}
	}
	h.mu.Unlock()
	if stop != nil {
		stop.p.Stop()
	}
	if closeC != nil {
		_ = closeC.Close()
	}
}

// Watch is one ScaledObject's view of its history, and its recorder.
type Watch struct {
	h    *Hub
	key  historyKey
	pe   *pollEntry // nil when made on a closed Hub
	rec  *recorder
	once sync.Once
}

// Latest returns the newest history without waiting. A failed read keeps
// the last good history and sets Err.
func (w *Watch) Latest() poll.Snapshot[*History] {
	if w.pe == nil {
		return poll.Snapshot[*History]{Err: ErrClosed}
	}
	return w.pe.p.Latest()
}

// Changed returns a channel closed when the next read finishes.
func (w *Watch) Changed() <-chan struct{} {
	if w.pe == nil {
		return make(chan struct{})
	}
	return w.pe.p.Changed()
}

// First waits for the first read (or ctx).
func (w *Watch) First(ctx context.Context) (poll.Snapshot[*History], error) {
	if w.pe == nil {
		return poll.Snapshot[*History]{Err: ErrClosed}, nil
	}
	return w.pe.p.First(ctx)
}

// Close stops the recorder, writing its open bucket, and releases the
// shared poller and client.
func (w *Watch) Close() {
	w.once.Do(func() {
		if w.pe == nil {
			return
		}
		if w.rec != nil {
			w.rec.stop()
		}
		w.h.release(w)
	})
}

// recorder samples the demand and writes the max of each bucket once, when
// the bucket is over (or when stopped).
type recorder struct {
	o      HubOptions
	pe     *pollEntry
	demand func(time.Time) Demand
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	bucket time.Time
	open   Demand
	// last is the bucket of the latest sample (unix seconds), for tests.
	last atomic.Int64
}

func (r *recorder) sampledAt() time.Time { return time.Unix(r.last.Load(), 0).UTC() }

func startRecorder(o HubOptions, pe *pollEntry, demand func(time.Time) Demand, logger *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{o: o, pe: pe, demand: demand, logger: logger, cancel: cancel, done: make(chan struct{})}
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
			r.sample()
			r.flush()
			return
		case <-ticker.C:
			r.sample()
		}
	}
}

// sample adds the current demand to the open bucket, writing the previous
// bucket first when this one is new.
func (r *recorder) sample() {
	now := r.o.Now()
	b := BucketOf(now)
	if !b.Equal(r.bucket) {
		r.flush()
		r.bucket, r.open = b, Demand{}
	}
	r.open.merge(r.demand(now))
	r.last.Store(b.Unix())
}

func (r *recorder) flush() {
	if len(r.open) == 0 || r.pe.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*r.o.ReadTimeout)
	defer cancel()
	err := r.pe.store.Write(ctx, r.bucket, r.open, r.o.Now())
	if r.o.OnRead != nil {
		r.o.OnRead(err)
	}
	if err != nil {
		// The bucket is lost on this replica; another replica may have it.
		r.logger.Warn("forecast history write failed", "bucket", r.bucket, "err", err)
	} else {
		r.pe.p.Poke()
	}
	r.open = Demand{}
}

func (r *recorder) stop() {
	r.cancel()
	<-r.done
}
