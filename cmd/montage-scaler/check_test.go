package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// runMainEnv makes the test binary run the command itself (see TestMain),
// so a test sees what a process prints, go-redis's own logger included.
const runMainEnv = "MONTAGE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runProcess runs montage-scaler ARGS as a process of its own.
func runProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// prefixRE is a word and its colon, as an error's prefix.
var prefixRE = regexp.MustCompile(`[A-Za-z][\w-]*: `)

// doubledPrefix returns a prefix said twice in a row in s, as
// "celery: celery: ", or "".
func doubledPrefix(s string) string {
	for _, loc := range prefixRE.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		standalone := loc[0] == 0 || !strings.ContainsAny(s[loc[0]-1:loc[0]], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
		if standalone && strings.HasPrefix(s[loc[1]:], w) {
			return w + w
		}
	}
	return ""
}

func TestCheckOnAClosedBrokerPortPrintsOnlyItsOwnMessage(t *testing.T) {
	md := tempFile(t, "md.yaml", "brokerURL: redis://127.0.0.1:1/0\n")
	code, out, stderr := runProcess(t, "check", "--metadata", md, "--timeout", "3s")
	if code != exitNoDecision {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, stderr)
	}
	if stderr != "" {
		t.Fatalf("stderr is not empty (go-redis's pool lines?):\n%s", stderr)
	}
	want := `"error": "celery: poll redis://127.0.0.1:1/0: dial tcp 127.0.0.1:1: connect: connection refused"`
	if !strings.Contains(out, want) || doubledPrefix(out) != "" {
		t.Fatalf("output lacks %s or doubles a prefix:\n%s", want, out)
	}
}

func TestCheckEndsWithTheUnknownKeyAndStrictRefusesIt(t *testing.T) {
	rs := servers.StartRedis(t)
	md := tempFile(t, "md.yaml", "brokerURL: "+rs.URL(0)+"\ntasksPerReplca: \"2\"\n")
	warning := `warning: unknown key "tasksPerReplca" (did you mean "tasksPerReplica"?)` + "\n"

	code, out, stderr := runWith(t, nil, "check", "--metadata", md)
	if code != exitOK || !strings.HasSuffix(stderr, warning) {
		t.Fatalf("exit %d, stderr %q; want 0 ending with %q", code, stderr, warning)
	}
	if !strings.Contains(out, `"unknown key \"tasksPerReplca\" (did you mean \"tasksPerReplica\"?)"`) {
		t.Fatalf("the JSON's warnings lack the key:\n%s", out)
	}

	code, out, stderr = runWith(t, nil, "check", "--metadata", md, "--strict")
	if want := warning + "montage-scaler check: --strict: 1 unknown metadata key(s)\n"; code != exitUsage || out != "" || stderr != want {
		t.Fatalf("--strict: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, out, stderr, want)
	}
}

func TestCheckRefusesTwoExternalTriggersUnlessOneIsPicked(t *testing.T) {
	rs := servers.StartRedis(t)
	so := tempFile(t, "so.yaml", `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: montage, namespace: montage}
spec:
  scaleTargetRef: {name: montage}
  triggers:
    - type: external-push
      name: queue
      metadata: {brokerURL: "`+rs.URL(0)+`", tasksPerReplica: "5"}
    - type: external
      name: api
      metadata: {prometheusURL: "http://127.0.0.1:1", latencyQuery: "x"}
`)
	code, out, stderr := runWith(t, nil, "check", "--metadata", so)
	want := `montage-scaler check: --metadata ` + so + `: metadata file: ScaledObject "montage" has 2 external triggers: spec.triggers[0] "queue" (external-push), spec.triggers[1] "api" (external); pick one with --trigger N (its index in spec.triggers) or --trigger NAME` + "\n"
	if code != exitUsage || out != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q\nstderr %q\nwant 2 and %q", code, out, stderr, want)
	}
	for _, pick := range []string{"queue", "0"} {
		code, out, stderr = runWith(t, nil, "check", "--metadata", so, "--trigger", pick)
		if code != exitOK || !strings.Contains(out, `"name": "celery"`) ||
			stderr != "montage-scaler check: reading spec.triggers[0] \"queue\" (external-push) of ScaledObject montage/montage\n" {
			t.Fatalf("--trigger %s: exit %d\n%s%s", pick, code, out, stderr)
		}
	}
}

func TestCheckLogsNameAnUnnamedScaledObject(t *testing.T) {
	md := tempFile(t, "md.yaml", "prometheusURL: http://127.0.0.1:1\nlatencyQuery: x\n")
	code, out, stderr := runWith(t, nil, "check", "--metadata", md, "--current-replicas", "2", "--timeout", "3s")
	if code != exitNoDecision || !strings.Contains(stderr, "latency read failed") {
		t.Fatalf("exit %d, want 1 with the latency read's failure logged\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "scaledObject=(unnamed)") || strings.Contains(stderr, "scaledObject=/") {
		t.Fatalf("logs must name the ScaledObject, never \"/\":\n%s", stderr)
	}
	if d := doubledPrefix(out + stderr); d != "" {
		t.Fatalf("%q is said twice:\n%s%s", d, out, stderr)
	}
	// Named, the logs say so.
	_, _, stderr = runWith(t, nil, "check", "--metadata", md, "--current-replicas", "2", "--timeout", "3s", "--namespace", "prod", "--name", "api")
	if !strings.Contains(stderr, "scaledObject=prod/api") {
		t.Fatalf("--namespace prod --name api: logs\n%s", stderr)
	}
}

func TestDoubledPrefixFindsARepeatedPrefix(t *testing.T) {
	for s, want := range map[string]string{
		"celery: celery: poll x":                      "celery: celery: ",
		"montage-scaler simulate: simulate: policy x": "simulate: simulate: ",
		"celery: poll x: dial tcp: refused":           "",
		"latency: last good reading: query: 503":      "",
	} {
		if got := doubledPrefix(s); got != want {
			t.Errorf("doubledPrefix(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestCheckAgainstTheScalersOwnPortSaysSo(t *testing.T) {
	p := startServe(t)
	md := tempFile(t, "md.yaml", "prometheusURL: http://"+p.grpcAddr+"\nlatencyQuery: x\n")
	code, out, stderr := runWith(t, nil, "check", "--metadata", md, "--current-replicas", "1", "--timeout", "5s")
	want := "this address speaks HTTP/2 gRPC, not Prometheus's HTTP API — is it the scaler's own port?"
	if code != exitNoDecision || !strings.Contains(out, want) || strings.Contains(out, "malformed HTTP response") {
		t.Fatalf("exit %d, want 1 and %q\n%s%s", code, want, out, stderr)
	}
}

func TestCheckWaitWindowTakesTheSecondScrape(t *testing.T) {
	bin := servers.BuildHistProc(t)
	api := servers.StartHistProc(t, bin, "http_request_duration_seconds", []float64{0.05, 0.1, 0.25, 0.5, 1})
	// Requests keep coming while check runs, as an API's do.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				api.Observe(t, 0.3, 5)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	md := tempFile(t, "md.yaml", "metricsURLs: "+api.MetricsURL+"\nlatencyHistogram: http_request_duration_seconds\nlatencyWindow: 2s\nlatencyTimeout: 2s\n")
	firstScrape := "first scrape: the P95 over latencyWindow 2s needs a second one"

	code, out, stderr := runWith(t, nil, "check", "--metadata", md, "--current-replicas", "2")
	note := "note: a direct-scrape latency needs two scrapes latencyWindow (2s) apart and check took one: give --wait-window, or ask a running serve (explain)\n"
	if code != exitOK || !strings.Contains(out, firstScrape) || !strings.HasSuffix(stderr, note) {
		t.Fatalf("one scrape: exit %d, want the first-scrape warning and the note\n%s%s", code, out, stderr)
	}

	code, out, stderr = runWith(t, nil, "check", "--metadata", md, "--current-replicas", "2", "--wait-window")
	if code != exitOK || strings.Contains(out, firstScrape) || strings.Contains(out, `"p95Seconds": null`) || strings.Contains(stderr, "note:") {
		t.Fatalf("--wait-window: exit %d, want a P95 from two scrapes\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, `"desiredReplicas": `) || !strings.Contains(out, "from a direct scrape of 1 pod(s) over 2s is above target 80ms") {
		t.Fatalf("--wait-window: the P95 of 0.3 s should be above target:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--at", "2026-12-05T18:00:00Z"}, "montage-scaler check: --wait-window waits on the real clock: drop --at\n"},
	} {
		code, _, stderr := runWith(t, nil, append([]string{"check", "--metadata", md, "--wait-window", "--current-replicas", "2"}, tc.args...)...)
		if code != exitUsage || stderr != tc.want {
			t.Errorf("%v: exit %d, stderr %q; want 2, %q", tc.args, code, stderr, tc.want)
		}
	}
	noScrape := tempFile(t, "md.yaml", "brokerURL: redis://127.0.0.1:1/0\n")
	want := "montage-scaler check: --wait-window: only a direct-scrape latency (metricsURLs) needs a second read; the metadata has none\n"
	if code, _, stderr := runWith(t, nil, "check", "--metadata", noScrape, "--wait-window"); code != exitUsage || stderr != want {
		t.Errorf("no scrape: exit %d, stderr %q; want 2, %q", code, stderr, want)
	}
}

// TestNoMessageSaysAPrefixTwice runs failing commands whose messages pass
// through several packages and holds each to one prefix per layer.
func TestNoMessageSaysAPrefixTwice(t *testing.T) {
	dir := t.TempDir()
	feed := tempFile(t, "cal.yaml", "calendarURL: http://127.0.0.1:1/basic.ics\n")
	private := tempFile(t, "private.yaml", "calendarURL: http://10.0.0.1/basic.ics\nbrokerURL: redis://127.0.0.1:1/0\n")
	traces := filepath.Join("..", "..", "examples", "traces")
	for _, args := range [][]string{
		{"calendar", "--metadata", feed, "--calendar-allow-private"},
		{"check", "--metadata", private},
		{"check", "--metadata", tempFile(t, "down.yaml", "brokerURL: redis://127.0.0.1:1/0\n"), "--timeout", "2s"},
		{"simulate", "--trace", filepath.Join(traces, "idle-night.csv"), "--metadata", filepath.Join(traces, "md.yaml"), "--policies", "vpa"},
		{"forecast", "--metadata", filepath.Join(traces, "md.yaml"), "--namespace", "a", "--name", "b"},
		{"report", "--prometheus", "http://127.0.0.1:1", "--until", "2026-03-03T00:00:00Z"},
		{"explain", "--addr", "127.0.0.1:1", "--metadata", feed, "--timeout", "1s"},
		{"calendar", "--metadata", filepath.Join(dir, "missing.yaml")},
	} {
		code, out, stderr := runWith(t, nil, args...)
		if code == exitOK {
			t.Errorf("%v: exit 0, want a failure", args)
		}
		if d := doubledPrefix(out + stderr); d != "" {
			t.Errorf("%v: %q is said twice:\n%s%s", args, d, out, stderr)
		}
	}
}
