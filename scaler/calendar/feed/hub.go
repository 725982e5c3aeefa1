// Package feed is the calendar component's I/O half: it fetches iCalendar
// feeds (FetchOnce, for `check` and `calendar`) with an HTTP client that
// enforces the feeds' network policy after DNS, at dial time and on every
// redirect (NewHTTPClient, CheckURL), runs one shared fetch loop per feed
// URL (Hub) and exports each watched feed's state as metrics at scrape time
// (Hub.Collector). What a feed means, its config and its opinion, is
// package calendar's.
package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/poll"
)

// HubOptions configure a Hub.
type HubOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives fetch failures (URLs redacted); nil discards.
	Logger *slog.Logger
	Limits calendar.Limits
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
	limits    calendar.Limits
	client    *http.Client
	clientErr error
	hub       *poll.Hub[string, calendar.FeedURL, *calendar.Feed, *calendar.Feed]
}

// NewHub returns a Hub. A bad AllowHosts entry makes every fetch fail with
// its error (validate flags with ParseAllowHost first).
func NewHub(o HubOptions) *Hub {
	h := &Hub{
		now:     o.Now,
		onFetch: o.OnFetch,
		log:     o.Logger,
		limits:  o.Limits.WithDefaults(),
		client:  o.HTTPClient,
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

func (h *Hub) start(_ string, u calendar.FeedURL, _ func() []calendar.FeedURL) *poll.Poller[*calendar.Feed] {
	var prev *calendar.Feed
	failures := 0 // since the last good copy
	ready := make(chan struct{})
	var p *poll.Poller[*calendar.Feed]
	// The poller logs each failure, saying whether a copy is kept.
	failed := func(err error) (*calendar.Feed, error) {
		failures++
		p.SetInterval(retryAfter(prev, failures))
		return nil, err
	}
	fn := func(ctx context.Context) (*calendar.Feed, error) {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if h.clientErr != nil {
			return failed(h.clientErr)
		}
		f, ferr := fetch(ctx, u, prev, h.limits, h.client, h.now)
		if ferr != nil {
			return failed(ferr)
		}
		// A feed that cannot be expanded now is no better than a failed fetch.
		e, xerr := f.Expand(&calendar.Config{URL: u, Timezone: time.UTC}, h.now(), h.now().Add(calendar.Horizon))
		if xerr != nil {
			return failed(xerr)
		}
		f.Warnings = append(slices.Clone(f.Calendar.Warnings), e.Warnings...)
		if len(f.Warnings) > 0 && (prev == nil || !slices.Equal(f.Warnings, prev.Warnings)) {
			h.log.Warn("calendar feed has events the scaler cannot use; they are skipped",
				"feed", u.Redacted(), "count", len(f.Warnings), "warnings", calendar.Summarize(f.Warnings))
		}
		prev, failures = f, 0
		p.SetInterval(refreshFor(f))
		return f, nil
	}
	p = poll.Start(fn, poll.Options{Interval: DefaultRefresh, Timeout: h.limits.FetchTimeout + 5*time.Second, Now: h.now, OnAttempt: h.onFetch,
		Logger: h.log.With("feed", u.Redacted())})
	close(ready)
	return p
}

// Retry pauses after a failed fetch. Until a feed's first good copy its
// fetch is retried FirstRetry after the first failure, doubling up to
// MaxFirstRetry: the calendar has no opinion meanwhile, so it should not
// wait a whole refresh. Once it has a copy (kept however old) a failure is
// retried after the feed's refresh interval, between MinRefresh and
// DefaultRefresh.
const (
	FirstRetry    = time.Second
	MaxFirstRetry = time.Minute
)

// retryAfter is the pause after the failures-th failed fetch in a row of a
// feed whose last good copy is prev (nil: none yet).
func retryAfter(prev *calendar.Feed, failures int) time.Duration {
	if prev == nil {
		if failures > 10 {
			return MaxFirstRetry
		}
		return min(FirstRetry<<max(failures-1, 0), MaxFirstRetry)
	}
	return max(MinRefresh, min(refreshFor(prev), DefaultRefresh))
}

// Watch shares the fetch loop of c's URL; Close it when done (see
// poll.View for what a closed one answers). Its Value is the last good copy
// of the feed, kept through failures however old; nil (GoodAt zero) until
// the first, which is retried with backoff (see retryAfter).
func (h *Hub) Watch(c *calendar.Config) *poll.View[*calendar.Feed] {
	return h.hub.Acquire(c.URL.Raw(), c.URL)
}

// Close stops every fetch loop.
func (h *Hub) Close() { h.hub.Close() }

// Status is one watched feed's state, for metrics and status pages.
type Status struct {
	// URL is redacted; ID tells apart feeds whose redacted URLs are equal
	// (a truncated SHA-256 of the real URL).
	URL string
	ID  string
	// Age is how long ago the server last confirmed the copy in use; Known
	// is false before the first good fetch.
	Age   time.Duration
	Known bool
	Err   error
	// Warnings counts the events of the copy in use that cannot be used.
	Warnings int
}

// Status lists the watched feeds, sorted by URL.
func (h *Hub) Status() []Status {
	now := h.now()
	var out []Status
	h.hub.Each(func(raw string, s poll.Snapshot[*calendar.Feed]) {
		u, err := calendar.ParseFeedURL(raw)
		if err != nil {
			return // every key was a parsed FeedURL
		}
		sum := sha256.Sum256([]byte(raw))
		fs := Status{URL: u.Redacted(), ID: hex.EncodeToString(sum[:4]), Err: s.Err}
		if s.Value != nil {
			fs.Age, fs.Known, fs.Warnings = s.Value.Age(now), true, len(s.Value.Warnings)
		}
		out = append(out, fs)
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].URL != out[j].URL {
			return out[i].URL < out[j].URL
		}
		return out[i].ID < out[j].ID
	})
	return out
}

var (
	ageDesc = prometheus.NewDesc("montage_scaler_calendar_age_seconds",
		"Age of the calendar copy in use: seconds since the feed's server last confirmed it.",
		[]string{"feed", "feed_id"}, nil)
	hasCopyDesc = prometheus.NewDesc("montage_scaler_calendar_has_copy",
		"1 when a watched calendar feed has a good copy, 0 while it has had none: no opinion from it (alert MontageScalerCalendarNoCopy).",
		[]string{"feed", "feed_id"}, nil)
	warningsDesc = prometheus.NewDesc("montage_scaler_calendar_warnings",
		"Events of the calendar copy in use that the scaler skips (no DTSTART, a bad rule...): each one is replicas not asked for (alert MontageScalerCalendarWarnings).",
		[]string{"feed", "feed_id"}, nil)
)

// Collector exports, per watched feed (URL redacted),
// montage_scaler_calendar_has_copy and, once it has one,
// montage_scaler_calendar_age_seconds and montage_scaler_calendar_warnings;
// the caller registers it.
func (h *Hub) Collector() prometheus.Collector { return feedCollector{h} }

type feedCollector struct{ h *Hub }

func (c feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ageDesc
	ch <- hasCopyDesc
	ch <- warningsDesc
}

func (c feedCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.h.Status() {
		has := 0.0
		if s.Known {
			has = 1
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, s.Age.Seconds(), s.URL, s.ID)
			ch <- prometheus.MustNewConstMetric(warningsDesc, prometheus.GaugeValue, float64(s.Warnings), s.URL, s.ID)
		}
		ch <- prometheus.MustNewConstMetric(hasCopyDesc, prometheus.GaugeValue, has, s.URL, s.ID)
	}
}
