package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
)

// leaked is what an internal service that is not the upstream a key
// expects answers: no part of it may leave the scaler.
const leaked = "db_password=hunter2; aws_key=AKIAHOSTILE0EXAMPLE"

// hostileHTTP answers every request 403 with leaked, counting requests.
func hostileHTTP(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, leaked)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// hostileTCP answers every line it is sent with leaked, counting
// connections: a broker address that is not Redis.
func hostileTCP(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
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
			conns.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := io.WriteString(c, leaked+"\r\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), &conns
}

// askAll makes the calls KEDA and explain make and returns every error
// text and explanation.
func askAll(t *testing.T, p *scalerProc, r *pb.ScaledObjectRef) []string {
	t.Helper()
	var out []string
	if _, err := p.ks.GetMetrics(ctxT(t), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"}); err != nil {
		out = append(out, "GetMetrics: "+status.Convert(err).Code().String()+": "+status.Convert(err).Message())
	}
	if _, err := p.ks.IsActive(ctxT(t), r); err != nil {
		out = append(out, "IsActive: "+status.Convert(err).Code().String()+": "+status.Convert(err).Message())
	}
	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	b, _ := protojson.Marshal(e)
	return append(out, "Explain: "+string(b))
}

// wantAnswers waits until the calls say every one of want, then checks that
// nothing the scaler said, logs included, quotes the hostile answers.
func wantAnswers(t *testing.T, p *scalerProc, r *pb.ScaledObjectRef, want ...string) {
	t.Helper()
	var said []string
	eventually(t, fmt.Sprintf("answers saying %q", want), func() error {
		said = askAll(t, p, r)
		all := strings.Join(said, "\n")
		if !strings.Contains(all, "GetMetrics: Unavailable") || !strings.Contains(all, "IsActive: Unavailable") {
			return fmt.Errorf("not Unavailable yet: %s", all)
		}
		for _, w := range want {
			if !strings.Contains(all, w) {
				return fmt.Errorf("no %q in %s", w, all)
			}
		}
		return nil
	})
	for _, s := range append(said, "logs: "+p.logs.String()) {
		for _, secret := range []string{"hunter2", "AKIAHOSTILE"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows in %s", secret, s)
			}
		}
	}
}

// serve with a prometheusURL, metricsURLs and a brokerURL on addresses
// the policy refuses: no connection is made, every RPC error names the key
// and the flag; --allow-host opens them, and then what answers there is
// not quoted in any RPC error, Explain or log line.
func TestServeDialsNothingThePolicyRefusesAndQuotesNoUpstreamsBody(t *testing.T) {
	prom, promHits := hostileHTTP(t)
	pods, podHits := hostileHTTP(t)
	broker, brokerConns := hostileTCP(t)
	// 0.0.0.0 is the unspecified address, refused by default like
	// link-local and cloud metadata; on Linux it reaches the loopback
	// servers above, so the test needs no address it may not contact.
	unspecified := func(u string) string { return strings.Replace(u, "127.0.0.1", "0.0.0.0", 1) }
	_, brokerPort, _ := net.SplitHostPort(broker)
	refs := map[string]*pb.ScaledObjectRef{
		"prometheusURL": {Namespace: "prod", Name: "prom", ScalerMetadata: map[string]string{
			"prometheusURL": unspecified(prom.URL) + "/prometheus", "latencyQuery": "p95", "replicasQuery": "replicas"}},
		"metricsURLs": {Namespace: "prod", Name: "pods", ScalerMetadata: map[string]string{
			"metricsURLs": unspecified(pods.URL) + "/metrics", "latencyHistogram": "h", "replicasQuery": "replicas",
			"prometheusURL": unspecified(prom.URL)}},
		"brokerURL": {Namespace: "prod", Name: "broker", ScalerMetadata: map[string]string{
			"brokerURL": "redis://0.0.0.0:" + brokerPort + "/0"}},
	}
	t.Run("refused before dialling", func(t *testing.T) {
		p := startServe(t, "--stale-after", "1s", "--latency-interval", "100ms")
		wantAnswers(t, p, refs["prometheusURL"], "prometheusURL "+unspecified(prom.URL)+"/prometheus: refused address: 0.0.0.0 is an unspecified address, not dialled (allow it with --allow-host)")
		wantAnswers(t, p, refs["metricsURLs"], "metricsURLs: refused address: 0.0.0.0 is an unspecified address, not dialled (allow it with --allow-host)")
		wantAnswers(t, p, refs["brokerURL"], "brokerURL: refused address: 0.0.0.0 is an unspecified address, not dialled (allow it with --allow-host)")
		if n, m, c := promHits.Load(), podHits.Load(), brokerConns.Load(); n+m+c != 0 {
			t.Errorf("the refused upstreams got %d, %d requests and %d connections", n, m, c)
		}
	})
	t.Run("allowed, not quoted", func(t *testing.T) {
		p := startServe(t, "--stale-after", "1s", "--latency-interval", "100ms", "--allow-host", "0.0.0.0")
		wantAnswers(t, p, refs["prometheusURL"], "prometheus "+unspecified(prom.URL)+"/prometheus: HTTP 403 (not a Prometheus API answer)")
		wantAnswers(t, p, refs["metricsURLs"], "HTTP 403 (not a Prometheus API answer)", "/metrics: HTTP 403")
		wantAnswers(t, p, refs["brokerURL"], "brokerURL: not a Redis answer")
		if promHits.Load() == 0 || podHits.Load() == 0 || brokerConns.Load() == 0 {
			t.Errorf("--allow-host 0.0.0.0: the upstreams got %d, %d requests and %d connections, want some each", promHits.Load(), podHits.Load(), brokerConns.Load())
		}
	})
}

// check refuses such an address up front, before any source is read
// (exit 2, as bad metadata), and takes --allow-host like serve (also as
// MONTAGE_SCALER_ALLOW_HOST).
func TestCheckRefusesAnAddressUpFrontAndTakesAllowHost(t *testing.T) {
	prom, hits := hostileHTTP(t)
	file := filepath.Join(t.TempDir(), "md.yaml")
	writeFile(t, file, fmt.Sprintf("prometheusURL: %s\nlatencyQuery: p95\nreplicasQuery: replicas\n", strings.Replace(prom.URL, "127.0.0.1", "0.0.0.0", 1)))
	check := func(env map[string]string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append([]string{"check", "--metadata", file, "--timeout", "5s"}, args...),
			envFrom(&out, &errb, env))
		return code, out.String(), errb.String()
	}
	code, _, stderr := check(nil)
	if want := "prometheusURL http://0.0.0.0:"; code != exitUsage || !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, "refused address: 0.0.0.0 is an unspecified address, not dialled (allow it with --allow-host)") {
		t.Errorf("check: exit %d, stderr %q; want exit 2 and the refusal", code, stderr)
	}
	if hits.Load() != 0 {
		t.Fatalf("the refused Prometheus got %d requests", hits.Load())
	}
	for name, run := range map[string]func() (int, string, string){
		"flag": func() (int, string, string) { return check(nil, "--allow-host", "0.0.0.0") },
		"env": func() (int, string, string) {
			return check(map[string]string{"MONTAGE_SCALER_ALLOW_HOST": "169.254.20.10,0.0.0.0"})
		},
	} {
		code, stdout, stderr := run()
		if code != exitNoDecision || !strings.Contains(stdout, "HTTP 403 (not a Prometheus API answer)") || strings.Contains(stdout+stderr, "hunter2") {
			t.Errorf("check with --allow-host (%s): exit %d\nstdout %s\nstderr %s", name, code, stdout, stderr)
		}
	}
	if hits.Load() == 0 {
		t.Errorf("--allow-host 0.0.0.0: Prometheus got no request")
	}
	// A name that does not resolve here is the source's failure (exit 1,
	// the decision printed), not bad metadata.
	writeFile(t, file, "prometheusURL: http://prometheus.monitoring.invalid:9090\nlatencyQuery: p95\nreplicasQuery: replicas\n")
	if code, stdout, stderr := check(nil); code != exitNoDecision || !strings.Contains(stdout, "prometheus.monitoring.invalid") {
		t.Errorf("an unresolvable name: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	code, _, stderr = check(nil, "--allow-host", "prom internal")
	if want := `--allow-host "prom internal": not a host, host:port or CIDR`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("a bad --allow-host: exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

func envFrom(stdout, stderr io.Writer, vars map[string]string) env {
	return env{stdout: stdout, stderr: stderr, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
}
