package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

func runReport(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"report"}, args...), env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
	return code, out.String(), errb.String()
}

func TestReportRefusesBadFlagsWithExitTwo(t *testing.T) {
	p := []string{"--prometheus", "http://127.0.0.1:9"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no Prometheus", nil, "montage-scaler report: --prometheus URL is required\n"},
		{"a URL without a scheme", []string{"--prometheus", "prometheus:9090"},
			"montage-scaler report: --prometheus \"prometheus:9090\": want http(s)://host[:port][/path], the server's base URL, like http://prometheus:9090\n"},
		{"an address shown as it is: only credentials are hidden", []string{"--prometheus", "127.0.0.1:9091"},
			"montage-scaler report: --prometheus \"127.0.0.1:9091\": want http(s)://host[:port][/path], the server's base URL, like http://127.0.0.1:9091\n"},
		{"a password is hidden", []string{"--prometheus", "admin:s3cret@127.0.0.1:9091"},
			"montage-scaler report: --prometheus \"admin:xxxxx@127.0.0.1:9091\": want http(s)://host[:port][/path], the server's base URL, like http://admin:xxxxx@127.0.0.1:9091\n"},
		{"a scheme that is not HTTP", []string{"--prometheus", "ftp://127.0.0.1:9091"},
			"montage-scaler report: --prometheus \"ftp://127.0.0.1:9091\": want http(s)://host[:port][/path], the server's base URL\n"},
		{"a namespace that is no Kubernetes name", append(p, "--namespace", `Mon"tage`),
			"montage-scaler report: --namespace \"Mon\\\"tage\": want a Kubernetes name (lowercase letters, digits, '-', '.')\n"},
		{"an unknown format", append(p, "--format", "csv"), "montage-scaler report: --format \"csv\": want table or json\n"},
		{"a plot that is neither svg nor png", append(p, "--plot", "x.pdf"),
			"montage-scaler report: --plot \"x.pdf\": want a file name ending in .svg or .png\n"},
		{"a window too short", append(p, "--since", "1m"),
			"montage-scaler report: --since 1m0s: want whole seconds from 5m to 2160h (90 days)\n"},
		{"no latency target", append(p, "--latency-target", "0s"), "montage-scaler report: --latency-target 0s: want above 0\n"},
		{"an end that is no time", append(p, "--until", "yesterday"),
			"montage-scaler report: --until \"yesterday\": want RFC3339, like 2026-12-05T18:00:00+01:00\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runReport(t, tc.args...)
			if code != exitUsage || !strings.HasSuffix(stderr, tc.want) {
				t.Errorf("exit %d, stderr\n got %q\nwant %q", code, stderr, tc.want)
			}
		})
	}
}

func TestReportWithPrometheusUnreachableExitsOne(t *testing.T) {
	addr := servers.RefusedAddr(t)
	code, out, stderr := runReport(t, "--prometheus", "http://"+addr)
	if code != exitNoDecision || out != "" ||
		!strings.HasPrefix(stderr, "montage-scaler report: prometheus http://"+addr+": unreachable: ") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// A real Prometheus with no data: every needed series is named, with who
// exports it.
func TestReportNamesEveryMissingSeriesAndItsExporter(t *testing.T) {
	p := servers.StartPrometheus(t, nil, time.Second)
	code, out, stderr := runReport(t, "--prometheus", p.URL, "--until", "2026-03-03T00:00:00Z", "--plot", t.TempDir()+"/x.png")
	want := "montage-scaler report: prometheus " + p.URL + ` has no sample from 2026-03-02T00:00:00Z to 2026-03-03T00:00:00Z of:
  kube_deployment_spec_replicas{namespace="montage", deployment="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  kube_replicaset_owner{namespace="montage", owner_kind="Deployment", owner_name="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  kube_pod_owner{namespace="montage", owner_kind="ReplicaSet"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  kube_pod_created{namespace="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  kube_pod_status_ready_time{namespace="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  http_request_duration_seconds_count{namespace="montage"}: exported by the Montage API's /metrics: is the PodMonitor montage of deploy/monitoring installed?
  montage_scaler_celery_tasks_processed_total{namespace="montage", scaledobject="montage"}: exported by montage-scaler serve from the Celery workers' heartbeats: is the ServiceMonitor montage-scaler installed, and are the workers' heartbeats on?
  montage_scaler_decision_replicas{namespace="montage", scaledobject="montage"}: exported by montage-scaler serve: is the ServiceMonitor montage-scaler of deploy/monitoring installed?
  kube_deployment_status_replicas_available{namespace="montage", deployment="montage"}: exported by kube-state-metrics v2: is it installed, and does Prometheus scrape it?
  http_request_duration_seconds_bucket{namespace="montage"}: exported by the Montage API's /metrics: is the PodMonitor montage of deploy/monitoring installed?
`
	if code != exitNoDecision || out != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, out, stderr, want)
	}
}

// TestReportAgainstTheScalersOwnPortSaysSo: report pointed at the scaler's
// gRPC port asks what check and explain ask (wrongport's wording).
func TestReportAgainstTheScalersOwnPortSaysSo(t *testing.T) {
	p := startServe(t)
	code, out, stderr := runReport(t, "--prometheus", "http://"+p.grpcAddr, "--until", "2026-03-03T00:00:00Z")
	want := "montage-scaler report: prometheus http://" + p.grpcAddr + ": this address speaks HTTP/2 gRPC, not Prometheus's HTTP API — is it the scaler's own port?\n"
	if code != exitNoDecision || out != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q\nstderr %q\nwant 1 and %q", code, out, stderr, want)
	}
}

// TestReportWithoutUntilSaysTheWindowEndsNow: a Prometheus holding only an
// older day (as after a backfill) leads to --until.
func TestReportWithoutUntilSaysTheWindowEndsNow(t *testing.T) {
	p := servers.StartPrometheus(t, nil, time.Second)
	code, _, stderr := runReport(t, "--prometheus", p.URL)
	if want := "(the window ends now, --until's default: for a day backfilled or past, give --until its end, as make report-demo does)\n"; code != exitNoDecision || !strings.HasSuffix(stderr, want) {
		t.Fatalf("exit %d, stderr\n%s\nwant 1, ending with %q", code, stderr, want)
	}
	if _, _, stderr = runReport(t, "--prometheus", p.URL, "--until", "2026-03-03T00:00:00Z"); strings.Contains(stderr, "the window ends now") {
		t.Fatalf("with --until the hint is noise:\n%s", stderr)
	}
}
