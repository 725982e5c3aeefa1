package latency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/poll"
)

// Reading is one latency observation with the current replicas, as Explain
// shows it (see MarshalJSON).
type Reading struct {
	Mode Mode
	// P95 in seconds; NaN when nothing was served in the window or nothing
	// matched.
	P95 float64
	// AtLeast: the P95 fell in the +Inf bucket and is the highest finite
	// bound, a lower bound of the truth.
	AtLeast bool
	Target  time.Duration
	// CurrentReplicas and where they came from: "--current-replicas",
	// "replicasQuery" or "kubernetes <resource>/<name> scale".
	CurrentReplicas int32
	ReplicasSource  string
	// Query and Series (its labels) in PromQL mode.
	Query  string
	Series string
	// Histogram, Window, Observations and Pods in scrape mode.
	Histogram    string
	Window       time.Duration
	Observations float64
	Pods         []PodStatus
	// Warnings and Infos from Prometheus or from the scrape.
	Warnings []string
	Infos    []string
}

// Evidence returns the reading in decide's plain terms.
func (r Reading) Evidence() decide.LatencyEvidence {
	w := append(append([]string{}, r.Warnings...), r.Infos...)
	return decide.LatencyEvidence{P95: r.P95, AtLeast: r.AtLeast, CurrentReplicas: float64(r.CurrentReplicas), Warnings: w}
}

// Opinion is decide.LatencyOpinion of this reading, the reading as detail.
func (r Reading) Opinion() decide.Opinion {
	return decide.LatencyOpinion(r.Evidence(), r.Target, r)
}

// Explanation says in one sentence what the reading means.
func (r Reading) Explanation() string {
	src := "PromQL"
	if r.Mode == ModeScrape {
		src = fmt.Sprintf("a direct scrape of %d pod(s) over %s", len(r.Pods), r.Window)
	}
	reps := fmt.Sprintf("%d current replicas (%s)", r.CurrentReplicas, r.ReplicasSource)
	switch {
	case math.IsNaN(r.P95):
		return fmt.Sprintf("no P95 from %s (no requests in the window, or no series): no opinion; %s", src, reps)
	case r.P95 <= r.Target.Seconds():
		return fmt.Sprintf("P95 %s from %s is within target %s: no opinion; %s", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps)
	}
	o := r.Opinion()
	if o.Desired == nil {
		return fmt.Sprintf("P95 %s from %s is above target %s but gives no opinion; %s", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps)
	}
	return fmt.Sprintf("P95 %s from %s is above target %s: %s × %.4g = %.4g replicas", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps, r.P95/r.Target.Seconds(), *o.Desired)
}

func fmtSeconds(s float64, atLeast bool) string {
	v := strconv.FormatFloat(s, 'g', 4, 64) + " s"
	if atLeast {
		return "≥ " + v + " (the highest bound)"
	}
	return v
}

// MarshalJSON writes the reading for Explain; a NaN P95 is null.
func (r Reading) MarshalJSON() ([]byte, error) {
	var p95 *float64
	if !math.IsNaN(r.P95) && !math.IsInf(r.P95, 0) {
		p95 = &r.P95
	}
	out := struct {
		Mode            Mode        `json:"mode"`
		P95             *float64    `json:"p95Seconds"`
		AtLeast         bool        `json:"p95AtLeast,omitempty"`
		Target          float64     `json:"targetSeconds"`
		CurrentReplicas int32       `json:"currentReplicas"`
		ReplicasSource  string      `json:"replicasSource"`
		Query           string      `json:"query,omitempty"`
		Series          string      `json:"series,omitempty"`
		Histogram       string      `json:"histogram,omitempty"`
		Window          string      `json:"window,omitempty"`
		Observations    float64     `json:"observations,omitempty"`
		Pods            []PodStatus `json:"pods,omitempty"`
		Warnings        []string    `json:"warnings"`
		Infos           []string    `json:"infos"`
		Explanation     string      `json:"explanation"`
	}{r.Mode, p95, r.AtLeast, r.Target.Seconds(), r.CurrentReplicas, r.ReplicasSource, r.Query, r.Series,
		r.Histogram, "", r.Observations, r.Pods, nonNil(r.Warnings), nonNil(r.Infos), r.Explanation()}
	if r.Window > 0 {
		out.Window = r.Window.String()
	}
	return json.Marshal(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// describedLookup is a ReplicaLookup that names where its answer came from.
type describedLookup interface {
	Lookup(ctx context.Context, namespace, scaledObject string) (int32, string, error)
}

// HubOptions are the Hub's collaborators.
type HubOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// Interval between reads of one upstream; 0 means 15s.
	Interval time.Duration
	// Replicas is the Kubernetes lookup (in cluster) or a FixedReplicas
	// override; nil: none, replicasQuery is then required.
	Replicas ReplicaLookup
	// HTTPClient is the base client for Prometheus and scrapes; nil: a new
	// one per upstream. Its Timeout should be 0: latencyTimeout applies.
	HTTPClient *http.Client
	// Resolver finds the pods behind a single metricsURLs name; nil:
	// net.DefaultResolver.
	Resolver Resolver
	// OnPoll, if set, is called after every read of every upstream with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnPoll func(err error)
}

// Hub runs one poller per distinct upstream and shares it among Watches.
type Hub struct {
	o   HubOptions
	hub *poll.Hub[watchKey, Reading]

	mu      sync.Mutex
	pending map[watchKey]watchSpec
	closed  bool
	watches map[*Watch]struct{}
}

type watchKey struct {
	upstream string
	// replicas is empty when the replica count is shared by every
	// ScaledObject of the upstream (replicasQuery, a fixed override), else
	// the ScaledObject it belongs to.
	replicas string
}

type watchSpec struct {
	cfg                   *Config
	namespace, scaledName string
}

// NewHub returns a Hub; Close it to stop its pollers.
func NewHub(o HubOptions) *Hub {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	h := &Hub{o: o, pending: map[watchKey]watchSpec{}, watches: map[*Watch]struct{}{}}
	h.hub = poll.NewHub(h.start)
	return h
}

// Watch is one ScaledObject's view of a shared poller.
type Watch struct {
	h       *Hub
	p       *poll.Poller[Reading]
	release func()
}

// Watch starts (or joins) the poller for c on behalf of one ScaledObject.
func (h *Hub) Watch(namespace, scaledObject string, c *Config) *Watch {
	k := watchKey{upstream: c.upstreamKey()}
	if _, fixed := h.o.Replicas.(FixedReplicas); !fixed && c.ReplicasQuery == "" && h.o.Replicas != nil {
		k.replicas = namespace + "/" + scaledObject
	}
	h.mu.Lock()
	h.pending[k] = watchSpec{cfg: c, namespace: namespace, scaledName: scaledObject}
	h.mu.Unlock()
	p, release := h.hub.Acquire(k)
	w := &Watch{h: h, p: p, release: release}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		release()
		return w
	}
	h.watches[w] = struct{}{}
	h.mu.Unlock()
	return w
}

// Pollers reports how many upstream pollers run.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Latest returns the latest snapshot without waiting.
func (w *Watch) Latest() poll.Snapshot[Reading] { return w.p.Latest() }

// Changed returns a channel closed when the next read finishes.
func (w *Watch) Changed() <-chan struct{} { return w.p.Changed() }

// First waits for the first read to finish (or ctx) and returns its snapshot.
func (w *Watch) First(ctx context.Context) (poll.Snapshot[Reading], error) { return w.p.First(ctx) }

// Close releases the Watch; the poller stops with its last Watch.
func (w *Watch) Close() {
	w.h.mu.Lock()
	delete(w.h.watches, w)
	w.h.mu.Unlock()
	w.release()
}

// Close stops every poller.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	ws := make([]*Watch, 0, len(h.watches))
	for w := range h.watches {
		ws = append(ws, w)
	}
	h.watches = map[*Watch]struct{}{}
	h.mu.Unlock()
	for _, w := range ws {
		w.release()
	}
}

func (h *Hub) start(k watchKey) *poll.Poller[Reading] {
	h.mu.Lock()
	spec := h.pending[k]
	delete(h.pending, k)
	h.mu.Unlock()
	fn, err := h.reader(spec)
	if err != nil {
		fn = func(context.Context) (Reading, error) { return Reading{}, err }
	}
	// Prometheus and the replica lookup run side by side, each bounded by
	// latencyTimeout; the slack lets their own deadlines report first.
	return poll.Start(fn, poll.Options{Interval: h.o.Interval, Timeout: spec.cfg.Timeout + time.Second, Now: h.o.Now, OnAttempt: h.o.OnPoll})
}

// reader builds the poll function of one upstream.
func (h *Hub) reader(spec watchSpec) (poll.Func[Reading], error) {
	c := spec.cfg
	log := h.o.Logger.With("component", "latency", "scaledObject", spec.namespace+"/"+spec.scaledName, "mode", string(c.Mode))
	var prom *promClient
	if c.PrometheusURL != "" {
		var err error
		if prom, err = newPromClient(c, h.o.HTTPClient); err != nil {
			return nil, err
		}
	}
	var scr *scraper
	if c.Mode == ModeScrape {
		client := h.o.HTTPClient
		if client == nil {
			client = &http.Client{}
		}
		scr = &scraper{cfg: c, client: client, resolver: h.o.Resolver, now: h.o.Now, interval: h.o.Interval}
	}
	return func(ctx context.Context) (Reading, error) {
		r, err := h.read(ctx, spec, prom, scr)
		if err != nil {
			log.Warn("latency read failed", "err", err)
			return Reading{}, fmt.Errorf("latency: %w", err)
		}
		return r, nil
	}, nil
}

func (h *Hub) read(ctx context.Context, spec watchSpec, prom *promClient, scr *scraper) (Reading, error) {
	c := spec.cfg
	r := Reading{Mode: c.Mode, Target: c.Target, P95: math.NaN()}
	var replicaWarnings []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		switch c.Mode {
		case ModePromQL:
			v, err := prom.query(gctx, "latencyQuery", c.Query)
			if err != nil {
				return err
			}
			r.Query, r.Series = c.Query, v.Labels
			r.Warnings = append(r.Warnings, v.Warnings...)
			r.Infos = append(r.Infos, v.Infos...)
			if v.Empty {
				r.Warnings = append(r.Warnings, NoSeriesWarning)
				return nil
			}
			if math.IsInf(v.Value, 0) || v.Value < 0 {
				return fmt.Errorf("latencyQuery %q returned %g, want a latency in seconds", c.Query, v.Value)
			}
			r.P95 = v.Value
		case ModeScrape:
			s, err := scr.read(gctx)
			if err != nil {
				return err
			}
			r.Histogram, r.Window, r.Pods, r.Observations = c.Histogram, c.Window, s.Pods, s.Observations
			r.P95, r.AtLeast = s.P95, s.AtLeast
			r.Warnings = append(r.Warnings, s.Warnings...)
		default:
			return fmt.Errorf("unknown mode %q", c.Mode)
		}
		return nil
	})
	g.Go(func() error {
		fixed, isFixed := h.o.Replicas.(FixedReplicas)
		switch {
		case isFixed:
			r.CurrentReplicas, r.ReplicasSource = int32(fixed), "--current-replicas"
		case c.ReplicasQuery != "":
			n, w, err := prom.replicas(gctx, c.ReplicasQuery)
			if err != nil {
				return err
			}
			r.CurrentReplicas, r.ReplicasSource, replicaWarnings = n, "replicasQuery", w
		case h.o.Replicas != nil:
			lctx, cancel := context.WithTimeout(gctx, c.Timeout)
			defer cancel()
			var n int32
			var src string
			var err error
			if d, ok := h.o.Replicas.(describedLookup); ok {
				n, src, err = d.Lookup(lctx, spec.namespace, spec.scaledName)
			} else {
				n, err = h.o.Replicas.CurrentReplicas(lctx, spec.namespace, spec.scaledName)
				src = "kubernetes"
			}
			if err != nil {
				return fmt.Errorf("current replicas: %w", err)
			}
			r.CurrentReplicas, r.ReplicasSource = n, src
		default:
			return errors.New(`current replicas unknown: set "replicasQuery" (no Kubernetes lookup here)`)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return Reading{}, err
	}
	for _, w := range replicaWarnings {
		r.Warnings = append(r.Warnings, "replicasQuery: "+w)
	}
	return r, nil
}
