package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/forecast/store"
	"github.com/montage/montage-scaler/test/servers"
)

func runForecast(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"forecast"}, args...), env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
	return code, out.String(), errb.String()
}

// weekdayEvenings writes a trace of weeks weeks from Monday 2026-11-02:
// 30±6 tasks a minute on weekdays 18:00–20:00, a task now and then otherwise.
func weekdayEvenings(t *testing.T, weeks int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("time,tasks,requests,service_seconds\n")
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for m := 0; m < weeks*7*24*60; m++ {
		at := start.Add(time.Duration(m) * time.Minute)
		n := 0
		if wd := at.Weekday(); wd != time.Saturday && wd != time.Sunday && at.Hour() >= 18 && at.Hour() < 20 {
			n = int(30 * (0.8 + 0.4*rng.Float64()))
		} else if rng.IntN(4) == 0 {
			n = 1
		}
		fmt.Fprintf(&b, "%s,%d,100,27\n", at.Format(time.RFC3339), n)
	}
	p := filepath.Join(t.TempDir(), "trace.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tempFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, body)
	return p
}

func TestForecastBacktestsATrace(t *testing.T) {
	md := tempFile(t, "md.yaml", "brokerURL: redis://broker:6379/0\ntasksPerReplica: \"5\"\nminReplicas: \"1\"\nmaxReplicas: \"8\"\nforecastMode: dry-run\n")
	code, out, stderr := runForecast(t, "--metadata", md, "--trace", weekdayEvenings(t, 3), "--backtest", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Buckets int
		Weeks   []struct {
			From  time.Time
			Error *decide.ForecastError
		}
		Total     *decide.ForecastError
		QueueWait *struct {
			Since          time.Time
			MinutesOver30s [2]int
			PodHours       [2]float64
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Buckets != 3*2016 || len(r.Weeks) != 3 || r.Weeks[0].Error != nil || r.Weeks[1].Error != nil || r.Weeks[2].Error == nil {
		t.Fatalf("buckets %d, weeks %+v: want 6048 buckets and the first two weeks silent", r.Buckets, r.Weeks)
	}
	if r.Total == nil || r.Total.Buckets != 2016 || r.Total.Relative > 0.5 {
		t.Errorf("total %+v: want 2016 buckets with a relative error under 0.5", r.Total)
	}
	q := r.QueueWait
	if q == nil || !q.Since.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)) || q.MinutesOver30s[1] >= q.MinutesOver30s[0] || q.PodHours[1] > 1.05*q.PodHours[0] {
		t.Errorf("queue wait %+v: want fewer minutes waiting with the forecast, for at most 5 %% more pod-hours, from 2026-11-16", q)
	}

	// The forecast now, then the next 24 hours slot by slot: the evening's
	// rush expected from 18:00 in dry-run.
	code, out, stderr = runForecast(t, "--metadata", md, "--trace", weekdayEvenings(t, 3), "--at", "2026-11-23T17:55:00Z")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := regexp.MustCompile(`^forecast: +slot Mon 18:00 UTC \(at 2026-11-23T18:00:00Z\), history 3\.1 weeks, last week's over-forecast [0-9.]+; expects [0-9.]+ replicas from 3 past weeks; dry-run: not acting$`)
	if code != exitOK || len(lines) != 7+288 || !want.MatchString(lines[3]) || lines[1] != "history:    6048 buckets" || lines[2] != "zone:       UTC" ||
		!strings.HasPrefix(lines[4], "next hour:  up to ") || lines[6] != "SLOT           ESTIMATE  WEEKS  ACTING" {
		t.Fatalf("exit %d, %d lines: %s%s", code, len(lines), strings.Join(lines[:min(len(lines), 8)], "\n"), stderr)
	}
	for i, slot := range []string{"Mon 17:55 UTC", "Mon 18:00 UTC", "Tue 17:50 UTC"} {
		row := lines[7+[]int{0, 1, 287}[i]]
		rush := slot == "Mon 18:00 UTC"
		if !strings.HasPrefix(row, slot) || !strings.HasSuffix(row, "  3      no: dry-run") || strings.Contains(row, " 0.") == rush {
			t.Errorf("row %q: want slot %s with 3 weeks of evidence, not acting (dry-run), the rush %t", row, slot, rush)
		}
	}
}

func TestForecastReadsTheStoredHistory(t *testing.T) {
	rs := servers.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rc.Close() })
	monday := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	end := monday.Add(3 * forecast.Week)
	history := store.New(rc, "media", "worker", 4)
	for b := monday; b.Before(end); b = b.Add(forecast.Bucket) {
		v := 0.0
		if b.Weekday() == time.Monday && b.Hour() >= 18 && b.Hour() < 21 {
			v = 3.4
		}
		// In the previous format (the celery component's asks): it loads.
		if err := history.Write(t.Context(), b, forecast.Demand{forecast.KindLegacyAsk: v}, b); err != nil {
			t.Fatal(err)
		}
	}
	so := tempFile(t, "so.yaml", `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker, namespace: media}
spec:
  scaleTargetRef: {name: worker}
  triggers:
    - type: external-push
      metadata:
        brokerURL: `+rs.URL(0)+`
        forecastMode: enabled
`)
	code, out, stderr := runForecast(t, "--metadata", so, "--at", "2026-11-23T17:55:00Z", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var o struct {
		Source          string
		DesiredReplicas *float64
		Active          bool
		Advisory        bool
		Detail          decide.ForecastDetail
		Slots           []forecast.SlotPlan
	}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	wantSource := "history montage-scaler:forecast:{media/worker} in " + rs.URL(0)
	if o.Source != wantSource || o.DesiredReplicas == nil || *o.DesiredReplicas != 3.4 || !o.Active || o.Advisory ||
		o.Detail.Samples != 3 || !o.Detail.Acting || o.Detail.HistoryWeeks != 3.11 || o.Detail.NextHour == nil || *o.Detail.NextHour != 3.4 {
		t.Errorf("forecast %s", out)
	}
	// The next 24 hours from the 17:55 slot: Monday's 18:00–21:00 acting.
	if len(o.Slots) != 288 {
		t.Fatalf("%d slots, want 288", len(o.Slots))
	}
	for i, s := range o.Slots {
		rush := i >= 1 && i <= 36
		if s.Weeks != 3 || s.Estimate == nil || (*s.Estimate == 3.4) != rush || !s.Acting || s.Silent != "" {
			t.Errorf("slot %d %+v: want an acting estimate from 3 weeks, the rush %t", i, s, rush)
		}
	}

	// check shows the same forecast in the decision, and writes nothing.
	fields := rc.HLen(t.Context(), history.Key()).Val()
	var cout, cerr bytes.Buffer
	code = run(t.Context(), []string{"check", "--metadata", so, "--at", "2026-11-23T17:55:00Z"},
		env{stdout: &cout, stderr: &cerr, getenv: func(string) (string, bool) { return "", false }})
	var d decide.Decision
	if err := json.Unmarshal(cout.Bytes(), &d); err != nil || code != exitOK {
		t.Fatalf("check: exit %d %v\n%s%s", code, err, cout.String(), cerr.String())
	}
	if d.Desired == nil || *d.Desired != 3.4 || !d.Active || len(d.Components) != 2 || d.Components[1].Name != forecast.Name {
		t.Errorf("check: %s", cout.String())
	}
	if n := rc.HLen(t.Context(), history.Key()).Val(); n != fields {
		t.Errorf("check wrote to the history: %d fields, had %d", n, fields)
	}

	code, out, stderr = runForecast(t, "--metadata", so, "--at", "2026-11-23T00:00:00Z", "--backtest")
	if code != exitOK || !regexp.MustCompile(`\n2026-11-16 Mon +2016 +0\.0 % +0\.0 % +0 +0 +0\.0 +0\.0 +0\.00\n`).MatchString(out) || !strings.Contains(out, "queue wait: give --trace") ||
		!strings.Contains(out, "6048 buckets of 5m0s (6048 written before demand was recorded: the celery component's asks, ageing out)") {
		t.Errorf("backtest: exit %d\n%s%s", code, out, stderr)
	}
}

func TestForecastRefusesBadInvocations(t *testing.T) {
	noForecast := tempFile(t, "md.yaml", "brokerURL: redis://127.0.0.1:1/0\n")
	flat := tempFile(t, "flat.yaml", "brokerURL: redis://127.0.0.1:1/0\nforecastMode: dry-run\n")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"without a metadata file", nil, exitUsage, "montage-scaler forecast: --metadata FILE is required\n"},
		{"with the forecast disabled", []string{"--metadata", noForecast}, exitUsage,
			"montage-scaler forecast: metadata \"forecastMode\" is disabled: no history is recorded; set it to dry-run (or give --trace)\n"},
		{"a flat map without --name", []string{"--metadata", flat}, exitUsage,
			"montage-scaler forecast: --namespace and --name are required (the history is kept per ScaledObject) unless the file is a ScaledObject with both\n"},
		{"an unreachable broker", []string{"--metadata", flat, "--name", "w", "--namespace", "n", "--timeout", "2s"}, exitNoDecision,
			"montage-scaler forecast: broker redis://127.0.0.1:1/0: forecast: read history montage-scaler:forecast:{n/w}: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{"a bad format", []string{"--metadata", flat, "--format", "yaml"}, exitUsage, "montage-scaler forecast: --format \"yaml\": want text or json\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runForecast(t, tc.args...)
			if code != tc.code || stderr != tc.want || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want %d, %q", code, stderr, out, tc.code, tc.want)
			}
		})
	}
}

// TestServeExplainsADryRunForecastExportsItAndRecordsTheHistory runs serve
// against a real redis-server holding three weeks of a steady 2.5-replica
// habit for media/worker, with 10 tasks queued (celery asks for 2).
func TestServeExplainsADryRunForecastExportsItAndRecordsTheHistory(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	history := store.New(rdb, "media", "worker", 4)
	now := time.Now()
	for b := forecast.BucketOf(now.Add(-3 * forecast.Week)); b.Before(forecast.BucketOf(now)); b = b.Add(forecast.Bucket) {
		if err := history.Write(t.Context(), b, forecast.Demand{forecast.KindLegacyAsk: 2.5}, b); err != nil {
			t.Fatal(err)
		}
	}
	push(t, rdb, "celery", 10)
	p := startServe(t, "--forecast-sample-interval", "50ms")
	so := tempFile(t, "so.yaml", `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker, namespace: media}
spec:
  scaleTargetRef: {name: worker}
  triggers:
    - type: external-push
      metadata:
        brokerURL: `+rs.URL(0)+`
        forecastMode: dry-run
`)
	var d decide.Decision
	eventually(t, "an explanation with the forecast", func() error {
		var out, errb bytes.Buffer
		code := run(t.Context(), []string{"explain", "--addr", p.grpcAddr, "--metadata", so},
			env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
		d = decide.Decision{}
		if err := json.Unmarshal(out.Bytes(), &d); err != nil || code != exitOK {
			return fmt.Errorf("exit %d %v: %s%s", code, err, out.String(), errb.String())
		}
		if len(d.Components) != 2 || d.Components[0].Desired == nil || *d.Components[0].Desired != 2 {
			return fmt.Errorf("components %+v", d.Components)
		}
		return nil
	})
	// dry-run: shown and exported, the decision is celery's 2.
	f := d.Components[1]
	det, _ := f.Detail.(map[string]any)
	if *d.Desired != 2 || f.Name != forecast.Name || f.Desired == nil || *f.Desired != 2.5 || det["acting"] != false || det["samples"] != 3.0 {
		t.Fatalf("decision %v, forecast component %+v", *d.Desired, f)
	}
	eventually(t, "the forecast gauge", func() error {
		_, body := p.get(t, "/metrics")
		for _, want := range []string{
			`montage_scaler_forecast_replicas{mode="dry-run",namespace="media",scaledobject="worker"} 2.5`,
			`montage_scaler_forecast_next_hour_replicas{mode="dry-run",namespace="media",scaledobject="worker"} 2.5`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s", want)
			}
		}
		return nil
	})
	// Stopping the scaler writes the open bucket: its demand, the 10 tasks
	// that waited with no worker (2 replicas), as celery-demand.
	if code := p.stop(t); code != exitOK {
		t.Fatalf("serve exit %d", code)
	}
	h, err := history.Read(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d2, ok := h.Demand(time.Now())
	if !ok {
		// The bucket may have turned between the explain and the stop.
		d2, ok = h.Demand(time.Now().Add(-forecast.Bucket))
	}
	if !ok || d2[forecast.KindDemand] != 2 || len(d2) != 1 {
		t.Fatalf("bucket %v (%t), want celery-demand 2 recorded", d2, ok)
	}
}

func TestForecastBacktestOfAShortTraceDatesNothingAfterItsEnd(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	code, out, stderr := runForecast(t, "--metadata", filepath.Join(dir, "md.yaml"), "--trace", filepath.Join(dir, "weekday-evening.csv"), "--backtest")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The trace is 2026-03-02: the forecast could only act from 03-16.
	if strings.Contains(out, "from 2026-03-16:") || !strings.Contains(out, "the forecast could act from 2026-03-16, after the trace ends (2026-03-03): replay at least 3 weeks to see it\n") {
		t.Fatalf("backtest of one day:\n%s", out)
	}
	if want := "montage-scaler forecast: no --calendar: simulating without calendar events\n"; stderr != want {
		t.Fatalf("stderr %q, want %q", stderr, want)
	}
}
