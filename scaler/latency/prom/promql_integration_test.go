package prom_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/test/servers"
)

var testBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1}

// waitSnap waits until ok holds for the watch's snapshot; generous deadline.
func waitSnap(t *testing.T, w *poll.View[latency.Reading], ok func(poll.Snapshot[latency.Reading]) bool) poll.Snapshot[latency.Reading] {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := w.Changed()
		s := w.Latest()
		if s.Attempts > 0 && ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("condition not met within 60s; last snapshot: value %+v err %v", s.Value, s.Err)
		}
	}
}

// mustOpinion is the reading's opinion; a reading the hub let through is
// always one.
func mustOpinion(t *testing.T, r latency.Reading) decide.Opinion {
	t.Helper()
	o, err := r.Opinion()
	if err != nil {
		t.Fatalf("opinion of %+v: %v", r, err)
	}
	return o
}

func parse(t *testing.T, md map[string]string, kube bool) *latency.Config {
	t.Helper()
	c, err := latency.ParseConfig(meta.New(md), kube)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return c
}

func TestPromQLAgainstRealPrometheus(t *testing.T) {
	bin := servers.BuildHistProc(t)
	busy := servers.StartHistProc(t, bin, "h", testBuckets)
	idle := servers.StartHistProc(t, bin, "h", testBuckets)
	promServer := servers.StartPrometheus(t, []string{busy.Addr, idle.Addr}, time.Second)
	// Both targets scraped at zero first, so rate() sees the increase whole.
	promServer.WaitFor(t, `count(h_count == 0)`, 60*time.Second, func(v float64) bool { return v == 2 })
	busy.Observe(t, 0.03, 50)
	busy.Observe(t, 0.07, 40)
	busy.Observe(t, 0.3, 10)
	promServer.WaitFor(t, `h_count{instance="`+busy.Addr+`"}`, 60*time.Second, func(v float64) bool { return v == 100 })
	// rate() of the idle target needs two of its samples in the window.
	promServer.WaitFor(t, `count_over_time(h_count{instance="`+idle.Addr+`"}[1m])`, 60*time.Second, func(v float64) bool { return v >= 2 })

	p95Query := `histogram_quantile(0.95, sum by (le) (rate(h_bucket{instance="` + busy.Addr + `"}[1m])))`
	hub := prom.NewHub(prom.HubOptions{Interval: 200 * time.Millisecond, Replicas: latency.FixedReplicas(3)})
	t.Cleanup(hub.Close)
	base := map[string]string{"prometheusURL": promServer.URL, "latencyTimeout": "5s"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	t.Run("The P95 equals Prometheus' own histogram_quantile and asks for current × p95 / target", func(t *testing.T) {
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", p95Query), true))
		defer w.Close()
		s := waitSnap(t, w, func(s poll.Snapshot[latency.Reading]) bool { return s.Err == nil && !math.IsNaN(s.Value.P95) })
		_, raw := promServer.Query(t, p95Query)
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(raw, &vec); err != nil || len(vec) != 1 {
			t.Fatalf("prometheus result %s: %v", raw, err)
		}
		var own float64
		if err := json.Unmarshal([]byte(vec[0].Value[1].(string)), &own); err != nil {
			t.Fatal(err)
		}
		if math.Abs(s.Value.P95-own) > 1e-9 || math.Abs(own-0.375) > 1e-9 {
			t.Errorf("P95 = %v, Prometheus says %v, want both 0.375", s.Value.P95, own)
		}
		o := mustOpinion(t, s.Value)
		if o.Desired == nil || math.Abs(*o.Desired-3*0.375/0.08) > 1e-9 || !o.Active {
			t.Errorf("opinion = %+v, want 14.0625 replicas, active", o)
		}
		if s.Value.ReplicasSource != "--current-replicas" || s.Value.CurrentReplicas != 3 {
			t.Errorf("replicas = %d from %q", s.Value.CurrentReplicas, s.Value.ReplicasSource)
		}
	})

	t.Run("A scalar query is read", func(t *testing.T) {
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", "scalar("+p95Query+")"), true))
		defer w.Close()
		s := waitSnap(t, w, func(s poll.Snapshot[latency.Reading]) bool { return s.Err == nil && !math.IsNaN(s.Value.P95) })
		if math.Abs(s.Value.P95-0.375) > 1e-9 || s.Value.Series != "scalar" {
			t.Errorf("P95 = %v (%s), want 0.375 from a scalar", s.Value.P95, s.Value.Series)
		}
	})

	t.Run("A query with a typo is no opinion with the no-series warning", func(t *testing.T) {
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", `histogram_quantile(0.95, sum by (le) (rate(h_buckett[1m])))`), true))
		defer w.Close()
		s, err := w.First(t.Context())
		if err != nil || s.Err != nil {
			t.Fatalf("First: %v / %v", err, s.Err)
		}
		if !math.IsNaN(s.Value.P95) || !slices.Equal(s.Value.Warnings, []string{latency.NoSeriesWarning}) {
			t.Errorf("reading = P95 %v warnings %q", s.Value.P95, s.Value.Warnings)
		}
		if o := mustOpinion(t, s.Value); o.Desired != nil || o.Active {
			t.Errorf("opinion = %+v, want none", o)
		}
	})

	t.Run("An idle histogram is NaN: no opinion", func(t *testing.T) {
		q := `histogram_quantile(0.95, sum by (le) (rate(h_bucket{instance="` + idle.Addr + `"}[1m])))`
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", q), true))
		defer w.Close()
		s, err := w.First(t.Context())
		if err != nil || s.Err != nil {
			t.Fatalf("First: %v / %v", err, s.Err)
		}
		if !math.IsNaN(s.Value.P95) || len(s.Value.Warnings) != 0 {
			t.Errorf("reading = P95 %v warnings %q, want NaN and none", s.Value.P95, s.Value.Warnings)
		}
		if !strings.HasPrefix(s.Value.Explanation(), "no P95 from PromQL (no requests in the window, or no series): no opinion") {
			t.Errorf("explanation = %q", s.Value.Explanation())
		}
		b, err := json.Marshal(s.Value)
		if err != nil || !strings.Contains(string(b), `"p95Seconds":null`) {
			t.Errorf("JSON = %s, %v", b, err)
		}
	})

	t.Run("Two series are an error naming the query and the count", func(t *testing.T) {
		q := `histogram_quantile(0.95, sum by (le, instance) (rate(h_bucket[1m])))`
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", q), true))
		defer w.Close()
		s, _ := w.First(t.Context())
		if s.Err == nil || !strings.Contains(s.Err.Error(), `latencyQuery "`+q+`" returned 2 series`) ||
			!strings.Contains(s.Err.Error(), "aggregate them to one with sum or max") {
			t.Errorf("error = %v", s.Err)
		}
	})

	t.Run("A query Prometheus refuses is a source failure with its error", func(t *testing.T) {
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", "sum("), true))
		defer w.Close()
		s, _ := w.First(t.Context())
		if s.Err == nil || !strings.Contains(s.Err.Error(), `latencyQuery "sum(" failed (HTTP 400, status "error"): bad_data:`) {
			t.Errorf("error = %v", s.Err)
		}
	})

	t.Run("replicasQuery gives the current replicas and says so", func(t *testing.T) {
		h2 := prom.NewHub(prom.HubOptions{Interval: 200 * time.Millisecond})
		defer h2.Close()
		w := h2.Watch("ns", "api", parse(t, with("latencyQuery", p95Query, "replicasQuery", "count(up)"), false))
		defer w.Close()
		s := waitSnap(t, w, func(s poll.Snapshot[latency.Reading]) bool { return s.Err == nil })
		if s.Value.CurrentReplicas != 2 || s.Value.ReplicasSource != "replicasQuery" {
			t.Errorf("replicas = %d from %q, want 2 from replicasQuery", s.Value.CurrentReplicas, s.Value.ReplicasSource)
		}
	})

	t.Run("Watches of one upstream share one poller", func(t *testing.T) {
		c := parse(t, with("latencyQuery", p95Query), true)
		before := hub.Pollers()
		w1 := hub.Watch("ns", "a", c)
		w2 := hub.Watch("ns2", "b", c)
		if got := hub.Pollers() - before; got != 1 {
			t.Errorf("pollers added = %d, want 1", got)
		}
		w1.Close()
		w2.Close()
		if got := hub.Pollers(); got != before {
			t.Errorf("pollers after close = %d, want %d", got, before)
		}
	})

	// Last: it stops the server.
	t.Run("Prometheus stopped: the last reading is held, then unavailable past staleAfter", func(t *testing.T) {
		w := hub.Watch("ns", "api", parse(t, with("latencyQuery", p95Query), true))
		defer w.Close()
		good := waitSnap(t, w, func(s poll.Snapshot[latency.Reading]) bool { return s.Err == nil && !math.IsNaN(s.Value.P95) })
		promServer.Stop()
		s := waitSnap(t, w, func(s poll.Snapshot[latency.Reading]) bool { return s.Err != nil })
		if !strings.HasPrefix(s.Err.Error(), "latency: prometheus "+promServer.URL+": ") || s.Value.P95 != good.Value.P95 || s.GoodAt.IsZero() {
			t.Errorf("snapshot = P95 %v goodAt %v err %v", s.Value.P95, s.GoodAt, s.Err)
		}
		r := decide.Reading{Name: "latency", Opinion: mustOpinion(t, s.Value), GoodAt: s.GoodAt, Err: s.Err}
		p := decide.Policy{StaleAfter: 2 * time.Minute}
		held := decide.Decide(s.GoodAt.Add(time.Minute), p, []decide.Reading{r})
		if held.Desired == nil || math.Abs(*held.Desired-14.0625) > 0.001 || !held.Components[0].Held {
			t.Errorf("held decision = %+v", held)
		}
		stale := decide.Decide(s.GoodAt.Add(3*time.Minute), p, []decide.Reading{r})
		if stale.Err() == nil || !strings.Contains(stale.Error, "latency: last good reading 3m0s old (staleAfter 2m0s)") {
			t.Errorf("stale decision error = %q", stale.Error)
		}
	})
}

func TestPromQLFailures(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs first: cleanups are last in, first out
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	okError := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tkn" || r.Header.Get("X-Org") != "montage" || r.FormValue("query") != "q" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"query timed out"}`))
	}))
	t.Cleanup(okError.Close)
	// Answers no Prometheus gives, by path: each must be an error, never
	// "no series" (which drops the latency component's opinion).
	answers := map[string]struct {
		code int
		body string
	}{
		"/null":      {200, `{"status":"success","data":{"resultType":"vector","result":null}}`},
		"/nodata":    {200, `{"status":"success"}`},
		"/noresult":  {200, `{"status":"success","data":{"resultType":"vector"}}`},
		"/object":    {200, `{"status":"success","data":{"resultType":"vector","result":{}}}`},
		"/novalue":   {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}`},
		"/halfvalue": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000]}]}}`},
		"/notype":    {200, `{"status":"success","data":{"result":[]}}`},
		"/histogram": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"1"}]}]}}`},
		"/cut":       {500, strings.Repeat("a", 199) + "€€€"},
		"/binary":    {502, "\xff\xfe\x00\x01 upstream"},
	}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[strings.TrimSuffix(r.URL.Path, "/api/v1/query")]
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(garbage.Close)
	g := garbage.URL
	tests := []struct {
		name string
		url  string
		want string
	}{
		{`"result": null is an error, not "no series"`, g + "/null",
			"latency: prometheus " + g + `/null: malformed answer to latencyQuery: "result" of the vector is null or missing`},
		{"an answer without data is an error", g + "/nodata",
			"latency: prometheus " + g + `/nodata: malformed answer to latencyQuery: no "data"`},
		{"a vector without its result is an error", g + "/noresult",
			"latency: prometheus " + g + `/noresult: malformed answer to latencyQuery: "result" of the vector is null or missing`},
		{"a vector that is an object is an error", g + "/object",
			"latency: prometheus " + g + `/object: malformed answer to latencyQuery: the vector is not a list of series with values`},
		{"a sample without a value is an error, not a 0", g + "/novalue",
			"latency: prometheus " + g + `/novalue: malformed answer to latencyQuery: a series of the vector has no value [time, "number"]`},
		{"a sample with half a value is an error, not a 0", g + "/halfvalue",
			"latency: prometheus " + g + `/halfvalue: malformed answer to latencyQuery: a series of the vector has no value [time, "number"]`},
		{"an answer without a resultType is an error", g + "/notype",
			"latency: prometheus " + g + `/notype: malformed answer to latencyQuery: no "resultType"`},
		{"a native histogram is an error, not a 0", g + "/histogram",
			"latency: prometheus " + g + `/histogram: latencyQuery "q" returned a native histogram, want a number (apply histogram_quantile)`},
		{"a body that is not the API's is not quoted", g + "/cut",
			"latency: prometheus " + g + "/cut: HTTP 500 (not a Prometheus API answer)"},
		{"a binary body is not quoted", g + "/binary",
			"latency: prometheus " + g + "/binary: HTTP 502 (not a Prometheus API answer)"},
		{"A server that does not answer times out after latencyTimeout", slow.URL,
			"latency: prometheus " + slow.URL + ": no answer within latencyTimeout 300ms: context deadline exceeded"},
		{"A 5xx is a failure with its status", down.URL,
			"latency: prometheus " + down.URL + ": HTTP 503 (not a Prometheus API answer)"},
		{"status error on HTTP 200 is a failure", okError.URL,
			"latency: prometheus " + okError.URL + `: latencyQuery "q" failed (HTTP 200, status "error"): execution: query timed out`},
	}
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1)})
	t.Cleanup(hub.Close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, map[string]string{"prometheusURL": tt.url, "latencyQuery": "q", "latencyTimeout": "300ms",
				"prometheusBearerToken": "tkn", "prometheusHeaders": "X-Org=montage"}, true)
			w := hub.Watch("ns", "api", c)
			defer w.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := w.First(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Err == nil || s.Err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", s.Err, tt.want)
			}
			if strings.Contains(s.Err.Error(), "tkn") {
				t.Errorf("error shows the token")
			}
			if !utf8.ValidString(s.Err.Error()) {
				t.Errorf("error is not valid UTF-8: %q", s.Err)
			}
		})
	}
}

// A Prometheus (or a proxy before it speaking its API) whose error echoes
// the request — its path with a token, the Authorization header — leaks
// none of it.
func TestAnUpstreamThatEchoesTheRequestLeaksNoSecret(t *testing.T) {
	const pathToken, bearer, header = "pathT0ken123456", "bearerS3cret99", "hdrS3cretValue77"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]string{"status": "error", "errorType": "bad_data",
			"error": "Cannot POST " + r.URL.Path + " (" + r.Header.Get("Authorization") + ", " + r.Header.Get("X-Api-Key") + ")"})
		_, _ = w.Write(b)
	}))
	t.Cleanup(echo.Close)
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1)})
	t.Cleanup(hub.Close)
	c := parse(t, map[string]string{"prometheusURL": echo.URL + "/t/" + pathToken, "latencyQuery": "q",
		"prometheusBearerToken": bearer, "prometheusHeaders": "X-Api-Key=" + header}, true)
	w := hub.Watch("ns", "api", c)
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil || s.Err == nil {
		t.Fatalf("First: %v, %+v", err, s)
	}
	want := "latency: prometheus " + echo.URL + `/t/xxxxx: latencyQuery "q" failed (HTTP 400, status "error"): bad_data: Cannot POST /t/xxxxx/api/v1/query (Bearer xxxxx, xxxxx)`
	if s.Err.Error() != want {
		t.Fatalf("error\n got %s\nwant %s", s.Err, want)
	}
}
