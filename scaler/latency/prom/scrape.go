package prom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/netpolicy"
	"github.com/montage/montage-scaler/scaler/wrongport"
)

// Limits of one pod's exposition. A hostile or broken /metrics must cost
// bounded memory and time: the body is read as a stream, only the lines of the
// wanted family are kept, and both are capped.
const (
	// MaxBodyBytes caps the bytes read from one pod.
	MaxBodyBytes = 16 << 20
	// MaxBuckets caps the bucket lines of the wanted family on one pod.
	MaxBuckets = 20000
	// maxLine caps one exposition line.
	maxLine = 64 << 10
)

// textFormat is what scrapes ask for: prometheus/common's OpenMetrics decoder
// was measured at about 2 ms per line here, the text parser is far cheaper.
const textFormat = "text/plain; version=0.0.4"

// PodHistogram is one pod's histogram family, summed over its label sets.
type PodHistogram struct {
	// Buckets maps upper bound to cumulative count, +Inf included.
	Buckets map[float64]float64
	Count   float64
	Series  int
}

// Resolver finds a headless Service's pods; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// scrapeSample is every pod's histogram at one instant.
type scrapeSample struct {
	at   time.Time
	pods map[string]*PodHistogram
}

// scraper keeps the recent scrapes of one set of pods and computes the
// windowed quantile from them.
type scraper struct {
	cfg      *latency.Config
	client   *http.Client
	resolver Resolver
	now      func() time.Time
	interval time.Duration

	mu      sync.Mutex
	history []scrapeSample
}

// ScrapeResult is the evidence of one scrape-mode reading.
type ScrapeResult struct {
	P95     float64
	AtLeast bool
	// Observations in the window, summed over pods.
	Observations float64
	Pods         []latency.PodStatus
	// Span is the time between the two scrapes compared.
	Span     time.Duration
	Warnings []string
}

// targets lists the URLs to scrape now: the list as given, or one per
// address of a single URL's DNS name.
func (s *scraper) targets(ctx context.Context) ([]string, error) {
	if len(s.cfg.MetricsURLs) != 1 {
		return s.cfg.MetricsURLs, nil
	}
	u, err := url.Parse(s.cfg.MetricsURLs[0])
	if err != nil {
		return nil, fmt.Errorf("metricsURLs %s: %w", meta.Redact(s.cfg.MetricsURLs[0]), err)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return s.cfg.MetricsURLs, nil
	}
	addrs, err := s.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s for metricsURLs: %w", host, err)
	}
	var out []string
	for _, a := range addrs {
		v := *u
		if p := u.Port(); p != "" {
			v.Host = net.JoinHostPort(a.IP.String(), p)
		} else if a.IP.To4() == nil {
			v.Host = "[" + a.IP.String() + "]"
		} else {
			v.Host = a.IP.String()
		}
		out = append(out, v.String())
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("resolving %s for metricsURLs: no addresses", host)
	}
	return out, nil
}

func (s *scraper) scrapeOne(ctx context.Context, target string) (*PodHistogram, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", textFormat)
	resp, err := wrongport.Do(s.client, req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, netpolicy.ErrRefused) {
			return nil, fmt.Errorf("metricsURLs: %w", err)
		}
		if wrongport.SpeaksGRPC(err) {
			err = wrongport.GRPCNotHTTP("a /metrics endpoint")
		}
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("no answer within latencyTimeout %s: %w", s.cfg.Timeout, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	// A body that is not an exposition is never quoted: the status says
	// enough, and the target may not be a pod at all.
	if isRedirect(resp.StatusCode) {
		return nil, fmt.Errorf("HTTP %d (a redirect, not followed: list the pod's own /metrics URL)", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return ParseExposition(resp.Body, s.cfg.Histogram)
}

// read scrapes every pod once, records the scrape and returns the quantile
// over the window.
func (s *scraper) read(ctx context.Context) (ScrapeResult, error) {
	targets, err := s.targets(ctx)
	if err != nil {
		return ScrapeResult{}, err
	}
	type res struct {
		h   *PodHistogram
		err error
	}
	results := make([]res, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			h, err := s.scrapeOne(ctx, t)
			results[i] = res{h, err}
		})
	}
	wg.Wait()
	sample := scrapeSample{at: s.now(), pods: map[string]*PodHistogram{}}
	var r ScrapeResult
	var errs []string
	for i, t := range targets {
		ps := latency.PodStatus{URL: meta.Redact(t)}
		switch {
		case results[i].err != nil:
			ps.Error = results[i].err.Error()
			errs = append(errs, fmt.Sprintf("%s: %s", ps.URL, ps.Error))
		case results[i].h == nil:
			ps.Error = "histogram " + s.cfg.Histogram + " not exposed"
		default:
			ps.Series = results[i].h.Series
			sample.pods[t] = results[i].h
		}
		r.Pods = append(r.Pods, ps)
	}
	if len(errs) == len(targets) {
		return ScrapeResult{}, fmt.Errorf("scraping %s: every pod failed: %s", s.cfg.Histogram, strings.Join(errs, "; "))
	}
	for _, e := range errs {
		r.Warnings = append(r.Warnings, "scrape failed, pod left out: "+e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, sample)
	s.prune(sample.at)
	s.quantile(sample.at, &r)
	return r, nil
}

// prune keeps the scrapes inside the window plus the newest one before it,
// which serves as the base.
func (s *scraper) prune(now time.Time) {
	start := now.Add(-s.cfg.Window)
	base := 0
	for i, h := range s.history {
		if !h.at.After(start) {
			base = i
		}
	}
	s.history = slices.Delete(s.history, 0, base)
}

// quantile sums, per pod and per bucket, the increase over the history's
// consecutive scrapes (a drop is a counter reset: the new value is the
// increase since it, as PromQL's increase does), then sums pods by le.
// A pod seen once contributes nothing yet; a pod gone keeps what it
// contributed while it was scraped inside the window.
func (s *scraper) quantile(now time.Time, r *ScrapeResult) {
	r.P95 = math.NaN()
	if len(s.history) < 2 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("first scrape: the P95 over latencyWindow %s needs a second one", s.cfg.Window))
		return
	}
	r.Span = now.Sub(s.history[0].at)
	total := map[float64]float64{}
	resets := 0
	for i := 1; i < len(s.history); i++ {
		prev, cur := s.history[i-1], s.history[i]
		for pod, h := range cur.pods {
			p, ok := prev.pods[pod]
			if !ok {
				p = lastSeen(s.history[:i-1], pod)
			}
			if p == nil {
				continue
			}
			reset := false
			for le, c := range h.Buckets {
				old, had := p.Buckets[le]
				switch {
				case !had:
					continue
				case c < old:
					reset = true
					total[le] += c
				default:
					total[le] += c - old
				}
			}
			if reset {
				resets++
			}
		}
	}
	if resets > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d counter reset(s) in the window (a pod restarted): counted from the reset", resets))
	}
	if len(total) == 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("no series: histogram %s not exposed by any pod twice in the window", s.cfg.Histogram))
		return
	}
	b := make([]latency.Bucket, 0, len(total))
	for le, c := range total {
		b = append(b, latency.Bucket{UpperBound: le, Count: c})
	}
	r.Observations = total[math.Inf(1)]
	r.P95, r.AtLeast = latency.Quantile(0.95, b)
}

// lastSeen returns the pod's newest histogram in h, nil if it is absent: a
// pod missing from one scrape resumes from where it was.
func lastSeen(h []scrapeSample, pod string) *PodHistogram {
	for i := len(h) - 1; i >= 0; i-- {
		if p, ok := h[i].pods[pod]; ok {
			return p
		}
	}
	return nil
}

// formatBound prints a bucket bound as PromQL's le label does.
func formatBound(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}
