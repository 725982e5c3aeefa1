package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	"github.com/montage/montage-scaler/scaler/kpi"
	"github.com/montage/montage-scaler/scaler/simulate"
	"github.com/montage/montage-scaler/test/dashboard"
	"github.com/montage/montage-scaler/test/servers"
)

// simulated is simulate's JSON row for one policy.
type simulated struct {
	Policy             string   `json:"policy"`
	PodHours           float64  `json:"podHours"`
	Videos             int      `json:"videos"`
	CostPerVideo       *float64 `json:"costPerVideo"`
	ScaleEventsPerHour float64  `json:"scaleEventsPerHour"`
}

// reported is report's JSON.
type reported struct {
	PodHours             float64  `json:"podHours"`
	Videos               int      `json:"videos"`
	CostPerVideo         *float64 `json:"costPerVideo"`
	ScaleEventsPerHour   float64  `json:"scaleEventsPerHour"`
	ScaleUps             int      `json:"scaleUps"`
	ScaleDowns           int      `json:"scaleDowns"`
	PodStartupP50Seconds *float64 `json:"podStartupP50Seconds"`
	PodStartupP95Seconds *float64 `json:"podStartupP95Seconds"`
}

func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(t.Context(), args, env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }}); code != exitOK {
		t.Fatalf("montage-scaler %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// shiftTrace writes the trace with every time moved by d.
func shiftTrace(t *testing.T, src, dst string, d time.Duration) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	out := stamp.ReplaceAllStringFunc(string(b), func(s string) string {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at.Add(d).Format(time.RFC3339)
	})
	if err := os.WriteFile(dst, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// simulateDay runs simulate on a trace, emitting the montage-scaler policy's
// series, and returns that policy's row and the OpenMetrics file.
func simulateDay(t *testing.T, dir, trace string) (simulated, string) {
	t.Helper()
	examples := filepath.Join("..", "..", "examples", "traces")
	om := filepath.Join(dir, filepath.Base(trace)+".om")
	out := runCmd(t, "simulate", "--trace", trace, "--metadata", filepath.Join(examples, "scaledobject.yaml"),
		"--calendar", filepath.Join(examples, "weekday-evening.ics"), "--format", "json", "--emit-openmetrics", om)
	var rows []simulated
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("simulate JSON: %v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Policy == simulate.MontageScaler {
			return r, om
		}
	}
	t.Fatalf("no %s row in %s", simulate.MontageScaler, out)
	return simulated{}, ""
}

// layers splits the recording rules in two: those that read only raw
// series, and those that read another record (promtool's rule backfill
// queries the server, which must hold the records they read).
func layers(groups []monitoringv1.RuleGroup) (raw, derived []monitoringv1.RuleGroup) {
	records := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = true
			}
		}
	}
	for _, g := range groups {
		a, b := g, g
		a.Rules, b.Rules = nil, nil
		for _, r := range g.Rules {
			if r.Record == "" {
				continue // alerts are not backfilled
			}
			reads := false
			for name := range records {
				reads = reads || (name != r.Record && strings.Contains(r.Expr.String(), name))
			}
			if reads {
				b.Rules = append(b.Rules, r)
			} else {
				a.Rules = append(a.Rules, r)
			}
		}
		if len(a.Rules) > 0 {
			raw = append(raw, a)
		}
		if len(b.Rules) > 0 {
			derived = append(derived, b)
		}
	}
	return raw, derived
}

// TestReportMeasuresWhatSimulatePredicted replays a day (and the same day a
// week earlier, for the dashboard's week-over-week queries) through simulate,
// backfills the series the cluster would have exported into a real
// Prometheus, backfills the recording rules over them (recording rules are
// not evaluated over backfilled history), and checks that report prints
// simulate's figures, that report and the recording rules agree, and that
// every dashboard query returns data.
func TestReportMeasuresWhatSimulatePredicted(t *testing.T) {
	servers.Promtool(t)
	dir := t.TempDir()
	examples := filepath.Join("..", "..", "examples", "traces")
	trace := filepath.Join(examples, "weekday-evening.csv")
	weekEarlier := filepath.Join(dir, "weekday-evening-week-earlier.csv")
	shiftTrace(t, trace, weekEarlier, -7*24*time.Hour)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	end := start.Add(24 * time.Hour)

	sim, om := simulateDay(t, dir, trace)
	_, omEarlier := simulateDay(t, dir, weekEarlier)
	data := filepath.Join(dir, "data")
	servers.CreateBlocksFromOpenMetrics(t, om, data)
	servers.CreateBlocksFromOpenMetrics(t, omEarlier, data)

	groups := servers.ReadPrometheusRule(t, filepath.Join("..", "..", "deploy", "monitoring", "prometheusrule.yaml"))
	ruleFile := servers.WriteRuleFile(t, dir, groups)
	raw, derived := layers(groups)
	layerDir := func(name string, g []monitoringv1.RuleGroup) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return servers.WriteRuleFile(t, d, g)
	}
	// Backfill each layer over both days, then restart Prometheus on the
	// data directory so that it loads the new blocks.
	p := servers.StartPrometheusOn(t, data, ruleFile)
	for i, layer := range []string{layerDir("raw", raw), layerDir("derived", derived)} {
		out := filepath.Join(dir, fmt.Sprintf("rule-blocks-%d", i))
		for _, day := range []time.Time{start.Add(-7 * 24 * time.Hour), start} {
			servers.CreateBlocksFromRules(t, p.URL, layer, out, day, day.Add(24*time.Hour), time.Minute)
		}
		p.Stop()
		moveBlocks(t, out, data)
		p = servers.StartPrometheusOn(t, data, ruleFile)
	}

	// report over the simulated day, from the raw series.
	var rep reported
	js := runCmd(t, "report", "--prometheus", p.URL, "--until", end.Format(time.RFC3339), "--format", "json")
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, js)
	}
	table := runCmd(t, "report", "--prometheus", p.URL, "--until", end.Format(time.RFC3339), "--plot", filepath.Join(dir, "report.png"))
	t.Logf("simulate: pod-hours %.3f, videos %d, pod-h/video %v, scale ev/h %.2f\nreport:\n%s",
		sim.PodHours, sim.Videos, fmtPtr(sim.CostPerVideo), sim.ScaleEventsPerHour, table)
	for _, col := range []string{"pod-hours", "videos", "pod-h/video", "min P95>80ms", "scale ev/h"} {
		if !strings.Contains(table, col) {
			t.Errorf("report's table has no column %q (simulate's name)", col)
		}
	}

	// Videos and scale events are counted exactly: the counter is scraped at
	// the day's first and last instants, and the HPA changes spec.replicas
	// at most once per 15 s sync, the scrape interval.
	if rep.Videos != sim.Videos {
		t.Errorf("videos: report %d, simulate %d", rep.Videos, sim.Videos)
	}
	if rep.ScaleEventsPerHour != sim.ScaleEventsPerHour {
		t.Errorf("scale ev/h: report %.2f (%d ups, %d downs), simulate %.2f", rep.ScaleEventsPerHour, rep.ScaleUps, rep.ScaleDowns, sim.ScaleEventsPerHour)
	}
	// Pod-hours: report counts a pod to its last scrape before it is gone,
	// simulate to the second it is gone; so report is never above, and below
	// by at most one scrape interval (15 s) per deleted pod. A scale-down by n
	// deletes n pods: the deleted pods are the sum of spec.replicas' drops.
	// Both figures are rounded to 3 decimals (0.0005 each).
	deleted := replicaDrops(t, p.URL, start, end)
	slack := float64(deleted) * simulate.ScrapeInterval.Hours()
	if d := sim.PodHours - rep.PodHours; d < -0.001 || d > slack+0.001 {
		t.Errorf("pod-hours: report %.3f, simulate %.3f: difference %.4f outside [-0.001, %.4f] (%d deleted pods × 15 s + rounding)",
			rep.PodHours, sim.PodHours, d, slack+0.001, deleted)
	}
	if rep.CostPerVideo == nil || sim.CostPerVideo == nil {
		t.Fatalf("cost per video: report %v, simulate %v", rep.CostPerVideo, sim.CostPerVideo)
	}
	if d := math.Abs(*sim.CostPerVideo - *rep.CostPerVideo); d > (slack+0.001)/float64(sim.Videos)+0.0001 {
		t.Errorf("pod-h/video: report %.4f, simulate %.4f", *rep.CostPerVideo, *sim.CostPerVideo)
	}
	t.Logf("tolerance: %d deleted pods, pod-hours may differ by up to %.4f h; difference %.4f h", deleted, slack+0.001, sim.PodHours-rep.PodHours)

	checkRulesAgreeWithReport(t, p.URL, end)
	checkDashboardQueriesReturnData(t, p.URL, start.Add(-7*24*time.Hour), end)
	if b, err := os.ReadFile(filepath.Join(dir, "report.png")); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("report --plot: %v", err)
	}
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *v)
}

// moveBlocks moves promtool's blocks from src into Prometheus' data dir.
func moveBlocks(t *testing.T, src, data string) {
	t.Helper()
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatalf("promtool wrote no block into %s", src)
	}
	for _, e := range es {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(data, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func prom(t *testing.T, url string) *kpi.Client {
	t.Helper()
	c, err := kpi.NewClient(url, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replicaDrops sums the decreases of spec.replicas between scrapes.
func replicaDrops(t *testing.T, url string, from, until time.Time) int {
	t.Helper()
	ss, err := prom(t, url).QueryRange(t.Context(), `kube_deployment_spec_replicas{namespace="montage", deployment="montage"}`,
		from, until, simulate.ScrapeInterval)
	if err != nil || len(ss) != 1 {
		t.Fatalf("spec.replicas: %d series, %v", len(ss), err)
	}
	n := 0
	for i := 1; i < len(ss[0].Points); i++ {
		n += max(0, int(ss[0].Points[i-1].V-ss[0].Points[i].V))
	}
	return n
}

// checkRulesAgreeWithReport reads the backfilled records at their last
// evaluation of the day and runs report for the same instant: the records
// are the report's definitions over fixed windows.
func checkRulesAgreeWithReport(t *testing.T, url string, end time.Time) {
	t.Helper()
	c := prom(t, url)
	// record reads a record's last sample at or before near, and when it
	// was evaluated.
	record := func(name string, near time.Time) (float64, time.Time) {
		t.Helper()
		raw, err := c.Query(t.Context(), fmt.Sprintf(`timestamp(%s{namespace="montage", deployment="montage"})`, name), near)
		if err != nil || len(raw) != 1 {
			t.Fatalf("record %s: timestamp: %d series, %v", name, len(raw), err)
		}
		at := time.UnixMilli(int64(math.Round(raw[0].Value * 1000))).UTC()
		v, err := c.Query(t.Context(), name+`{namespace="montage", deployment="montage"}`, at)
		if err != nil || len(v) != 1 {
			t.Fatalf("record %s at %s: %v", name, at, err)
		}
		return v[0].Value, at
	}
	podHours, at := record("montage:pod_hours:24h", end)
	videos, _ := record("montage:videos_processed:increase24h", end)
	cost, costAt := record("montage:cost_per_video:pod_hours_24h", end)
	ratio, err := c.Query(t.Context(), `montage:pod_hours:24h{namespace="montage", deployment="montage"} / montage:videos_processed:increase24h{namespace="montage", deployment="montage"}`, costAt)
	if err != nil || len(ratio) != 1 {
		t.Fatalf("pod-hours / videos at %s: %v", costAt, err)
	}
	p95, _ := record("montage:pod_startup_seconds:p95_24h", end)
	var day, hour reported
	_ = json.Unmarshal([]byte(runCmd(t, "report", "--prometheus", url, "--until", at.Format(time.RFC3339Nano), "--format", "json")), &day)
	// Scale events: at the first evaluation whose hour saw a scale-up.
	evs, err := c.QueryRange(t.Context(), `montage:deployment_scale_ups:increase1h{namespace="montage", deployment="montage"} > 0`,
		end.Add(-24*time.Hour), end, time.Minute)
	if err != nil || len(evs) != 1 {
		t.Fatalf("no hour of the day with a scale-up: %v", err)
	}
	ups, upsAt := record("montage:deployment_scale_ups:increase1h", evs[0].Points[0].T)
	downs, _ := record("montage:deployment_scale_downs:increase1h", upsAt)
	_ = json.Unmarshal([]byte(runCmd(t, "report", "--prometheus", url, "--until", upsAt.Format(time.RFC3339Nano), "--since", "1h", "--format", "json")), &hour)
	t.Logf("records at %s: pod-hours %.4f (report %.3f), videos %.2f (report %d), cost %.6f, start-up p95 %.1f; at %s: %g ups, %g downs (report %d, %d)",
		at.Format(time.RFC3339Nano), podHours, day.PodHours, videos, day.Videos, cost, p95,
		upsAt.Format(time.RFC3339Nano), ups, downs, hour.ScaleUps, hour.ScaleDowns)
	if math.Abs(podHours-day.PodHours) > 0.0005 {
		t.Errorf("pod-hours: record %.4f, report %.3f", podHours, day.PodHours)
	}
	if math.Abs(videos-float64(day.Videos)) > 0.5 {
		t.Errorf("videos: record %.2f, report %d", videos, day.Videos)
	}
	// The derived layer is evaluated at its own instants: compare it with
	// the ratio of the records it read there.
	if math.Abs(cost-ratio[0].Value) > 1e-12 {
		t.Errorf("cost per video at %s: record %g, pod-hours/videos %g", costAt.Format(time.RFC3339Nano), cost, ratio[0].Value)
	}
	if day.PodStartupP95Seconds == nil || math.Abs(p95-*day.PodStartupP95Seconds) > 0.05 {
		t.Errorf("start-up p95: record %.1f, report %v", p95, day.PodStartupP95Seconds)
	}
	if ups == 0 || float64(hour.ScaleUps) != ups || float64(hour.ScaleDowns) != downs {
		t.Errorf("scale events in the last hour: records %g up %g down, report %d up %d down", ups, downs, hour.ScaleUps, hour.ScaleDowns)
	}
}

// checkDashboardQueriesReturnData runs every panel's and annotation's query
// over both days.
func checkDashboardQueriesReturnData(t *testing.T, url string, from, until time.Time) {
	t.Helper()
	d, err := dashboard.Read(filepath.Join("..", "..", "deploy", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries(map[string]string{"namespace": "montage", "scaledobject": "montage", "deployment": "montage", "latency_target": "0.08"})
	if err != nil {
		t.Fatal(err)
	}
	// The forecast is silent with under 2 weeks of history; these days have
	// none, and montage-scaler runs without it.
	silent := map[string]string{"montage_scaler_forecast_replicas": "the forecast is silent without 2 weeks of history"}
	c := prom(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	for _, q := range qs {
		ss, err := c.QueryRange(ctx, q.Expr, from, until, 5*time.Minute)
		if err != nil {
			t.Errorf("%s: %v", q.Where, err)
			continue
		}
		points := 0
		for _, s := range ss {
			for _, p := range s.Points {
				if !math.IsNaN(p.V) {
					points++
				}
			}
		}
		expectSilent := ""
		for m, why := range silent {
			if strings.Contains(q.Expr, m) {
				expectSilent = why
			}
		}
		t.Logf("%s: %d points", q.Where, points)
		switch {
		case expectSilent != "" && points > 0:
			t.Errorf("%s: %d points, but %s", q.Where, points, expectSilent)
		case expectSilent == "" && points == 0:
			t.Errorf("%s: no data: %s", q.Where, q.Expr)
		}
	}
}
