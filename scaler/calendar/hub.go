package calendar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/poll"
)

// HubOptions configure a Hub.
type HubOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives fetch failures (URLs redacted); nil discards.
	Logger *slog.Logger
	Limits Limits
	// HTTPClient fetches feeds; nil means NewHTTPClient(Limits), which
	// enforces the network policy. A client given here is used as is.
	HTTPClient *http.Client
	// OnFetch, if set, is called after every fetch of every feed with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnFetch func(err error)
}

// Hub runs one background fetch loop per feed URL, shared by every
// ScaledObject that names it.
type Hub struct {
	now       func() time.Time
	onFetch   func(error)
	log       *slog.Logger
	limits    Limits
	client    *http.Client
	clientErr error
	hub       *poll.Hub[string, *Feed]

	mu      sync.Mutex
	watches map[*Watch]struct{}
	closed  bool
}

// NewHub returns a Hub. A bad AllowHosts entry makes every fetch fail with
// its error (validate flags with ParseAllowHost first).
func NewHub(o HubOptions) *Hub {
	h := &Hub{
		now:     o.Now,
		onFetch: o.OnFetch,
		log:     o.Logger,
		limits:  o.Limits.withDefaults(),
		client:  o.HTTPClient,
		watches: map[*Watch]struct{}{},
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.client == nil {
		h.client, h.clientErr = NewHTTPClient(h.limits)
	}
	h.hub = poll.NewHub(h.start)
	return h
}

func (h *Hub) start(raw string) *poll.Poller[*Feed] {
	u, err := ParseFeedURL(raw)
	var prev *Feed
	ready := make(chan struct{})
	var p *poll.Poller[*Feed]
	fn := func(ctx context.Context) (*Feed, error) {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, err
		}
		if h.clientErr != nil {
			return nil, h.clientErr
		}
		f, ferr := fetch(ctx, u, prev, h.limits, h.client, h.now)
		if ferr != nil {
			h.log.Warn("calendar fetch failed; keeping the last good copy", "feed", u.Redacted(), "error", ferr)
			// Retry sooner than a full refresh, but never more than once a minute.
			p.SetInterval(max(MinRefresh, min(refreshFor(prev), DefaultRefresh)))
			return nil, ferr
		}
		// A feed that cannot be expanded now is no better than a failed fetch.
		if _, xerr := f.Expand(&Config{URL: u, Timezone: time.UTC}, h.now(), h.now().Add(Horizon)); xerr != nil {
			h.log.Warn("calendar feed cannot be expanded; keeping the last good copy", "feed", u.Redacted(), "error", xerr)
			p.SetInterval(refreshFor(f))
			return nil, xerr
		}
		prev = f
		p.SetInterval(refreshFor(f))
		return f, nil
	}
	p = poll.Start(fn, poll.Options{Interval: DefaultRefresh, Timeout: h.limits.FetchTimeout + 5*time.Second, Now: h.now, OnAttempt: h.onFetch})
	close(ready)
	return p
}

// Watch shares the fetch loop of c's URL; Close it when done.
func (h *Hub) Watch(c *Config) *Watch {
	p, release := h.hub.Acquire(c.URL.raw())
	w := &Watch{p: p, release: release, now: h.now, url: c.URL, hub: h}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		release()
		w.closed = true
		return w
	}
	h.watches[w] = struct{}{}
	h.mu.Unlock()
	return w
}

// Close stops every fetch loop; Watches still held answer from their last
// snapshot.
func (h *Hub) Close() {
	h.mu.Lock()
	ws := make([]*Watch, 0, len(h.watches))
	for w := range h.watches {
		ws = append(ws, w)
	}
	h.closed = true
	h.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}

// FeedStatus is one watched feed's state, for metrics and status pages.
type FeedStatus struct {
	// URL is redacted; ID tells apart feeds whose redacted URLs are equal
	// (a truncated SHA-256 of the real URL).
	URL string
	ID  string
	// Age is how long ago the server last confirmed the copy in use; Known
	// is false before the first good fetch.
	Age   time.Duration
	Known bool
	Err   error
}

// Status lists the watched feeds, sorted by URL.
func (h *Hub) Status() []FeedStatus {
	h.mu.Lock()
	seen := map[string]*Watch{}
	for w := range h.watches {
		seen[w.url.raw()] = w
	}
	h.mu.Unlock()
	now := h.now()
	out := make([]FeedStatus, 0, len(seen))
	for raw, w := range seen {
		s := w.Latest()
		sum := sha256.Sum256([]byte(raw))
		fs := FeedStatus{URL: w.url.Redacted(), ID: hex.EncodeToString(sum[:4]), Err: s.Err}
		if s.Value != nil {
			fs.Age, fs.Known = s.Value.Age(now), true
		}
		out = append(out, fs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].URL != out[j].URL {
			return out[i].URL < out[j].URL
		}
		return out[i].ID < out[j].ID
	})
	return out
}

var ageDesc = prometheus.NewDesc("montage_scaler_calendar_age_seconds",
	"Age of the calendar copy in use: seconds since the feed's server last confirmed it.",
	[]string{"feed", "feed_id"}, nil)

// Collector exports montage_scaler_calendar_age_seconds per watched feed
// (URL redacted); the caller registers it.
func (h *Hub) Collector() prometheus.Collector { return ageCollector{h} }

type ageCollector struct{ h *Hub }

func (c ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ageDesc }

func (c ageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.h.Status() {
		if !s.Known {
			continue
		}
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, s.Age.Seconds(), s.URL, s.ID)
	}
}

// Watch is one holder's view of a shared feed.
type Watch struct {
	p       *poll.Poller[*Feed]
	release func()
	now     func() time.Time
	url     FeedURL
	hub     *Hub

	mu     sync.Mutex
	closed bool
	last   poll.Snapshot[*Feed]
}

// Latest returns the feed's snapshot without waiting: Value is the last
// good copy (kept through failures, however old), Err the latest error.
func (w *Watch) Latest() poll.Snapshot[*Feed] {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.last
	}
	return w.p.Latest()
}

// Changed returns a channel closed when the next fetch attempt finishes.
func (w *Watch) Changed() <-chan struct{} { return w.p.Changed() }

// First waits for the first fetch attempt (or ctx) and returns the snapshot.
func (w *Watch) First(ctx context.Context) (poll.Snapshot[*Feed], error) {
	return w.p.First(ctx)
}

// Age is how long ago the copy in use was last confirmed; ok is false
// before the first good fetch.
func (w *Watch) Age() (age time.Duration, ok bool) {
	s := w.Latest()
	if s.Value == nil {
		return 0, false
	}
	return s.Value.Age(w.now()), true
}

// Close releases the shared fetch loop (stopped with its last holder).
func (w *Watch) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.last = w.p.Latest()
	w.closed = true
	w.mu.Unlock()
	w.release()
	if w.hub != nil {
		w.hub.mu.Lock()
		delete(w.hub.watches, w)
		w.hub.mu.Unlock()
	}
}
