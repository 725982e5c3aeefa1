package prom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/latency/prom"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/test/servers"
)

// hostileBody is what an internal service that is not Prometheus answers:
// none of it may leave the scaler.
const hostileBody = "db_password=hunter2; aws_key=AKIAHOSTILE0EXAMPLE"

// A prometheusURL pointing at a service that is not Prometheus: whatever
// its status and body, the error says the status and that the answer is not
// Prometheus's, and quotes nothing of it. Prometheus's own JSON errors are
// still shown (they say what is wrong with the query).
func TestABodyThatIsNotThePrometheusAPIsOwnErrorIsNeverEchoed(t *testing.T) {
	answers := map[string]struct {
		code int
		body string
	}{
		"/plain403":    {403, hostileBody},
		"/plain200":    {200, hostileBody},
		"/html500":     {500, "<html><body>" + hostileBody + "</body></html>"},
		"/json200":     {200, `{"db_password":"hunter2","aws_key":"AKIAHOSTILE0EXAMPLE"}`},
		"/status":      {200, `{"status":"` + hostileBody + `","error":"` + hostileBody + `"}`},
		"/errortype":   {400, `{"status":"error","errorType":"` + hostileBody + `"}`},
		"/error404":    {404, `{"error":"` + hostileBody + `"}`},
		"/bad_data":    {400, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error: unexpected end of input"}`},
		"/unavailable": {503, `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`},
	}
	var echoed int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect/api/v1/query" {
			http.Redirect(w, r, "/plain200/api/v1/query", http.StatusFound)
			return
		}
		a, ok := answers[strings.TrimSuffix(r.URL.Path, "/api/v1/query")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		echoed++
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	u := srv.URL
	tests := []struct {
		name, path, want string
	}{
		{"a 403 in plain text is its status only", "/plain403",
			"latency: prometheus " + u + "/plain403: HTTP 403 (not a Prometheus API answer)"},
		{"a 200 in plain text is its status only", "/plain200",
			"latency: prometheus " + u + "/plain200: HTTP 200 (not a Prometheus API answer)"},
		{"an HTML 500 is its status only", "/html500",
			"latency: prometheus " + u + "/html500: HTTP 500 (not a Prometheus API answer)"},
		{"JSON that is not the API's is its status only", "/json200",
			"latency: prometheus " + u + "/json200: HTTP 200 (not a Prometheus API answer)"},
		{"a status that is neither success nor error is not the API's", "/status",
			"latency: prometheus " + u + "/status: HTTP 200 (not a Prometheus API answer)"},
		{"an error without its message is not the API's", "/errortype",
			"latency: prometheus " + u + "/errortype: HTTP 400 (not a Prometheus API answer)"},
		{"an error without a status is not the API's", "/error404",
			"latency: prometheus " + u + "/error404: HTTP 404 (not a Prometheus API answer)"},
		{"a redirect is not followed", "/redirect",
			"latency: prometheus " + u + "/redirect: HTTP 302 (a redirect, not followed: set prometheusURL to the server's own address)"},
		{"Prometheus's own error is shown", "/bad_data",
			"latency: prometheus " + u + `/bad_data: latencyQuery "q" failed (HTTP 400, status "error"): bad_data: invalid parameter "query": 1:1: parse error: unexpected end of input`},
		{"Prometheus's own 5xx error is shown", "/unavailable",
			"latency: prometheus " + u + `/unavailable: latencyQuery "q" failed (HTTP 503, status "error"): unavailable: TSDB not ready`},
	}
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1)})
	t.Cleanup(hub.Close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, map[string]string{"prometheusURL": u + tt.path, "latencyQuery": "q", "latencyTimeout": "5s"}, true)
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
			if s.Err != nil && (strings.Contains(s.Err.Error(), "hunter2") || strings.Contains(s.Err.Error(), "AKIA")) {
				t.Errorf("the error echoes the body: %v", s.Err)
			}
		})
	}
}

// prometheusURL is the server's base URL, to which the API path is
// appended: a query string or a fragment would swallow that path (the
// request would go wherever the URL points), so they are refused, naming
// the key; a path prefix (Prometheus behind /prometheus) is accepted.
func TestPrometheusURLIsTheServersBaseURL(t *testing.T) {
	const allowed = "the Prometheus server's base URL: http(s)://host[:port] and an optional path prefix such as /prometheus (the scaler appends /api/v1/query), without a query string, fragment, %-escape or . or .. segment"
	// The value is shown as meta.Redact shows every URL-valued key's.
	bad := []struct {
		name, url, allowed string
	}{
		{"a query string and an empty fragment are refused", "http://internal-host/any/path?x=#",
			allowed},
		{"a fragment is refused", "http://prometheus:9090/#x",
			allowed},
		{"a query string is refused, its secret redacted", "http://prometheus:9090/?token=s3cr3tS3cr3tS3cr3t",
			allowed},
		{"a dot-dot segment is refused", "http://prometheus:9090/prometheus/../admin",
			allowed},
		{"a %-escape is refused", "http://prometheus:9090/prometheus%2F..%2Fadmin",
			allowed},
		{"the API path itself is refused with a hint", "http://prometheus:9090/api/v1/query",
			"the server's base URL without /api/v1/…: the scaler appends /api/v1/query"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := latency.ParseConfig(meta.New(map[string]string{"prometheusURL": tt.url, "latencyQuery": "q"}), true)
			want := (&meta.Error{Key: "prometheusURL", Value: meta.Redact(tt.url), Allowed: tt.allowed}).Error()
			var me *meta.Error
			if !errors.As(err, &me) || err.Error() != want {
				t.Errorf("ParseConfig error\n got %v\nwant %s", err, want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	for _, good := range []string{"http://prometheus:9090", "https://prometheus:9090/", "http://mimir:8080/prometheus", "https://u:p@vm:8428/select/0/prometheus/", "http://[fd00::1]:9090/api/prom"} {
		t.Run(good+" is accepted", func(t *testing.T) {
			if _, err := latency.ParseConfig(meta.New(map[string]string{"prometheusURL": good, "latencyQuery": "q"}), true); err != nil {
				t.Errorf("ParseConfig: %v", err)
			}
		})
	}
	// A /metrics URL is used as given: parameters are allowed (exporters
	// take some), a fragment is not (it is never sent).
	_, err := latency.ParseConfig(meta.New(map[string]string{"metricsURLs": "http://pod:8000/metrics?name[]=h", "latencyHistogram": "h"}), true)
	if err != nil {
		t.Errorf("metricsURLs with a query: %v", err)
	}
	_, err = latency.ParseConfig(meta.New(map[string]string{"metricsURLs": "http://pod:8000/metrics#x", "latencyHistogram": "h"}), true)
	want := (&meta.Error{Key: "metricsURLs", Value: meta.Redact("http://pod:8000/metrics#x"), Allowed: "an http:// or https:// URL with a host and no fragment"}).Error()
	if err == nil || err.Error() != want {
		t.Errorf("metricsURLs with a fragment: %v, want %s", err, want)
	}
}

// A real Prometheus behind a path prefix (an ingress or proxy serving it
// under /prometheus): the API path is appended to the prefix and read.
func TestAPrometheusBehindAPathPrefixIsRead(t *testing.T) {
	promServer := servers.StartPrometheus(t, nil, time.Second)
	target, err := url.Parse(promServer.URL)
	if err != nil {
		t.Fatal(err)
	}
	var paths atomic.Value
	rp := httputil.NewSingleHostReverseProxy(target)
	prefix := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path)
		rest, ok := strings.CutPrefix(r.URL.Path, "/prometheus/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		r.URL.Path = "/" + rest
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(prefix.Close)
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour})
	t.Cleanup(hub.Close)
	c := parse(t, map[string]string{"prometheusURL": prefix.URL + "/prometheus/", "latencyQuery": "vector(0.042)", "replicasQuery": "vector(2)"}, false)
	w := hub.Watch("ns", "api", c)
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil || s.Err != nil {
		t.Fatalf("First: %v, %v", err, s.Err)
	}
	if s.Value.P95 != 0.042 || s.Value.CurrentReplicas != 2 {
		t.Errorf("reading P95 %v, replicas %d; want 0.042 and 2", s.Value.P95, s.Value.CurrentReplicas)
	}
	if p, _ := paths.Load().(string); p != "/prometheus/api/v1/query" {
		t.Errorf("asked %q, want /prometheus/api/v1/query", p)
	}
}
