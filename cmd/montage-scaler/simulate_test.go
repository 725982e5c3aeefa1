package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readingLine is what a command prints first about the example traces'
// ScaledObject: which trigger it reads.
const readingLine = "montage-scaler simulate: reading spec.triggers[0] (external-push) of ScaledObject montage/montage\n"

func runSimulate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"simulate"}, args...), env{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }})
	return code, out.String(), errb.String()
}

func TestSimulatePrintsOneJSONObjectPerPolicy(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	code, out, stderr := runSimulate(t, "--trace", filepath.Join(dir, "live-session.csv"),
		"--metadata", filepath.Join(dir, "scaledobject.yaml"), "--calendar", filepath.Join(dir, "live-session.ics"), "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r["policy"].(string))
		for _, k := range []string{"podHours", "videos", "costPerVideo", "queueWaitP95Seconds", "queueWaitMaxSeconds",
			"latencyOverTargetMinutes", "scaleEventsPerHour", "readyAtEventStart"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q", r["policy"], k)
			}
		}
	}
	if got := strings.Join(ids, ","); got != "phase1-hpa,keda-builtin,montage-scaler" {
		t.Errorf("policies %s", got)
	}
}

func TestSimulateWritesTableCSVAndPlots(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	base := []string{"--trace", filepath.Join(dir, "weekend-batch.csv"), "--metadata", filepath.Join(dir, "scaledobject.yaml"),
		"--calendar", filepath.Join(dir, "weekend-batch.ics")}
	tmp := t.TempDir()
	svg, pngFile := filepath.Join(tmp, "p.svg"), filepath.Join(tmp, "p.png")
	code, out, stderr := runSimulate(t, append(base, "--plot", svg)...)
	if code != exitOK || !strings.Contains(out, "montage-scaler") || !strings.HasPrefix(out, "trace 2026-03-07T09:00:00Z to 2026-03-07T13:00:00Z") {
		t.Fatalf("table: exit %d\n%s%s", code, out, stderr)
	}
	if want := readingLine + "montage-scaler simulate: wrote " + svg + "\n"; stderr != want {
		t.Fatalf("stderr %q, want %q (the path written)", stderr, want)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg ")) || !bytes.Contains(b, []byte("<polyline")) {
		t.Errorf("svg: %v %.80q", err, b)
	}
	code, out, stderr = runSimulate(t, append(base, "--format", "csv", "--plot", pngFile)...)
	if code != exitOK || !strings.HasPrefix(out, "policy,podHours,videos,costPerVideo,") || strings.Count(out, "\n") != 4 {
		t.Fatalf("csv: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.HasSuffix(stderr, "montage-scaler simulate: wrote "+pngFile+"\n") {
		t.Fatalf("stderr %q lacks the PNG's path", stderr)
	}
	if b, err := os.ReadFile(pngFile); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("png: %v", err)
	}
}

func TestSimulateRefusesBadFlagsWithExitTwo(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	trace, md := filepath.Join(dir, "idle-night.csv"), filepath.Join(dir, "scaledobject.yaml")
	bad := tempFile(t, "md.yaml", "tasksPerReplica: five\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no trace", []string{"--metadata", md}, "montage-scaler simulate: --trace FILE.csv is required\n"},
		{"no metadata", []string{"--trace", trace}, "montage-scaler simulate: --metadata FILE is required\n"},
		{"an unknown format", []string{"--trace", trace, "--metadata", md, "--format", "xml"}, "montage-scaler simulate: --format \"xml\": want table, markdown, json or csv\n"},
		{"a plot that is neither svg nor png", []string{"--trace", trace, "--metadata", md, "--plot", "x.pdf"}, "montage-scaler simulate: --plot \"x.pdf\": want a file name ending in .svg or .png\n"},
		{"an unknown policy", []string{"--trace", trace, "--metadata", md, "--calendar", filepath.Join(dir, "idle-night.ics"), "--policies", "vpa"},
			readingLine + "montage-scaler simulate: policy \"vpa\": want one of [phase1-hpa keda-builtin montage-scaler montage-scaler-depth montage-scaler+forecast]\n"},
		{"a sync period the model cannot step", []string{"--trace", trace, "--metadata", md, "--hpa-sync-period", "1500ms"},
			"montage-scaler simulate: --hpa-sync-period 1.5s: want whole seconds (the model steps one second at a time)\n"},
		{"no sync at all", []string{"--trace", trace, "--metadata", md, "--hpa-sync-period", "0s"},
			"montage-scaler simulate: --hpa-sync-period 0s: want 1s to 10m0s\n"},
		{"a negative polling interval", []string{"--trace", trace, "--metadata", md, "--polling-interval", "-5s"},
			"montage-scaler simulate: --polling-interval -5s: want 0s to 1h0m0s\n"},
		{"a lag past ten minutes", []string{"--trace", trace, "--metadata", md, "--resource-metrics-lag", "11m"},
			"montage-scaler simulate: --resource-metrics-lag 11m0s: want 0s to 10m0s\n"},
		{"a negative jitter", []string{"--trace", trace, "--metadata", md, "--pod-startup-jitter", "-1s"},
			"montage-scaler simulate: --pod-startup-jitter -1s: want 0s to 1h0m0s\n"},
		{"a start-up past an hour", []string{"--trace", trace, "--metadata", md, "--pod-startup", "2h"},
			"montage-scaler simulate: --pod-startup 2h0m0s: want 0s to 1h0m0s\n"},
		{"no CPU request", []string{"--trace", trace, "--metadata", md, "--cpu-request", "0"},
			"montage-scaler simulate: --cpu-request 0: want above 0 to 64\n"},
		{"a negative task CPU", []string{"--trace", trace, "--metadata", md, "--task-cpu", "-0.1"},
			"montage-scaler simulate: --task-cpu -0.1: want from 0 to 64\n"},
		{"an idle CPU that is not a number", []string{"--trace", trace, "--metadata", md, "--idle-cpu", "NaN"},
			"montage-scaler simulate: --idle-cpu NaN: want from 0 to 64\n"},
		{"a memory base past 1000 %", []string{"--trace", trace, "--metadata", md, "--memory-base", "1001"},
			"montage-scaler simulate: --memory-base 1001: want from 0 to 1000\n"},
		{"a start-up that is not a duration", []string{"--trace", trace, "--metadata", md, "--pod-startups", "12s,soon"},
			"montage-scaler simulate: --pod-startups \"12s,soon\": \"soon\": want durations from 0s to 1h, such as 12.4s,14s\n"},
		{"a sample period the model cannot step", []string{"--trace", trace, "--metadata", md, "--sample-every", "2500ms"},
			"montage-scaler simulate: --sample-every 2.5s: want whole seconds from 1s to 24h\n"},
		{"a bad value, even with no address in the file", []string{"--trace", trace, "--metadata", bad},
			"montage-scaler simulate: --metadata " + bad + ": metadata \"tasksPerReplica\": bad value \"five\": a number from 0.001 to 1e+06\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runSimulate(t, tc.args...)
			if code != exitUsage || stderr != tc.want {
				t.Errorf("exit %d, stderr\n got %q\nwant %q", code, stderr, tc.want)
			}
		})
	}
}

func TestSimulateNeedsNoURLAndSaysWhenItHasNoCalendar(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	trace := filepath.Join(dir, "idle-night.csv")
	cases := []struct {
		name, md, stderr string
	}{
		{"the example ScaledObject, whose calendar variable is unset", filepath.Join(dir, "scaledobject.yaml"),
			readingLine + "montage-scaler simulate: no --calendar: simulating without calendar events (the metadata's feed is never fetched)\n"},
		{"a flat map with no URL at all", tempFile(t, "md.yaml", "tasksPerReplica: \"5\"\nmaxReplicas: \"8\"\n"),
			"montage-scaler simulate: no --calendar: simulating without calendar events\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runSimulate(t, "--trace", trace, "--metadata", tc.md, "--format", "csv")
			if code != exitOK || stderr != tc.stderr {
				t.Fatalf("exit %d, stderr\n got %q\nwant %q", code, stderr, tc.stderr)
			}
			if !strings.Contains(out, "\nmontage-scaler,") {
				t.Fatalf("no montage-scaler row:\n%s", out)
			}
		})
	}
}

// TestSimulateSaysWhichScaledObjectItSimulates: the table's heading names
// the ScaledObject around the trigger and its settings, never "the
// ScaledObject" alone.
func TestSimulateSaysWhichScaledObjectItSimulates(t *testing.T) {
	traces := filepath.Join("..", "..", "examples", "traces")
	for file, want := range map[string]string{
		"scaledobject.yaml": "ScaledObject: montage/montage, as the file sets it: replicas 1–8, cooldown 5m0s, polling 30s, external-push, cpu 65 %, memory 70 %\n",
		"md.yaml":           "ScaledObject: deploy/'s, around the flat metadata map: replicas 1–8, cooldown 5m0s, polling 30s, external-push, cpu 65 %, memory 70 %\n",
	} {
		code, out, stderr := runWith(t, nil, "simulate", "--trace", filepath.Join(traces, "idle-night.csv"), "--metadata", filepath.Join(traces, file))
		if code != exitOK || !strings.Contains(out, "\n"+want) {
			t.Errorf("%s: exit %d, want the line %q:\n%s%s", file, code, want, out, stderr)
		}
	}
}

// TestSimulateLoopFlagsDefaultToTheModel: the timing flags written out at
// their defaults print what the command prints without them; a polling
// interval that replaces the file's shows in the heading.
func TestSimulateLoopFlagsDefaultToTheModel(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	base := []string{"--trace", filepath.Join(dir, "live-session.csv"), "--metadata", filepath.Join(dir, "scaledobject.yaml"),
		"--calendar", filepath.Join(dir, "live-session.ics")}
	code, plain, stderr := runSimulate(t, base...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, written, stderr := runSimulate(t, append(base, "--hpa-sync-period", "15s", "--polling-interval", "0s", "--cached-metrics=false",
		"--resource-metrics-lag", "0s", "--pod-startup", "45s", "--pod-startup-jitter", "0s", "--seed", "0",
		"--cpu-request", "1", "--task-cpu", "0.12", "--idle-cpu", "0", "--memory-base", "35", "--memory-per-task", "5", "--sample-every", "1m")...)
	if code != exitOK || written != plain {
		t.Fatalf("exit %d, the defaults written out print\n%s\nwithout them\n%s%s", code, written, plain, stderr)
	}
	code, live, stderr := runSimulate(t, append(base, "--hpa-sync-period", "2s", "--polling-interval", "10s", "--resource-metrics-lag", "10s",
		"--pod-startup", "8s", "--pod-startup-jitter", "4s", "--seed", "1")...)
	if code != exitOK || !strings.Contains(live, ", polling 10s, external-push") || live == plain {
		t.Fatalf("exit %d, the live loop's timing prints\n%s%s", code, live, stderr)
	}
}

// TestSimulateSamples: --samples writes each policy's state every
// --sample-every from the trace's start; its replicas reach the peak the
// report prints, and the pod flags move the cpu trigger (an idle CPU at
// the target holds a replica that the queue alone would release).
func TestSimulateSamples(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	samples := filepath.Join(t.TempDir(), "samples.csv")
	base := []string{"--trace", filepath.Join(dir, "weekend-batch.csv"), "--metadata", filepath.Join(dir, "scaledobject.yaml"),
		"--policies", "montage-scaler", "--format", "json"}
	code, out, stderr := runSimulate(t, append(base, "--samples", samples, "--sample-every", "5s")...)
	if code != exitOK || !strings.HasSuffix(stderr, "montage-scaler simulate: wrote "+samples+"\n") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	var rep []struct {
		PeakReplicas int `json:"peakReplicas"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep) != 1 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	b, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "policy,time,seconds,replicas,ready,queued,running,oldest_wait_seconds" {
		t.Fatalf("header %q", lines[0])
	}
	// weekend-batch: 480 steps of 30 s, one sample every 5 s.
	if got, want := len(lines)-1, 480*30/5; got != want {
		t.Fatalf("%d samples, want %d", got, want)
	}
	peak := 0
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[0] != "montage-scaler" || f[2] != strconv.Itoa(5*i) {
			t.Fatalf("sample %d: %q, want montage-scaler at %d s", i, l, 5*i)
		}
		r, err := strconv.Atoi(f[3])
		if err != nil {
			t.Fatalf("sample %d: %q: %v", i, l, err)
		}
		peak = max(peak, r)
	}
	if peak != rep[0].PeakReplicas || peak < 2 {
		t.Fatalf("the samples peak at %d replicas, the report at %d", peak, rep[0].PeakReplicas)
	}

	// The same trace with an idle pod at 0.7 of its 1-core request (over
	// cpu's 65 %): the cpu trigger never lets the Deployment back to 1.
	code, hot, stderr := runSimulate(t, append(base, "--idle-cpu", "0.7", "--samples", samples)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err = os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(string(b)), "\n")
	last := strings.Split(lines[len(lines)-1], ",")
	if hot == out || last[3] == "1" {
		t.Fatalf("an idle CPU over the target changed nothing: last sample %q\n%s", lines[len(lines)-1], hot)
	}
}

// TestSimulatePodStartups: the listed delays replace --pod-startup for the
// first pods, in order: the default's own value listed changes nothing, and
// pods that start at once shorten the weekend batch's waits.
func TestSimulatePodStartups(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	base := []string{"--trace", filepath.Join(dir, "weekend-batch.csv"), "--metadata", filepath.Join(dir, "scaledobject.yaml"),
		"--policies", "montage-scaler", "--format", "csv"}
	code, plain, stderr := runSimulate(t, base...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, same, stderr := runSimulate(t, append(base, "--pod-startups", "45s,45s,45s,45s,45s,45s,45s,45s,45s,45s")...)
	if code != exitOK || same != plain {
		t.Fatalf("exit %d: the default delay listed prints\n%s\nnot\n%s%s", code, same, plain, stderr)
	}
	code, fast, stderr := runSimulate(t, append(base, "--pod-startups", "0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s,0s")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	waitP95 := func(out string) float64 {
		f := strings.Split(strings.Split(out, "\n")[1], ",")
		v, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		return v
	}
	if waitP95(fast) >= waitP95(plain) {
		t.Fatalf("pods that start at once wait P95 %g s, with 45 s %g s: want less", waitP95(fast), waitP95(plain))
	}
}
