package simulate

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
)

// monday is a Monday 00:00 UTC.
var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const forecastMetadata = `brokerURL: redis://broker:6379/0
tasksPerReplica: "5"
minReplicas: "1"
maxReplicas: "8"
forecastMode: enabled
`

// habitTrace is days of one-minute steps from monday: on weekdays 18:00 to
// 20:00, 30 tasks a minute (27 s each: 13.5 busy slots, three replicas'
// worth) with ±20 % noise; otherwise a task every few minutes. extra, if
// set, adds tasks at a minute (an anomaly).
func habitTrace(days int, seed uint64, extra func(time.Time) int) Trace {
	rng := rand.New(rand.NewPCG(seed, 7))
	tr := Trace{Start: monday, Step: time.Minute}
	for t := monday; t.Before(monday.Add(time.Duration(days) * 24 * time.Hour)); t = t.Add(time.Minute) {
		n := 0
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday && t.Hour() >= 18 && t.Hour() < 20 {
			n = int(30 * (0.8 + 0.4*rng.Float64()))
		} else if rng.IntN(4) == 0 {
			n = 1
		}
		if extra != nil {
			n += extra(t)
		}
		tr.Rows = append(tr.Rows, Row{Start: t, Tasks: n, Requests: 100, Service: 27 * time.Second})
	}
	return tr
}

func runForecast(t *testing.T, tr Trace) (plain, withForecast Result) {
	t.Helper()
	s, err := prepare([]byte(forecastMetadata), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tr, s, Options{Workload: DefaultWorkload()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) != 4 || r.Results[3].Policy != MontageForecast {
		t.Fatalf("policies %v: want the forecast policy last by default when forecastMode is set", r.Results)
	}
	return r.Results[2], r.Results[3]
}

// at returns the sample at t.
func at(t *testing.T, r Result, when time.Time) Sample {
	t.Helper()
	for _, s := range r.Samples {
		if s.At.Equal(when) {
			return s
		}
	}
	t.Fatalf("%s: no sample at %s", r.Policy, when)
	return Sample{}
}

func TestTheForecastHasReplicasReadyBeforeTheHabitualPeak(t *testing.T) {
	tr := habitTrace(4*7, 1, nil)
	plain, fc := runForecast(t, tr)
	// The fourth week's weekday evenings: the forecast has three replicas
	// ready when the rush starts; the reactive scaler still has one.
	for d := 21; d < 26; d++ {
		peak := monday.Add(time.Duration(d)*24*time.Hour + 18*time.Hour)
		p, f := at(t, plain, peak), at(t, fc, peak)
		t.Logf("%s: plain ready %d, forecast ready %d (replicas %d)", peak.Format("Mon Jan 2 15:04"), p.Ready, f.Ready, f.Replicas)
		if p.Ready != 1 {
			t.Errorf("%s: the reactive scaler has %d replicas ready before any task, want 1", peak, p.Ready)
		}
		if f.Ready < 3 {
			t.Errorf("%s: the forecast has %d replicas ready, want at least 3", peak, f.Ready)
		}
	}
	t.Logf("queue wait p95: plain %.0fs, forecast %.0fs; pod-hours %.1f vs %.1f", plain.QueueWaitP95Seconds, fc.QueueWaitP95Seconds, plain.PodHours, fc.PodHours)
	if fc.QueueWaitP95Seconds >= plain.QueueWaitP95Seconds {
		t.Errorf("queue wait p95 %gs with the forecast, %gs without: want it shorter", fc.QueueWaitP95Seconds, plain.QueueWaitP95Seconds)
	}
}

func TestWithUnderTwoWeeksOfHistoryTheForecastStaysSilent(t *testing.T) {
	tr := habitTrace(13, 2, nil)
	plain, fc := runForecast(t, tr)
	if fc.PodHours != plain.PodHours || fc.QueueWaitP95Seconds != plain.QueueWaitP95Seconds || len(fc.Samples) != len(plain.Samples) {
		t.Fatalf("forecast %+v differs from the reactive scaler %+v", fc, plain)
	}
	for i := range fc.Samples {
		if fc.Samples[i] != plain.Samples[i] {
			t.Fatalf("at %s the forecast has %+v, the reactive scaler %+v", fc.Samples[i].At, fc.Samples[i], plain.Samples[i])
		}
	}
}

func TestAOneOffAnomalyWeekDoesNotCauseALastingOverForecast(t *testing.T) {
	// Week 2's Wednesday had a viral morning: 40 tasks a minute 10:00–12:00.
	viral := monday.Add(2*7*24*time.Hour + 2*24*time.Hour + 10*time.Hour)
	tr := habitTrace(5*7, 3, func(t time.Time) int {
		if !t.Before(viral) && t.Before(viral.Add(2*time.Hour)) {
			return 40
		}
		return 0
	})
	plain, fc := runForecast(t, tr)
	if s := at(t, fc, viral.Add(30*time.Minute)); s.Replicas < 4 {
		t.Fatalf("during the anomaly the forecast policy has %d replicas: the trace is not an anomaly", s.Replicas)
	}
	for k := 1; k <= 2; k++ {
		before := viral.Add(time.Duration(k)*7*24*time.Hour - 5*time.Minute)
		for _, when := range []time.Time{before, before.Add(30 * time.Minute), before.Add(90 * time.Minute)} {
			p, f := at(t, plain, when), at(t, fc, when)
			if f.Replicas != p.Replicas || f.Replicas != 1 {
				t.Errorf("%d weeks after the anomaly, at %s: forecast %d replicas, reactive %d; want 1 each", k, when.Format("Mon Jan 2 15:04"), f.Replicas, p.Replicas)
			}
		}
	}
}

// TestTheRecordedDemandIsTheArrivalsWorkNotTheBacklog checks the history
// against what the simulator knows exactly: the work that arrived in each
// bucket (tasks × service time ÷ 5 minutes ÷ tasksPerReplica).
func TestTheRecordedDemandIsTheArrivalsWorkNotTheBacklog(t *testing.T) {
	tr := habitTrace(7, 4, nil)
	s, err := prepare([]byte(forecastMetadata), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := ReplayForecast(tr, s, DefaultWorkload())
	if err != nil {
		t.Fatal(err)
	}
	truth := map[time.Time]float64{}
	for _, tk := range tasksOf(tr) {
		at := tr.Start.Add(time.Duration(tk.arrive * float64(time.Second)))
		truth[forecast.BucketOf(at)] += tk.service / forecast.Bucket.Seconds() / s.TasksPerReplica
	}
	// What the celery component asked for, the history before: the most
	// queued + in flight in the bucket, every 15 s.
	r, err := Run(tr, s, Options{Workload: DefaultWorkload(), Policies: []string{MontageScaler}, Record: MontageScaler})
	if err != nil {
		t.Fatal(err)
	}
	tl := r.Results[0].Timeline
	ask := map[time.Time]float64{}
	for k, at := range tl.Times {
		b := forecast.BucketOf(at)
		ask[b] = max(ask[b], float64(tl.Queued[k]+tl.InFlight[k])/s.TasksPerReplica)
	}

	var n int
	var demandErr, askErr float64
	for b := tr.Start; b.Before(tr.End()); b = b.Add(forecast.Bucket) {
		want := truth[b]
		d, ok := replay.History.Demand(b)
		if !ok {
			t.Fatalf("bucket %s not recorded", b)
		}
		got := d[forecast.KindDemand]
		if want < 0.5 {
			if got > want+0.5 {
				t.Errorf("%s: quiet bucket recorded %.2f replicas, the work was %.2f", b.Format("Mon 15:04"), got, want)
			}
			continue
		}
		n++
		demandErr += math.Abs(got-want) / want
		askErr += math.Abs(ask[b]-want) / want
		if b.Hour() == 18 && b.Minute() < 10 {
			t.Logf("%s: work %.2f replicas, recorded demand %.2f, the celery component asked up to %.2f", b.Format("Mon 15:04"), want, got, ask[b])
			if math.Abs(got-want) > 0.15*want {
				t.Errorf("%s: recorded %.2f, the work was %.2f: more than 15 %% off", b.Format("Mon 15:04"), got, want)
			}
		}
	}
	t.Logf("over %d busy buckets: mean |error| %.1f %% recording the demand, %.1f %% recording the asks", n, 100*demandErr/float64(n), 100*askErr/float64(n))
	if demandErr/float64(n) > 0.05 || askErr <= 2*demandErr {
		t.Errorf("mean |error| %.3f (demand) vs %.3f (asks): want under 5 %% and under half the asks'", demandErr/float64(n), askErr/float64(n))
	}
}
