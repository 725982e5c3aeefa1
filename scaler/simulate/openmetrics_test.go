package simulate

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorded runs weekday-evening with montage-scaler's timeline kept.
func recorded(t *testing.T) (*Report, Result) {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "traces")
	f, err := os.Open(filepath.Join(dir, "weekday-evening.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "scaledobject.yaml"))
	ics, _ := os.ReadFile(filepath.Join(dir, "weekday-evening.ics"))
	s, err := prepare(md, ics, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Record: MontageScaler})
	if err != nil {
		t.Fatal(err)
	}
	return r, byPolicy(t, r, MontageScaler)
}

func TestTheTimelineAddsUpToTheResult(t *testing.T) {
	r, res := recorded(t)
	for _, x := range r.Results {
		if (x.Timeline != nil) != (x.Policy == MontageScaler) {
			t.Errorf("%s: timeline kept = %v, want only for %s", x.Policy, x.Timeline != nil, MontageScaler)
		}
	}
	tl := res.Timeline
	end := r.End.Sub(r.Start).Seconds()
	if n := len(tl.Times); n != int(end/ScrapeInterval.Seconds())+1 || !tl.Times[n-1].Equal(r.End) {
		t.Fatalf("%d samples to %s, want one every 15 s to the end %s", n, tl.Times[n-1], r.End)
	}
	if got := tl.Processed[len(tl.Processed)-1]; got != res.Videos {
		t.Errorf("processed at the end %d, want the videos %d", got, res.Videos)
	}
	// The pods' lives, clipped to the trace, are its pod-hours.
	secs := 0.0
	for _, p := range tl.Pods {
		secs += math.Min(p.Gone, end) - math.Max(p.Created, 0)
	}
	if math.Abs(secs/3600-res.PodHours) > 1e-9 {
		t.Errorf("pods' lives %.6f h, pod-hours %.6f", secs/3600, res.PodHours)
	}
	changes := 0
	for k := 1; k < len(tl.Spec); k++ {
		if tl.Spec[k] != tl.Spec[k-1] {
			changes++
		}
	}
	if got := float64(changes) / (end / 3600); math.Abs(got-res.ScaleEventsPerHour) > 1e-9 {
		t.Errorf("spec.replicas changes %d (%.4f/h), scale events %.4f/h", changes, got, res.ScaleEventsPerHour)
	}
}

// The file is what promtool's backfill takes: one TYPE line per family
// before its samples, every series in time order, # EOF at the end.
func TestOpenMetricsIsOrderedPerSeriesAndEnds(t *testing.T) {
	_, res := recorded(t)
	var b bytes.Buffer
	if err := WriteOpenMetrics(&b, res.Timeline, Names{Namespace: "montage", Deployment: "montage", ScaledObject: "montage"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n# EOF\n")) {
		t.Fatal("no # EOF at the end")
	}
	families := map[string]bool{}
	last := map[string]int64{}
	current := ""
	sc := bufio.NewScanner(&b)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name := strings.Fields(f)[0]
			if families[name] {
				t.Fatalf("family %s twice", name)
			}
			families[name], current = true, name
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:strings.LastIndexByte(line[:i], ' ')]
		if !strings.HasPrefix(series, current) {
			t.Fatalf("%q outside its family (current %s)", series, current)
		}
		ts, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("%q: timestamp: %v", line, err)
		}
		if prev, ok := last[series]; ok && ts <= prev {
			t.Fatalf("%s: %d after %d", series, ts, prev)
		}
		last[series] = ts
	}
	for _, f := range []string{"kube_deployment_spec_replicas", "kube_deployment_status_replicas", "kube_deployment_status_replicas_available",
		"kube_replicaset_owner", "kube_pod_owner", "kube_pod_created", "kube_pod_status_ready_time", "http_request_duration_seconds",
		"montage_scaler_decision_replicas", "montage_scaler_component_replicas", "montage_scaler_celery_tasks_processed",
		"montage_scaler_celery_queued_tasks", "montage_scaler_celery_in_flight_tasks", "montage_scaler_celery_oldest_wait_seconds"} {
		if !families[f] {
			t.Errorf("no family %s", f)
		}
	}
}

func TestNamesComeFromTheScaledObject(t *testing.T) {
	so := []byte("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: so, namespace: ns}\nspec:\n  scaleTargetRef: {name: workers}\n")
	if got, want := NamesOf(so), (Names{Namespace: "ns", Deployment: "workers", ScaledObject: "so"}); got != want {
		t.Errorf("ScaledObject: %+v, want %+v", got, want)
	}
	if got, want := NamesOf([]byte("queues: video\n")), (Names{Namespace: "montage", Deployment: "montage", ScaledObject: "montage"}); got != want {
		t.Errorf("flat map: %+v, want %+v", got, want)
	}
	if n := podName("montage-x", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Unix(), 3); !strings.HasPrefix(n, "montage-x-") || len(n) != len("montage-x-")+5 {
		t.Errorf("pod name %q", n)
	}
}
