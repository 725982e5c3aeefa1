package simulate

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
)

// The proofs on the multi-week example traces, with their metadata
// (examples/traces/md.yaml: celery, 5 tasks a replica, 1–8 replicas, the
// forecast in dry-run, weeks in Europe/Berlin). Both cross the last Sunday
// of March.
var exampleTraces = []string{"weeks.csv", "noisy-weeks.csv"}

// exampleReplay is exampleTrace's dry-run replay (the history montage-scaler
// records alone, and both policies' runs), once per trace for every test.
func exampleReplay(t *testing.T, name string) (Trace, *Setup, *ForecastReplay) {
	t.Helper()
	replays.mu.Lock()
	defer replays.mu.Unlock()
	tr, s := exampleTrace(t, name)
	if r, ok := replays.m[name]; ok {
		return tr, s, r
	}
	r, err := ReplayForecast(tr, s, DefaultWorkload())
	if err != nil {
		t.Fatal(err)
	}
	replays.m[name] = r
	return tr, s, r
}

var replays = struct {
	mu sync.Mutex
	m  map[string]*ForecastReplay
}{m: map[string]*ForecastReplay{}}

func exampleTrace(t *testing.T, name string) (Trace, *Setup) {
	t.Helper()
	f, err := os.Open("../../examples/traces/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../examples/traces/md.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := prepare(md, nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	return tr, s
}

// peakWindow is one day's part of the weekly peak: its slots and the load
// that arrived in them.
type peakWindow struct {
	day     time.Time
	slots   []time.Time
	perMin  float64       // tasks a minute
	service time.Duration // mean service time of those tasks
}

// peakWindows groups the weekly peak's slots of tr by local day.
func peakWindows(tr Trace, p *WeeklyPeak) []peakWindow {
	var out []peakWindow
	var tasks, service float64
	flush := func() {
		if n := len(out); n > 0 && tasks > 0 {
			w := &out[n-1]
			w.perMin = tasks / (float64(len(w.slots)) * forecast.Bucket.Minutes())
			w.service = time.Duration(service / tasks * float64(time.Second))
		}
		tasks, service = 0, 0
	}
	for _, r := range tr.Rows {
		if !p.Holds(r.Start) {
			continue
		}
		lt := r.Start.In(p.Zone)
		day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, p.Zone)
		if len(out) == 0 || !out[len(out)-1].day.Equal(day) {
			flush()
			out = append(out, peakWindow{day: day})
		}
		w := &out[len(out)-1]
		if b := forecast.BucketOf(r.Start); len(w.slots) == 0 || !w.slots[len(w.slots)-1].Equal(b) {
			w.slots = append(w.slots, b)
		}
		tasks += float64(r.Tasks)
		service += float64(r.Tasks) * r.Service.Seconds()
	}
	flush()
	return out
}

// settledReplicas is the reference: the replicas montage-scaler (reactive
// only, the trace's ScaledObject) settles on when perMin tasks a minute of
// service arrive at a drained queue: two hours of that load, replicas in
// the last half hour (the most frequent).
func settledReplicas(t *testing.T, s *Setup, perMin float64, service time.Duration) int32 {
	t.Helper()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	tr := Trace{Start: start, Step: time.Minute}
	carry := 0.0
	for m := range 120 {
		exact := perMin + carry
		n := math.Floor(exact)
		carry = exact - n
		tr.Rows = append(tr.Rows, Row{Start: start.Add(time.Duration(m) * time.Minute), Tasks: int(n), Requests: 850, Service: service})
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Policies: []string{MontageScaler}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[int32]int{}
	var mode int32
	for _, x := range r.Results[0].Samples[90:] {
		count[x.Replicas]++
		if count[x.Replicas] > count[mode] {
			mode = x.Replicas
		}
	}
	return mode
}

// The estimate at a day's peak is the largest of the estimates over its
// peak slots: the replicas the forecast holds when the rush arrives. A day
// whose rush did not come (creators take days off) is no peak to check.
func TestOnTheExampleTracesTheDryRunEstimateAtTheWeeklyPeakIsWhatAReactiveScalerSettlesOn(t *testing.T) {
	for _, name := range exampleTraces {
		t.Run(name, func(t *testing.T) {
			// Dry-run: the history is what montage-scaler alone recorded.
			tr, s, replay := exampleReplay(t, name)
			p, maxReplicas := replay.Params, *s.Spec.Policy.Max
			windows := peakWindows(tr, replay.Peak)
			busiest := 0.0
			for _, w := range windows {
				busiest = max(busiest, w.perMin)
			}
			refs := map[string]int32{}
			checked, half := 0, 0
			for _, w := range windows {
				if w.perMin < busiest/4 {
					t.Logf("%s: %.1f tasks/min: the rush did not come", w.day.Format("Mon Jan 2"), w.perMin)
					continue
				}
				key := fmt.Sprintf("%.1f/%s", w.perMin, w.service.Round(time.Second))
				ref, ok := refs[key]
				if !ok {
					ref = settledReplicas(t, s, w.perMin, w.service)
					refs[key] = ref
				}
				var got []string
				top := 0.0
				for _, slot := range w.slots {
					est, _, ok := replay.History.Estimate(slot, p)
					if !ok {
						t.Errorf("%s: no estimate", slot.In(p.Zone).Format("Mon Jan 2 15:04 MST"))
					}
					top = max(top, est)
					got = append(got, fmt.Sprintf("%s %.2f", slot.In(p.Zone).Format("15:04"), est))
				}
				t.Logf("%s: %.1f tasks/min of %s, the reactive scaler settles on %d; the forecast expects %.2f (%s)",
					w.day.Format("Mon Jan 2"), w.perMin, w.service.Round(time.Second), ref, top, strings.Join(got, ", "))
				if d := math.Ceil(top) - float64(ref); math.Abs(d) > 1 {
					t.Errorf("%s: the forecast expects %.2f (%g replicas) at the peak, the reactive scaler settles on %d", w.day.Format("Mon Jan 2"), top, math.Ceil(top), ref)
				}
				if float64(ref) <= maxReplicas/2 {
					half++
					if math.Ceil(top) >= maxReplicas {
						t.Errorf("%s: the forecast asks for maxReplicas %g where the reactive scaler needs %d", w.day.Format("Mon Jan 2"), maxReplicas, ref)
					}
				}
				checked++
			}
			// Nowhere from week 3 on does the estimate reach maxReplicas.
			top, at := 0.0, time.Time{}
			for b := replay.Peak.From; b.Before(tr.End()); b = b.Add(forecast.Bucket) {
				if est, _, ok := replay.History.Estimate(b, p); ok && est > top {
					top, at = est, b
				}
			}
			t.Logf("%d peaks checked (%d needing at most half of maxReplicas); the largest estimate from week 3 on: %.2f at %s",
				checked, half, top, at.In(p.Zone).Format("Mon Jan 2 15:04 MST"))
			if checked < 10 || half < 5 {
				t.Errorf("%d peaks checked, %d needing at most half of maxReplicas: the trace proves little", checked, half)
			}
			if math.Ceil(top) >= maxReplicas {
				t.Errorf("the estimate reaches %.2f at %s: maxReplicas %g", top, at, maxReplicas)
			}
		})
	}
}

func TestOnTheExampleTracesTheForecastHalvesThePeakWaitForAtMostFivePercentMorePodHours(t *testing.T) {
	for _, name := range exampleTraces {
		t.Run(name, func(t *testing.T) {
			tr, s := exampleTrace(t, name)
			r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Policies: []string{MontageScaler, MontageForecast}})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := WriteTable(&b, r); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + b.String())
			plain, fc := r.Results[0], r.Results[1]
			pw, fw := *plain.PeakQueueWaitP95Seconds, *fc.PeakQueueWaitP95Seconds
			if pw < 10 {
				t.Fatalf("without the forecast the peak's queue wait P95 is %.1fs: the trace does not test the forecast", pw)
			}
			if fw > pw/2 {
				t.Errorf("peak queue wait P95 %.1fs with the forecast, %.1fs without: want at most half", fw, pw)
			}
			if fc.PodHours > 1.05*plain.PodHours {
				t.Errorf("%.1f pod-hours with the forecast, %.1f without: want at most 5 %% more", fc.PodHours, plain.PodHours)
			}
		})
	}
}

func TestOnTheNoisyTraceTheEstimatorBeatsTheSeasonalNaive(t *testing.T) {
	_, _, replay := exampleReplay(t, "noisy-weeks.csv")
	r := forecast.Backtest(replay.History, replay.Params)
	var b strings.Builder
	if err := WriteBacktest(&b, "text", "noisy-weeks.csv", r, nil); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	e, n := r.Total, r.Naive
	if e == nil || n == nil || e.MAPE == nil || n.MAPE == nil {
		t.Fatalf("total %+v, naive %+v", e, n)
	}
	if *e.MAPE >= *n.MAPE || e.UnderMinutes >= n.UnderMinutes {
		t.Errorf("MAPE %.3f vs %.3f, minutes under %g vs %g: want the estimator below the seasonal naive on both", *e.MAPE, *n.MAPE, e.UnderMinutes, n.UnderMinutes)
	}
}

func TestOnTheNoisyTraceTheViralSaturdayIsNotTakenForAHabit(t *testing.T) {
	_, _, replay := exampleReplay(t, "noisy-weeks.csv")
	p := replay.Params
	viral := time.Date(2026, 3, 28, 14, 0, 0, 0, p.Zone)
	var during []float64
	for b := viral; b.Before(viral.Add(2 * time.Hour)); b = b.Add(forecast.Bucket) {
		d, _ := replay.History.Demand(b)
		v, _ := d.Total()
		during = append(during, v)
	}
	if slices.Min(during) < 2 {
		t.Fatalf("the viral afternoon's demand %v: want over 2 replicas throughout", during)
	}
	for k := 1; k <= 2; k++ {
		for b := viral.AddDate(0, 0, 7*k); b.Before(viral.AddDate(0, 0, 7*k).Add(2 * time.Hour)); b = b.Add(forecast.Bucket) {
			if est, _, _ := replay.History.Estimate(b, p); est >= 0.5 {
				t.Errorf("%s, %d weeks after the viral Saturday: estimate %.2f, want the quiet afternoon's (under half a replica)", b.In(p.Zone).Format("Mon Jan 2 15:04"), k, est)
			}
		}
	}
}

func TestOnTheRegularTraceUTCWeeksWouldMissTheHabitAfterTheClocksGoForward(t *testing.T) {
	_, _, replay := exampleReplay(t, "weeks.csv")
	p := replay.Params
	utc := p
	utc.Zone = time.UTC
	// Monday 30 March, the first weekday in summer time.
	rush := time.Date(2026, 3, 30, 18, 10, 0, 0, p.Zone)
	local, _, _ := replay.History.Estimate(rush, p)
	moved, _, _ := replay.History.Estimate(rush, utc)
	t.Logf("Mon 30 March 18:10 CEST: %.2f replicas in Berlin weeks, %.2f in UTC weeks", local, moved)
	if local < 3 || moved > 1 {
		t.Errorf("estimates %.2f (Berlin) and %.2f (UTC): want the rush kept at 18:00 local, missed by UTC weeks", local, moved)
	}
}
