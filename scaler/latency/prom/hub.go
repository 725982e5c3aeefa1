// Package prom is the latency component's I/O half: it reads the API's P95
// from Prometheus's query API (PromQL) or from a direct scrape of the pods'
// histogram exposition, together with the scale target's current replicas,
// and keeps the latest reading fresh in the background, one poller per
// upstream shared by every watch of it (the Hub).
package prom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/poll"
)

// describedLookup is a latency.ReplicaLookup that names where its answer
// came from (package kube's client is one).
type describedLookup interface {
	LookupReplicas(ctx context.Context, namespace, scaledObject string) (int32, string, error)
}

// HubOptions are the Hub's collaborators.
type HubOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// Interval between reads of one upstream; 0 means 15s.
	Interval time.Duration
	// Replicas is the Kubernetes lookup (in cluster) or a
	// latency.FixedReplicas override; nil: none, replicasQuery is then
	// required.
	Replicas latency.ReplicaLookup
	// Policy is the address policy of prometheusURL and metricsURLs
	// (--allow-host); nil: netpolicy.Upstreams(nil), loopback and private
	// open, link-local and cloud metadata refused before dialling.
	Policy *netpolicy.Policy
	// Resolver finds the pods behind a single metricsURLs name; nil:
	// net.DefaultResolver.
	Resolver Resolver
	// OnPoll, if set, is called after every read of every upstream with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnPoll func(err error)
}

// Hub runs one poller per distinct upstream and shares it among Watches.
type Hub struct {
	o HubOptions
	// client dials through the policy and follows no redirect (neither
	// the query API nor a /metrics endpoint redirects; following would
	// send the credentials and the scaler wherever the answer says).
	client *http.Client
	hub    *poll.Hub[watchKey, watchSpec, latency.Reading, latency.Reading]
}

type watchKey struct {
	upstream string
	// replicas is empty when the replica count is shared by every
	// ScaledObject of the upstream (replicasQuery, a fixed override), else
	// the ScaledObject it belongs to.
	replicas string
}

type watchSpec struct {
	cfg                   *latency.Config
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
	if o.Policy == nil {
		o.Policy = netpolicy.Upstreams(nil)
	}
	// latencyTimeout bounds each call through its context; the client
	// has no timeout of its own.
	h := &Hub{o: o, client: &http.Client{Transport: o.Policy.Transport(30 * time.Second), CheckRedirect: netpolicy.NoRedirects}}
	h.hub = poll.NewHub(h.start)
	return h
}

// Watch starts (or joins) the poller for c on behalf of one ScaledObject.
// Close the Watch when done (see poll.View for what a closed one answers).
func (h *Hub) Watch(namespace, scaledObject string, c *latency.Config) *poll.View[latency.Reading] {
	k := watchKey{upstream: c.UpstreamKey()}
	if _, fixed := h.o.Replicas.(latency.FixedReplicas); !fixed && c.ReplicasQuery == "" && h.o.Replicas != nil {
		k.replicas = namespace + "/" + scaledObject
	}
	return h.hub.Acquire(k, watchSpec{cfg: c, namespace: namespace, scaledName: scaledObject})
}

// Pollers reports how many upstream pollers run.
func (h *Hub) Pollers() int { return h.hub.Len() }

// Close stops every poller.
func (h *Hub) Close() { h.hub.Close() }

func (h *Hub) start(_ watchKey, spec watchSpec, _ func() []watchSpec) *poll.Poller[latency.Reading] {
	fn, err := h.reader(spec)
	if err != nil {
		fn = func(context.Context) (latency.Reading, error) { return latency.Reading{}, err }
	}
	// Prometheus and the replica lookup run side by side, each bounded by
	// latencyTimeout; the slack lets their own deadlines report first.
	log := h.o.Logger.With("mode", string(spec.cfg.Mode), "upstream", spec.cfg.Shown())
	return poll.Start(fn, poll.Options{Interval: h.o.Interval, Timeout: spec.cfg.Timeout + time.Second, Now: h.o.Now, OnAttempt: h.o.OnPoll, Logger: log})
}

// reader builds the poll function of one upstream.
func (h *Hub) reader(spec watchSpec) (poll.Func[latency.Reading], error) {
	c := spec.cfg
	secrets := c.Secrets()
	var prom *promClient
	if c.PrometheusURL != "" {
		var err error
		if prom, err = newPromClient(c, h.client); err != nil {
			return nil, err
		}
	}
	var scr *scraper
	if c.Mode == latency.ModeScrape {
		scr = &scraper{cfg: c, client: h.client, resolver: h.o.Resolver, now: h.o.Now, interval: h.o.Interval}
	}
	return func(ctx context.Context) (latency.Reading, error) {
		r, err := h.read(ctx, spec, prom, scr)
		if err != nil {
			// An upstream may echo the request (an error page that
			// quotes the path): no secret of the config leaves here.
			return latency.Reading{}, scrubbed{fmt.Errorf("latency: %w", err), secrets} // the poller logs it
		}
		for _, list := range [][]string{r.Warnings, r.Infos} {
			for i, w := range list {
				list[i] = meta.Scrub(w, secrets)
			}
		}
		for i := range r.Pods {
			r.Pods[i].Error = meta.Scrub(r.Pods[i].Error, secrets)
		}
		return r, nil
	}, nil
}

// scrubbed is an error whose text has the config's secrets replaced.
type scrubbed struct {
	err     error
	secrets []string
}

func (e scrubbed) Error() string { return meta.Scrub(e.err.Error(), e.secrets) }
func (e scrubbed) Unwrap() error { return e.err }

// read takes one reading: the P95 and the current replicas, side by side.
func (h *Hub) read(ctx context.Context, spec watchSpec, prom *promClient, scr *scraper) (latency.Reading, error) {
	c := spec.cfg
	r := latency.Reading{Mode: c.Mode, Target: c.Target, P95: math.NaN()}
	var replicaWarnings []string
	g, gctx := errgroup.WithContext(ctx)
	// Each goroutine writes its own fields of r.
	g.Go(func() error {
		switch c.Mode {
		case latency.ModePromQL:
			return readPromQL(gctx, c, prom, &r)
		case latency.ModeScrape:
			return readScrape(gctx, c, scr, &r)
		}
		return fmt.Errorf("unknown mode %q", c.Mode)
	})
	g.Go(func() (err error) {
		r.CurrentReplicas, r.ReplicasSource, replicaWarnings, err = h.currentReplicas(gctx, spec, prom)
		return err
	})
	if err := g.Wait(); err != nil {
		return latency.Reading{}, err
	}
	for _, w := range replicaWarnings {
		r.Warnings = append(r.Warnings, "replicasQuery: "+w)
	}
	return r, nil
}

// readPromQL fills r's P95 and what explains it from latencyQuery.
func readPromQL(ctx context.Context, c *latency.Config, prom *promClient, r *latency.Reading) error {
	v, err := prom.query(ctx, "latencyQuery", c.Query)
	if err != nil {
		return err
	}
	r.Query, r.Series = c.Query, v.Labels
	r.Warnings = append(r.Warnings, v.Warnings...)
	r.Infos = append(r.Infos, v.Infos...)
	if v.Empty {
		r.Warnings = append(r.Warnings, latency.NoSeriesWarning)
		return nil
	}
	if err := decide.CheckP95(v.Value); err != nil {
		return fmt.Errorf("latencyQuery %q: %w", c.Query, err)
	}
	r.P95 = v.Value
	return nil
}

// readScrape fills r's P95 and what explains it from a scrape of the pods.
func readScrape(ctx context.Context, c *latency.Config, scr *scraper, r *latency.Reading) error {
	s, err := scr.read(ctx)
	if err != nil {
		return err
	}
	if err := decide.CheckP95(s.P95); err != nil {
		return fmt.Errorf("histogram %s over latencyWindow %s: %w", c.Histogram, c.Window, err)
	}
	if math.IsInf(s.Observations, 0) {
		// A pod's counts summed past float64: no quantile of
		// them means anything.
		return fmt.Errorf("histogram %s over latencyWindow %s: %g observations is not a count", c.Histogram, c.Window, s.Observations)
	}
	r.Histogram, r.Window, r.Pods, r.Observations = c.Histogram, c.Window, s.Pods, s.Observations
	r.P95, r.AtLeast = s.P95, s.AtLeast
	r.Warnings = append(r.Warnings, s.Warnings...)
	return nil
}

// currentReplicas returns the scale target's replicas, where they came
// from, and replicasQuery's warnings: the fixed override first, then
// replicasQuery, then the Kubernetes lookup.
func (h *Hub) currentReplicas(ctx context.Context, spec watchSpec, prom *promClient) (n int32, source string, warnings []string, err error) {
	c := spec.cfg
	fixed, isFixed := h.o.Replicas.(latency.FixedReplicas)
	switch {
	case isFixed:
		return int32(fixed), "--current-replicas", nil, nil
	case c.ReplicasQuery != "":
		n, w, err := prom.replicas(ctx, c.ReplicasQuery)
		if err != nil {
			return 0, "", nil, err
		}
		return n, "replicasQuery", w, nil
	case h.o.Replicas != nil:
		n, src, err := h.lookupReplicas(ctx, spec)
		return n, src, nil, err
	}
	return 0, "", nil, errors.New(`current replicas unknown: set "replicasQuery" (no Kubernetes lookup here)`)
}

// lookupReplicas asks the replica lookup (the Kubernetes API) within
// latencyTimeout.
func (h *Hub) lookupReplicas(ctx context.Context, spec watchSpec) (int32, string, error) {
	c := spec.cfg
	lctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var n int32
	var src string
	var err error
	if d, ok := h.o.Replicas.(describedLookup); ok {
		n, src, err = d.LookupReplicas(lctx, spec.namespace, spec.scaledName)
	} else {
		n, err = h.o.Replicas.CurrentReplicas(lctx, spec.namespace, spec.scaledName)
		src = "kubernetes"
	}
	if err != nil {
		if lctx.Err() == context.DeadlineExceeded {
			return 0, "", fmt.Errorf("current replicas: no answer from the Kubernetes API within latencyTimeout %s: %w", c.Timeout, err)
		}
		return 0, "", fmt.Errorf("current replicas: %w", err)
	}
	if err := decide.CheckReplicas(float64(n)); err != nil {
		return 0, "", fmt.Errorf("current replicas from %s: %w", src, err)
	}
	return n, src, nil
}
