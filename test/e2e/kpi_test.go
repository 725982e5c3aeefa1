//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/dashboard"
	"github.com/montage/montage-scaler/test/servers"
)

// kpiRun is what the burst leaves for its KPIs.
type kpiRun struct {
	s       *scenario
	prom    *servers.Prometheus
	tr      *trajectory
	pods    []livePod
	renders int
	// from is the burst; end is when the last removed pod was gone.
	from, end time.Time
}

// The KPI records, as deploy/monitoring records them.
var kpiRecords = []string{
	"montage:deployment_scale_ups:increase1h", "montage:deployment_scale_downs:increase1h",
	"montage:pod_startup_seconds:p50_24h", "montage:pod_startup_seconds:p95_24h",
	"montage:pod_request_share:max_over_mean_5m", "montage:pod_hours:24h",
	"montage:videos_processed:increase24h", "montage:cost_per_video:pod_hours_24h",
}

// scenarioKPIs (issue 23, 3): ADR-0002's KPIs (docs/adr-0002.md) from the burst's real series
// (kube-state-metrics, the scaler's processed-task counter, the pods' API
// histograms), through deploy/monitoring's recording rules as Prometheus
// evaluates them and through `montage-scaler report`, against what the
// test itself saw: the scale-ups and -downs of Deployment.spec.replicas
// (its watch), pod start-up (its watch of created → Ready; kube-state-
// metrics has 1 s resolution, so within 2 s), the renders run. Cost per
// video must be there, and every dashboard query must return data except
// those that need history this cluster cannot have (a week ago; the
// forecast, which is off).
func scenarioKPIs(t *testing.T, e *env, k kpiRun) {
	sel := fmt.Sprintf(`{namespace=%q,deployment="montage"}`, k.s.ns)
	// The KPI group runs every minute: wait for an evaluation after the
	// run's end (and a scrape after it).
	settled := float64(k.end.Add(2*time.Second).UnixNano()) / 1e9
	waitUntil(t, 3*time.Minute, time.Second, "the KPI records evaluated after the run", func() (bool, error) {
		for _, rec := range kpiRecords {
			v, ok, err := promScalar(k.prom.URL, "timestamp("+rec+sel+")")
			if err != nil || !ok || v < settled {
				return false, fmt.Errorf("%s: evaluated at %v (want after %.0f): %v", rec, v, settled, err)
			}
		}
		return true, nil
	})
	rec := map[string]float64{}
	for _, r := range kpiRecords {
		v, _, err := promScalar(k.prom.URL, r+sel)
		if err != nil {
			t.Fatalf("e2e: %s: %v", r, err)
		}
		rec[r] = v
	}

	// What the test saw.
	ups, downs := 0, 0
	ps := k.tr.snapshot()
	for i := 1; i < len(ps); i++ {
		if ps[i].replicas > ps[i-1].replicas {
			ups++
		} else {
			downs++
		}
	}
	var startups []float64
	first := k.end
	podSeconds := 0.0
	for _, p := range k.pods {
		if !p.readySeen.IsZero() {
			startups = append(startups, p.readySeen.Sub(p.created).Seconds())
		}
		if p.created.Before(first) {
			first = p.created
		}
		podSeconds += p.until(k.end).Sub(p.created).Seconds()
	}
	seenP50 := median(startups)

	// report over the whole run, from the raw series.
	window := time.Since(first.Add(-time.Minute)).Round(time.Minute) + time.Minute
	window = max(window, 5*time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	out, err := runStdout(ctx, e.scalerBin, "report", "--prometheus", k.prom.URL, "--namespace", k.s.ns,
		"--deployment", "montage", "--since", window.String(), "--format", "json")
	cancel()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	var rep struct {
		PodHours             float64  `json:"podHours"`
		Videos               int      `json:"videos"`
		CostPerVideo         *float64 `json:"costPerVideo"`
		ScaleUps             int      `json:"scaleUps"`
		ScaleDowns           int      `json:"scaleDowns"`
		PodStartupP50Seconds *float64 `json:"podStartupP50Seconds"`
		PodStartupP95Seconds *float64 `json:"podStartupP95Seconds"`
		RequestShare         *float64 `json:"requestShareMaxOverMean"`
		Warnings             []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("e2e: report: %v\n%s", err, out)
	}

	var table strings.Builder
	fmt.Fprintf(&table, "| KPI | recording rule | report (last %s) | the test saw |\n|---|---|---|---|\n", window)
	row := func(name string, r float64, rp, seen string) {
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", name, strconv.FormatFloat(r, 'f', -1, 64), rp, seen)
	}
	row("scale ups", rec["montage:deployment_scale_ups:increase1h"], strconv.Itoa(rep.ScaleUps), fmt.Sprintf("%d (spec.replicas: %v)", ups, values(ps)))
	row("scale downs", rec["montage:deployment_scale_downs:increase1h"], strconv.Itoa(rep.ScaleDowns), strconv.Itoa(downs))
	row("pod start-up p50 (s)", round(rec["montage:pod_startup_seconds:p50_24h"], 1), fmtPtr(rep.PodStartupP50Seconds), fmt.Sprintf("%.1f (created → Ready seen, %d pods)", seenP50, len(startups)))
	row("pod start-up p95 (s)", round(rec["montage:pod_startup_seconds:p95_24h"], 1), fmtPtr(rep.PodStartupP95Seconds), "")
	row("request share max/mean", round(rec["montage:pod_request_share:max_over_mean_5m"], 2), fmtPtr(rep.RequestShare), "1 (an even spread)")
	row("pod-hours", round(rec["montage:pod_hours:24h"], 4), fmt.Sprintf("%.4f", rep.PodHours), fmt.Sprintf("%.4f (creation to gone)", podSeconds/3600))
	row("videos", round(rec["montage:videos_processed:increase24h"], 2), strconv.Itoa(rep.Videos), fmt.Sprintf("%d renders ran", k.renders))
	row("pod-hours per video", round(rec["montage:cost_per_video:pod_hours_24h"], 5), fmtPtr(rep.CostPerVideo), "")
	t.Logf("ADR-0002's KPIs from the burst's real series:\n%s", table.String())
	if len(rep.Warnings) > 0 {
		t.Logf("report's warnings: %s", strings.Join(rep.Warnings, "; "))
	}

	if got := rec["montage:deployment_scale_ups:increase1h"]; got != float64(ups) || rep.ScaleUps != ups {
		t.Errorf("scale ups: record %g, report %d, the Deployment went up %d times (%v)", got, rep.ScaleUps, ups, values(ps))
	}
	if got := rec["montage:deployment_scale_downs:increase1h"]; got != float64(downs) || rep.ScaleDowns != downs {
		t.Errorf("scale downs: record %g, report %d, the Deployment went down %d times (%v)", got, rep.ScaleDowns, downs, values(ps))
	}
	if got := rec["montage:pod_startup_seconds:p50_24h"]; math.Abs(got-seenP50) > 2 || rep.PodStartupP50Seconds == nil || math.Abs(*rep.PodStartupP50Seconds-seenP50) > 2 {
		t.Errorf("pod start-up p50: record %.1f s, report %s s, the test saw %.1f s (within 2 s wanted)", got, fmtPtr(rep.PodStartupP50Seconds), seenP50)
	}
	// increase() extrapolates to the window's end (by under a scrape
	// interval); report rounds, and so does this comparison.
	if got := rec["montage:videos_processed:increase24h"]; math.Round(got) != float64(k.renders) || rep.Videos != k.renders {
		t.Errorf("videos: record %g, report %d, renders run %d; the counter as scraped: %s", got, rep.Videos, k.renders,
			promChanges(k.prom.URL, `montage_scaler_celery_tasks_processed_total{namespace="`+k.s.ns+`"}`, first, time.Now()))
	}
	if rec["montage:cost_per_video:pod_hours_24h"] <= 0 || rep.CostPerVideo == nil {
		t.Errorf("cost per video: record %g, report %s: want both", rec["montage:cost_per_video:pod_hours_24h"], fmtPtr(rep.CostPerVideo))
	}
	checkDashboard(t, k.prom.URL, k.s.ns, k.from.Add(-time.Minute), time.Now())
}

// checkDashboard runs every query of deploy/monitoring's dashboard (panels,
// annotations, the variables' series) over [from, until] against the run's
// Prometheus: each must return data, except those that need history this
// run cannot have.
func checkDashboard(t *testing.T, promURL, ns string, from, until time.Time) {
	t.Helper()
	d, err := dashboard.Read(filepath.Join(repoDir, "deploy", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"namespace": ns, "scaledobject": "montage", "deployment": "montage", "latency_target": "0.08"}
	qs, err := d.Queries(vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"namespace", "scaledobject", "deployment"} {
		v := d.Variable(name)
		if v == nil {
			t.Fatalf("dashboard: no variable %s", name)
		}
		if m := labelValues.FindStringSubmatch(v.QueryString()); m != nil {
			expr := strings.NewReplacer("$namespace", ns).Replace(m[1])
			qs = append(qs, dashboard.Query{Where: "variable " + name, Expr: expr})
		}
	}
	silent := map[string]string{
		"offset 1w":                        "a week ago is before this cluster existed",
		"montage_scaler_forecast_replicas": "the forecast is off (no forecastMode) and silent without 2 weeks of history",
	}
	var report strings.Builder
	for _, q := range qs {
		points, err := promPoints(promURL, q.Expr, from, until, 5*time.Second)
		if err != nil {
			t.Errorf("dashboard %s: %v", q.Where, err)
			continue
		}
		why := ""
		for m, w := range silent {
			if strings.Contains(q.Expr, m) {
				why = w
			}
		}
		fmt.Fprintf(&report, "%s: %d points", q.Where, points)
		if why != "" {
			fmt.Fprintf(&report, " (silent by design: %s)", why)
		}
		report.WriteString("\n")
		switch {
		case why == "" && points == 0:
			t.Errorf("dashboard %s returns no data: %s", q.Where, q.Expr)
		case why != "" && points > 0:
			t.Errorf("dashboard %s returns data, but %s: %s", q.Where, why, q.Expr)
		}
	}
	t.Logf("dashboard queries over the run:\n%s", report.String())
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// promScalar evaluates q now; ok is false when it has no sample (the
// largest when it has several).
func promScalar(base, q string) (v float64, ok bool, err error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := promGet(base+"/api/v1/query?"+url.Values{"query": {q}}.Encode(), &body); err != nil {
		return 0, false, err
	}
	if body.Status != "success" {
		return 0, false, fmt.Errorf("%s: %s", q, body.Error)
	}
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: value %q", q, s)
		}
		if !ok || f > v {
			v, ok = f, true
		}
	}
	return v, ok, nil
}

// promPoints counts the non-NaN points of q over [from, until].
func promPoints(base, q string, from, until time.Time, step time.Duration) (int, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	u := base + "/api/v1/query_range?" + url.Values{"query": {q},
		"start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(until.Unix(), 10)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}.Encode()
	if err := promGet(u, &body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("%s: %s", q, body.Error)
	}
	n := 0
	for _, r := range body.Data.Result {
		for _, p := range r.Values {
			if s, _ := p[1].(string); s != "NaN" {
				n++
			}
		}
	}
	return n, nil
}

// promChanges describes q's series over [from, until] at 1 s steps: its
// first value and every change, for a failure message.
func promChanges(base, q string, from, until time.Time) string {
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	u := base + "/api/v1/query_range?" + url.Values{"query": {q},
		"start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(until.Unix(), 10)}, "step": {"1"}}.Encode()
	if err := promGet(u, &body); err != nil {
		return err.Error()
	}
	var out []string
	for _, r := range body.Data.Result {
		var parts []string
		prev := ""
		for _, p := range r.Values {
			ts, _ := p[0].(float64)
			v, _ := p[1].(string)
			if v != prev {
				parts = append(parts, fmt.Sprintf("%s %s", time.Unix(int64(ts), 0).UTC().Format(time.TimeOnly), v))
				prev = v
			}
		}
		out = append(out, fmt.Sprintf("%v: %s", r.Metric, strings.Join(parts, " → ")))
	}
	return strings.Join(out, "; ")
}

func promGet(u string, into any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "—"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}
