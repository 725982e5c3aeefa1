package kpi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// fakeProm answers instant queries by the first matching substring, in
// order; anything else is an empty vector.
type fakeProm struct {
	answers [][2]string // substring, value ("" = empty)
	asked   []string
}

func (f *fakeProm) Query(_ context.Context, q string, _ time.Time) ([]Sample, error) {
	f.asked = append(f.asked, q)
	for _, a := range f.answers {
		if strings.Contains(q, a[0]) {
			if a[1] == "" {
				return nil, nil
			}
			var v float64
			fmt.Sscan(a[1], &v)
			return []Sample{{Labels: map[string]string{}, Value: v}}, nil
		}
	}
	return nil, nil
}

func (f *fakeProm) QueryRange(context.Context, string, time.Time, time.Time, time.Duration) ([]Series, error) {
	return nil, nil
}

var until = time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)

func request() Request {
	return Request{Target: Target{Namespace: "montage", Deployment: "montage", ScaledObject: "montage"},
		Until: until, Since: 24 * time.Hour, LatencyTarget: 80 * time.Millisecond}
}

func TestMissingSeriesAreNamedWithTheirExporter(t *testing.T) {
	f := &fakeProm{answers: [][2]string{
		{"count(last_over_time(kube_pod_status_ready_time", ""},
		{"count(last_over_time(montage_scaler_celery_tasks_processed_total", ""},
		{"count(last_over_time(", "1"},
	}}
	_, err := Measure(t.Context(), f, "http://prom:9090", request())
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want a *MissingError", err)
	}
	want := `prometheus http://prom:9090 has no sample from 2026-03-02T00:00:00Z to 2026-03-03T00:00:00Z of:
  kube_pod_status_ready_time{namespace="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  montage_scaler_celery_tasks_processed_total{namespace="montage", scaledobject="montage"}: exported by montage-scaler serve from the Celery workers' heartbeats: is the ServiceMonitor montage-scaler installed, and are the workers' heartbeats on?`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant\n%s", err, want)
	}
}

func TestFiguresPrintInSimulatesColumns(t *testing.T) {
	f := &fakeProm{answers: [][2]string{
		{"count(last_over_time(", "1"},
		{"count_over_time((histogram_quantile", "28"},
		{"/ 3600", "29.6937"},
		{"increase(montage_scaler_celery_tasks_processed_total", "5428.9"},
		{"max(changes(", "4"},
		{"max(resets(", "3"},
		{"quantile(0.5,", "45"},
		{"quantile(0.95,", "45"},
		{"avg_over_time(", "1.0049"},
	}}
	rep, err := Measure(t.Context(), f, "http://prom:9090", request())
	if err != nil {
		t.Fatal(err)
	}
	var table, js bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	want := `montage/montage (ScaledObject montage), 2026-03-02T00:00:00Z to 2026-03-03T00:00:00Z (24h0m0s), from Prometheus http://prom:9090

  deployment  pod-hours  videos  pod-h/video  min P95>80ms  scale ev/h  scale ups  scale downs  startup p50 s  startup p95 s  req max/mean
     montage     29.694    5429       0.0055            28        0.29          4            3           45.0           45.0          1.00
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant\n%s", table.String(), want)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{`"podHours": 29.694`, `"videos": 5429`, `"costPerVideo": 0.0055`, `"scaleEventsPerHour": 0.29`,
		`"latencyOverTargetMinutes": 28`, `"scaleUps": 4`, `"podStartupP95Seconds": 45`, `"warnings": []`} {
		if !strings.Contains(js.String(), kv) {
			t.Errorf("JSON lacks %s:\n%s", kv, js.String())
		}
	}
}

func TestNoVideosIsNoCostPerVideo(t *testing.T) {
	f := &fakeProm{answers: [][2]string{{"count(last_over_time(", "1"}, {"/ 3600", "7"}, {"increase(", "0"}}}
	rep, err := Measure(t.Context(), f, "http://prom:9090", request())
	if err != nil {
		t.Fatal(err)
	}
	if rep.CostPerVideo != nil || rep.Videos != 0 || len(rep.Warnings) != 1 {
		t.Errorf("cost %v videos %d warnings %q: want no cost, 0 videos, one warning", rep.CostPerVideo, rep.Videos, rep.Warnings)
	}
	var js bytes.Buffer
	_ = rep.WriteJSON(&js)
	if !strings.Contains(js.String(), `"costPerVideo": null`) {
		t.Errorf("JSON: %s", js.String())
	}
}

func TestQueriesQuoteTheirLabelValues(t *testing.T) {
	x := newQueries(Target{Namespace: `a"b`, Deployment: "d", ScaledObject: "s"}, 90*time.Minute)
	if q := x.videos(); q != `max(increase(montage_scaler_celery_tasks_processed_total{namespace="a\"b", scaledobject="s"}[5400s]))` {
		t.Errorf("videos query %s", q)
	}
}

func TestClientErrorsSayWhatWentWrong(t *testing.T) {
	closed := "http://user:secret@" + servers.RefusedAddr(t)
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html>not here</html>")
	}))
	t.Cleanup(html.Close)
	apiErr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
	}))
	t.Cleanup(apiErr.Close)

	c, _ := NewClient(closed, nil, 5*time.Second)
	_, err := c.Query(t.Context(), "up", until)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "secret") ||
		!strings.HasPrefix(err.Error(), "prometheus http://user:xxxxx@127.0.0.1:") {
		t.Errorf("closed port: %v, want an *UnreachableError naming the redacted URL", err)
	}
	c, _ = NewClient(html.URL, nil, 5*time.Second)
	if _, err := c.Query(t.Context(), "up", until); err == nil || !strings.Contains(err.Error(), "HTTP 404 (not a Prometheus API answer)") {
		t.Errorf("an HTML page: %v", err)
	}
	c, _ = NewClient(apiErr.URL, nil, 5*time.Second)
	if _, err := c.Query(t.Context(), "up{", until); err == nil || !strings.HasSuffix(err.Error(), `query "up{": bad_data: parse error`) {
		t.Errorf("an API error: %v", err)
	}
	for _, bad := range []string{"prometheus:9090", "ftp://x", "http://x/?q=1", "http://:9090"} {
		if _, err := NewClient(bad, nil, time.Second); err == nil || !strings.Contains(err.Error(), "want http(s)://host[:port][/path]") {
			t.Errorf("NewClient(%q): %v", bad, err)
		}
	}
}

func TestPlotStepGivesAboutSevenHundredPoints(t *testing.T) {
	for _, tc := range []struct{ w, want time.Duration }{
		{24 * time.Hour, 2 * time.Minute}, {time.Hour, 15 * time.Second}, {7 * 24 * time.Hour, 14 * time.Minute},
	} {
		if got := plotStep(tc.w); got != tc.want {
			t.Errorf("plotStep(%s) = %s, want %s", tc.w, got, tc.want)
		}
	}
}

// report's Prometheus is named by its operator, but what answers there may
// not be Prometheus: a body that is not the query API's own JSON is never
// quoted (status and a short reason only); Prometheus's own error is.
func TestABodyThatIsNotThePrometheusAPIsIsNeverQuoted(t *testing.T) {
	const hostile = "db_password=hunter2; aws_key=AKIAHOSTILE0EXAMPLE"
	for _, tc := range []struct {
		code int
		body string
		want string
	}{
		{403, hostile, "HTTP 403 (not a Prometheus API answer): is the URL the server's base URL?"},
		{200, "<html>" + hostile + "</html>", "HTTP 200 (not a Prometheus API answer): is the URL the server's base URL?"},
		{200, `{"status":"` + hostile + `"}`, "HTTP 200 (not a Prometheus API answer): is the URL the server's base URL?"},
		{400, `{"status":"error","errorType":"` + hostile + `"}`, "HTTP 400 (not a Prometheus API answer): is the URL the server's base URL?"},
		{302, hostile, "HTTP 302 (a redirect, not followed: give the server's own address)"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.code == 302 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tc.code)
			fmt.Fprint(w, tc.body)
		}))
		c, _ := NewClient(srv.URL, nil, 5*time.Second)
		_, err := c.Query(t.Context(), "up", until)
		srv.Close()
		if want := "prometheus " + srv.URL + ": " + tc.want; err == nil || err.Error() != want {
			t.Errorf("HTTP %d %q:\n got %v\nwant %s", tc.code, tc.body, err, want)
		}
	}
}
