package prom

import (
	"context"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/test/servers"
)

// TestScrapeTwoPods drives two real histogram processes and reads them as
// the poller would, with a clock the test moves: a counter reset and a pod
// that disappears are both part of the story.
func TestScrapeTwoPods(t *testing.T) {
	bin := servers.BuildHistProc(t)
	buckets := []float64{0.05, 0.1, 0.25, 0.5, 1}
	a := servers.StartHistProc(t, bin, "h", buckets)
	b := servers.StartHistProc(t, bin, "h", buckets)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cfg := &latency.Config{Mode: latency.ModeScrape, MetricsURLs: []string{a.MetricsURL, b.MetricsURL}, Histogram: "h",
		Window: time.Minute, Target: 80 * time.Millisecond, Timeout: 5 * time.Second}
	s := &scraper{cfg: cfg, client: &http.Client{}, now: func() time.Time { return now }}
	read := func(t *testing.T, at time.Duration) ScrapeResult {
		t.Helper()
		now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(at)
		r, err := s.read(t.Context())
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return r
	}
	check := func(t *testing.T, r ScrapeResult, p95, obs float64, warnings []string) {
		t.Helper()
		if !(math.IsNaN(p95) && math.IsNaN(r.P95)) && math.Abs(r.P95-p95) > 1e-12 {
			t.Errorf("P95 = %v, want %v", r.P95, p95)
		}
		if r.Observations != obs {
			t.Errorf("observations = %v, want %v", r.Observations, obs)
		}
		if !slices.Equal(r.Warnings, warnings) {
			t.Errorf("warnings = %q, want %q", r.Warnings, warnings)
		}
	}

	t.Run("The first scrape has no window yet", func(t *testing.T) {
		check(t, read(t, 0), math.NaN(), 0, []string{"first scrape: the P95 over latencyWindow 1m0s needs a second one"})
	})
	t.Run("Buckets are summed by le across pods and interpolated as histogram_quantile does", func(t *testing.T) {
		a.Observe(t, 0.03, 50)
		a.Observe(t, 0.07, 40)
		b.Observe(t, 0.3, 10)
		check(t, read(t, 15*time.Second), 0.375, 100, nil)
	})
	t.Run("A counter reset counts from the reset", func(t *testing.T) {
		a.Reset(t)
		a.Observe(t, 0.3, 20)
		// 50, 90, 90, 120, 120: rank 114 in (0.25, 0.5] → 0.25 + 0.25 × 24/30.
		check(t, read(t, 30*time.Second), 0.45, 120, []string{"1 counter reset(s) in the window (a pod restarted): counted from the reset"})
	})
	t.Run("A pod that disappears keeps what it served inside the window", func(t *testing.T) {
		b.Stop()
		r := read(t, 45*time.Second)
		if len(r.Warnings) != 2 || !strings.HasPrefix(r.Warnings[0], "scrape failed, pod left out: "+b.MetricsURL+": ") {
			t.Fatalf("warnings = %q", r.Warnings)
		}
		check(t, r, 0.45, 120, r.Warnings)
		if r.Pods[1].Error == "" || r.Pods[0].Error != "" || r.Pods[0].Series != 1 {
			t.Errorf("pods = %+v", r.Pods)
		}
	})
	t.Run("Once the window has moved past the traffic there is no P95", func(t *testing.T) {
		r := read(t, 100*time.Second)
		check(t, r, math.NaN(), 0, r.Warnings)
		if r.Span != 70*time.Second {
			t.Errorf("span = %s, want 1m10s (from the scrape at 30s, the newest before the window)", r.Span)
		}
	})
	t.Run("Every pod failing is a source failure", func(t *testing.T) {
		a.Stop()
		_, err := s.read(t.Context())
		if err == nil || !strings.HasPrefix(err.Error(), "scraping h: every pod failed: "+a.MetricsURL+": ") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestScrapePlusInf(t *testing.T) {
	bin := servers.BuildHistProc(t)
	a := servers.StartHistProc(t, bin, "h", []float64{0.1, 0.5})
	now := time.Unix(0, 0)
	s := &scraper{cfg: &latency.Config{Mode: latency.ModeScrape, MetricsURLs: []string{a.MetricsURL}, Histogram: "h", Window: time.Minute, Timeout: 5 * time.Second},
		client: &http.Client{}, now: func() time.Time { return now }, resolver: net.DefaultResolver}
	if _, err := s.read(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.Observe(t, 3, 10)
	now = now.Add(15 * time.Second)
	r, err := s.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.P95 != 0.5 || !r.AtLeast {
		t.Errorf("P95 = %v atLeast %v, want ≥ 0.5", r.P95, r.AtLeast)
	}
	rd := latency.Reading{Mode: latency.ModeScrape, P95: r.P95, AtLeast: r.AtLeast, Target: 100 * time.Millisecond, CurrentReplicas: 2, ReplicasSource: "--current-replicas", Window: time.Minute, Pods: r.Pods}
	want := "P95 ≥ 0.5 s (the highest bound) from a direct scrape of 1 pod(s) over 1m0s is above target 100ms: 2 current replicas (--current-replicas) × 5 = 10 replicas"
	if got := rd.Explanation(); got != want {
		t.Errorf("explanation\n got %s\nwant %s", got, want)
	}
}

type fakeResolver map[string][]net.IPAddr

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestScrapeTargetsFromDNS(t *testing.T) {
	r := fakeResolver{"api-headless.montage.svc": {{IP: net.ParseIP("10.0.0.7")}, {IP: net.ParseIP("10.0.0.5")}, {IP: net.ParseIP("fd00::1")}}}
	tests := []struct {
		name string
		urls []string
		want []string
		err  string
	}{
		{"One DNS name gives one target per address", []string{"http://api-headless.montage.svc:8000/metrics"},
			[]string{"http://10.0.0.5:8000/metrics", "http://10.0.0.7:8000/metrics", "http://[fd00::1]:8000/metrics"}, ""},
		{"A list is used as given", []string{"http://a:1/metrics", "http://b:1/metrics"},
			[]string{"http://a:1/metrics", "http://b:1/metrics"}, ""},
		{"One IP address is used as given", []string{"http://127.0.0.1:9/metrics"}, []string{"http://127.0.0.1:9/metrics"}, ""},
		{"A name that does not resolve is an error naming it", []string{"http://nope.svc:8000/metrics"}, nil,
			"resolving nope.svc for metricsURLs: lookup nope.svc: no such host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scraper{cfg: &latency.Config{MetricsURLs: tt.urls}, resolver: r}
			got, err := s.targets(t.Context())
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("targets = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// A pod that accepts and never answers: the scrape's error names its URL
// and the latencyTimeout that passed.
func TestAHungPodNamesItsURLAndTheTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // accepted, never answered
		}
	}()
	u := "http://" + l.Addr().String() + "/metrics"
	cfg := &latency.Config{Mode: latency.ModeScrape, MetricsURLs: []string{u, u + "?pod=2"}, Histogram: "h", Window: time.Minute, Timeout: 300 * time.Millisecond}
	s := &scraper{cfg: cfg, client: &http.Client{}, now: time.Now}
	_, err = s.read(t.Context())
	want := "scraping h: every pod failed: " + u + ": no answer within latencyTimeout 300ms: context deadline exceeded; " +
		u + "?pod=2: no answer within latencyTimeout 300ms: context deadline exceeded"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got %v\nwant %s", err, want)
	}
}
