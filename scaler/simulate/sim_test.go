package simulate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/metafile"
	"github.com/montage/montage-scaler/scaler/registry/registrytest"
)

var examples = []string{"weekday-evening", "weekend-batch", "live-session", "idle-night"}

// example runs every policy on one of examples/traces/.
func example(t testing.TB, name string) *Report {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "traces")
	f, err := os.Open(filepath.Join(dir, name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "scaledobject.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ics, err := os.ReadFile(filepath.Join(dir, name+".ics"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := prepare(md, ics, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func byPolicy(t *testing.T, r *Report, id string) Result {
	t.Helper()
	for _, x := range r.Results {
		if x.Policy == id {
			return x
		}
	}
	t.Fatalf("no result for %s", id)
	return Result{}
}

func TestEveryTaskThatArrivesIsFinishedOrStillQueued(t *testing.T) {
	for _, name := range examples {
		r := example(t, name)
		for _, x := range r.Results {
			t.Run(name+" under "+x.Policy, func(t *testing.T) {
				if x.Arrived == 0 {
					t.Fatal("no task arrived")
				}
				if x.Arrived != x.Videos+x.QueuedAtEnd+x.RunningAtEnd {
					t.Errorf("arrived %d != finished %d + queued %d + running %d", x.Arrived, x.Videos, x.QueuedAtEnd, x.RunningAtEnd)
				}
			})
		}
	}
}

func TestTheSameInputGivesTheSameReport(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := WriteJSON(&a, example(t, name)); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&b, example(t, name)); err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Errorf("two runs differ:\n%s\n%s", a.String(), b.String())
			}
		})
	}
}

func TestMontageScalerIsReadyWhenACalendarEventStarts(t *testing.T) {
	for _, name := range []string{"weekday-evening", "weekend-batch", "live-session"} {
		t.Run(name, func(t *testing.T) {
			r := example(t, name)
			if len(r.Events) == 0 {
				t.Fatal("the example has no calendar event in its span")
			}
			got := byPolicy(t, r, MontageScaler).ReadyAtEventStart
			if got == nil || *got != 1 {
				t.Errorf("readyAtEventStart = %v, want 1", got)
			}
			// keda-builtin's cron window opens at the event's start: pods are
			// still starting when it begins.
			if got := byPolicy(t, r, KEDABuiltin).ReadyAtEventStart; got == nil || *got != 0 {
				t.Errorf("keda-builtin readyAtEventStart = %v, want 0", got)
			}
		})
	}
	if got := byPolicy(t, example(t, "idle-night"), MontageScaler).ReadyAtEventStart; got != nil {
		t.Errorf("idle night readyAtEventStart = %v, want null (no event begins in the trace)", *got)
	}
}

func TestMontageScalerNeverScalesBelowTheInFlightWork(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			x := byPolicy(t, example(t, name), MontageScaler)
			if x.ScaleDownsBelowInFlight != 0 {
				t.Errorf("%d scale-downs below the running tasks", x.ScaleDownsBelowInFlight)
			}
		})
	}
}

// A hand-checked case: one 10 s task at 00:00:30 with every Deployment at
// zero. montage-scaler's push trigger wakes it at the next second (31 s) and
// the pod serves 45 s later; keda-builtin waits for the 60 s poll.
func TestAWakeFromZeroCostsThePodStartUpPlusTheTriggersDelay(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("time,tasks,requests,service_seconds\n2026-03-02T00:00:00Z,1,0,10\n2026-03-02T00:01:00Z,0,0,10\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := prepare([]byte("brokerURL: redis://broker:6379/0\nminReplicas: \"0\"\nmaxReplicas: \"4\"\n"), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{Phase1HPA: 0, KEDABuiltin: 75, MontageScaler: 46}
	for _, x := range r.Results {
		if x.QueueWaitMaxSeconds != want[x.Policy] || x.Videos != 1 {
			t.Errorf("%s: wait %g s, %d videos; want %g s and 1", x.Policy, x.QueueWaitMaxSeconds, x.Videos, want[x.Policy])
		}
	}
}

func TestPrepareNamesWhatIsMissing(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("time,tasks,requests\n2026-03-02T00:00:00Z,1,0\n2026-03-02T00:01:00Z,0,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, md, want string }{
		{"no component at all", "minReplicas: \"1\"\n",
			"the metadata configures no component to simulate: set a celery key (tasksPerReplica, queues, brokerURL), a latency key (latencyTarget, latencyQuery, metricsURLs), or give --calendar"},
		{"a bad tasksPerReplica", "tasksPerReplica: \"0\"\n", `metadata "tasksPerReplica": bad value "0": a number from 0.001 to 1e+06`},
		{"a ScaledObject with a bad selectPolicy", "kind: ScaledObject\nspec:\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          selectPolicy: Fastest\n  triggers:\n  - type: external\n    metadata:\n      brokerURL: redis://b:6379\n",
			`scaledObject: spec.advanced.horizontalPodAutoscalerConfig.behavior: hpa: scaleUp.selectPolicy "Fastest": want Max, Min or Disabled`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := prepare([]byte(tc.md), nil, tr)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || (!strings.HasSuffix(tc.want, ": ") && err.Error() != tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPrepareNeedsNoAddress(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("time,tasks,requests\n2026-03-02T00:00:00Z,1,0\n2026-03-02T00:01:00Z,0,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, md   string
		ics        []byte
		noCalendar bool
		note       string
	}{
		{"a flat map without brokerURL", "tasksPerReplica: \"5\"\n", nil, true, "no --calendar: simulating without calendar events"},
		{"a calendar only named by an unset variable, no feed file", "tasksPerReplica: \"5\"\ncalendarURLFromEnv: UNSET_VARIABLE\n", nil, true,
			"no --calendar: simulating without calendar events (the metadata's feed is never fetched)"},
		{"a feed file beside metadata without calendar keys", "tasksPerReplica: \"5\"\n", []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := prepare([]byte(tc.md), tc.ics, tr)
			if err != nil {
				t.Fatal(err)
			}
			if s.NoCalendar != tc.noCalendar || (s.Calendar == nil) != tc.noCalendar {
				t.Fatalf("NoCalendar %t, calendar %+v", s.NoCalendar, s.Calendar)
			}
			if tc.noCalendar && s.NoCalendarNote() != tc.note {
				t.Fatalf("note %q, want %q", s.NoCalendarNote(), tc.note)
			}
		})
	}
}

// prepare is Prepare on the bytes of a metadata file.
func prepare(md, ics []byte, tr Trace) (*Setup, error) {
	f, err := metafile.Parse(md, "")
	if err != nil {
		return nil, err
	}
	return Prepare(registrytest.Table(), f, ics, tr)
}

func BenchmarkReplayAWeekdayForEveryPolicy(b *testing.B) {
	for b.Loop() {
		example(b, "weekday-evening")
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/simulated-day")
}

func TestQueueWaitTargetScalesWhereTheDepthAskFallsShort(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "traces")
	f, err := os.Open(filepath.Join(dir, "long-renders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "queue-wait.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(md string) Result {
		t.Helper()
		s, err := prepare([]byte(md), nil, tr)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Policies: []string{MontageScaler}})
		if err != nil {
			t.Fatal(err)
		}
		if r.QueueWaitTarget != time.Minute {
			t.Errorf("the report counts against %s, want 60s", r.QueueWaitTarget)
		}
		return r.Results[0]
	}
	// The example without its queueWaitTarget line asks by depth only.
	depthOnly, _, ok := strings.Cut(string(md), "queueWaitTarget: 60s")
	if !ok {
		t.Fatal("queue-wait.yaml sets no queueWaitTarget: 60s")
	}
	depth, wait := run(depthOnly), run(string(md))
	t.Logf("depth only: %.3f pod-hours, wait max %.1f s, %.1f min over 60 s", depth.PodHours, depth.QueueWaitMaxSeconds, depth.QueueWaitOverTargetMinutes)
	t.Logf("target 60s: %.3f pod-hours, wait max %.1f s, %.1f min over 60 s", wait.PodHours, wait.QueueWaitMaxSeconds, wait.QueueWaitOverTargetMinutes)
	if !(wait.QueueWaitOverTargetMinutes < depth.QueueWaitOverTargetMinutes && wait.QueueWaitMaxSeconds < depth.QueueWaitMaxSeconds) {
		t.Errorf("the target did not cut the waits over it")
	}
	if wait.PodHours <= depth.PodHours {
		t.Errorf("pod-hours %.3f with the target, %.3f without: want a cost", wait.PodHours, depth.PodHours)
	}
}
