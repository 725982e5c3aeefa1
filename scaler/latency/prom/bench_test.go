package prom

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/test/servers"
)

// podExposition is a 340-line exposition like a Django pod's: 20 views of the
// latency histogram (15 lines each) among 40 lines of other families.
func podExposition(pod int) string {
	var sb strings.Builder
	sb.WriteString("# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n")
	for i := range 38 {
		fmt.Fprintf(&sb, "process_cpu_seconds_total{cpu=\"%d\"} %d\n", i, i*pod)
	}
	sb.WriteString("# HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n")
	bounds := []string{"0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5", "+Inf"}
	for v := range 20 {
		for i, le := range bounds {
			fmt.Fprintf(&sb, "http_request_duration_seconds_bucket{view=\"v%d\",method=\"GET\",le=\"%s\"} %d\n", v, le, (i+1)*(pod+v+1)*10)
		}
		fmt.Fprintf(&sb, "http_request_duration_seconds_sum{view=\"v%d\",method=\"GET\"} 12.5\n", v)
		fmt.Fprintf(&sb, "http_request_duration_seconds_count{view=\"v%d\",method=\"GET\"} %d\n", v, len(bounds)*(pod+v+1)*10)
	}
	return sb.String()
}

// BenchmarkScrapeParseQuantile10Pods parses ten pods' expositions (3,400
// lines with the comments) and computes the windowed P95 from two scrapes:
// the work of one scrape-mode poll. Goal: ≤ 20 ms per scrape on 2 cores.
func BenchmarkScrapeParseQuantile10Pods(b *testing.B) {
	bodies := make([]string, 10)
	for i := range bodies {
		bodies[i] = podExposition(i)
	}
	cfg := &latency.Config{Mode: latency.ModeScrape, Histogram: "http_request_duration_seconds", Window: time.Minute}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := &scraper{cfg: cfg}
		for k := range 2 {
			sample := scrapeSample{at: time.Unix(int64(15*k), 0), pods: map[string]*PodHistogram{}}
			for p, body := range bodies {
				h, err := ParseExposition(strings.NewReader(body), cfg.Histogram)
				if err != nil {
					b.Fatal(err)
				}
				sample.pods[fmt.Sprint(p)] = h
			}
			s.history = append(s.history, sample)
		}
		var r ScrapeResult
		s.quantile(time.Unix(15, 0), &r)
		if !math.IsNaN(r.P95) {
			b.Fatalf("P95 = %v: two identical scrapes have no traffic", r.P95)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/2, "ms/scrape")
}

// BenchmarkPromQLRoundTrip compares one latency query through the PromQL
// client with a bare GET of /-/ready on the same local Prometheus, and
// reports the ratio.
func BenchmarkPromQLRoundTrip(b *testing.B) {
	bin := servers.BuildHistProc(b)
	hp := servers.StartHistProc(b, bin, "h", []float64{0.05, 0.1, 0.25, 0.5, 1})
	prom := servers.StartPrometheus(b, []string{hp.Addr}, time.Second)
	prom.WaitFor(b, `count(h_count)`, time.Minute, func(v float64) bool { return v == 1 })
	c, err := newPromClient(&latency.Config{PrometheusURL: prom.URL, Timeout: 5 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	q := `histogram_quantile(0.95, sum by (le) (rate(h_bucket[1m])))`
	ctx := context.Background()
	var queryTime, readyTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.query(ctx, "latencyQuery", q); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		resp, err := c.client.Get(prom.URL + "/-/ready")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("ready: HTTP %d", resp.StatusCode)
		}
		queryTime += t1.Sub(t0)
		readyTime += time.Since(t1)
	}
	b.ReportMetric(float64(queryTime.Microseconds())/float64(b.N), "µs/query")
	b.ReportMetric(float64(readyTime.Microseconds())/float64(b.N), "µs/ready")
	b.ReportMetric(float64(queryTime)/float64(readyTime), "query/ready")
}
