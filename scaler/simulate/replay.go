package simulate

import (
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/latency"
)

// promWindow is the range of the P95 query Prometheus answers (rate over 1m).
const promWindow = 60

// replay runs one policy over the trace, one simulated second per step.
func replay(tr Trace, s *Setup, w Workload, id string, c controller, every int, peak *WeeklyPeak) Result {
	return replayRecorded(tr, s, w, id, c, every, nil, peak)
}

// replayRecorded is replay that also feeds rec (when not nil) what the
// cluster would have exported (see Timeline), and measures the queue wait
// of the weekly peak's tasks (when peak is not nil).
func replayRecorded(tr Trace, s *Setup, w Workload, id string, c controller, every int, rec *recorder, peak *WeeklyPeak) Result {
	tasks := tasksOf(tr)
	cl := newCluster(w, tasks, c.initial())
	res := Result{Policy: id, PeakReplicas: cl.replicas}
	total := int(tr.End().Sub(tr.Start) / time.Second)
	stepSec := int(tr.Step / time.Second)
	target := latency.DefaultTarget.Seconds()
	if s.Latency != nil {
		target = s.Latency.Target.Seconds()
	}
	waitTarget := s.waitTarget().Seconds()
	overWait := 0

	// Calendar events that begin inside the trace, by the second they begin.
	need := map[int][]float64{}
	events := 0
	for _, e := range s.Windows {
		if e.Start.Before(tr.Start) || !e.Start.Before(tr.End()) {
			continue
		}
		sec := int(math.Ceil(e.Start.Sub(tr.Start).Seconds()))
		need[sec] = append(need[sec], math.Ceil(e.Replicas))
		events++
	}
	readyEvents := 0

	var ringReq, ringW [promWindow]float64
	var sumReq, sumW, minReq, minW float64
	for sec := 0; sec < total; sec++ {
		now := tr.Start.Add(time.Duration(sec) * time.Second)
		fs := float64(sec)
		row := tr.Rows[sec/stepSec]
		rate := row.Requests / float64(stepSec)

		queued, running := cl.observe(fs)
		oldest := cl.oldestWait(fs)
		if oldest > waitTarget {
			overWait++
		}
		cpu, mem, ready, unready := cl.usage(fs, rate)
		p95 := 0.0
		if rate > 0 {
			p95 = w.LatencyCap.Seconds()
			if ready > 0 {
				p95 = w.p95(cpu)
			}
		}
		if rec != nil {
			rec.second(sec, cl, queued, running, c, rate, p95)
		}
		i := sec % promWindow
		sumReq += rate - ringReq[i]
		sumW += rate*p95 - ringW[i]
		ringReq[i], ringW[i] = rate, rate*p95
		prom := math.NaN()
		if sumReq > 1e-9 {
			prom = sumW / sumReq
		}
		minReq += rate
		minW += rate * p95
		if (sec+1)%60 == 0 || sec == total-1 {
			if minReq > 0 && minW/minReq > target {
				res.LatencyOverTargetMinutes++
			}
			minReq, minW = 0, 0
		}
		for _, n := range need[sec] {
			if float64(ready) >= n {
				readyEvents++
			}
		}

		o := observation{queued: queued, running: running, completed: cl.started - running, oldestWait: oldest, p95: prom, cpu: cpu, mem: mem, ready: ready, unready: unready}
		if n := c.tick(now, sec, o, cl.replicas); n != cl.replicas {
			if n < cl.replicas && int(n)*w.Concurrency < running {
				res.ScaleDownsBelowInFlight++
			}
			cl.scale(fs, n)
			res.PeakReplicas = max(res.PeakReplicas, n)
		}
		if sec%every == 0 {
			r, _ := cl.readyPods(fs)
			res.Samples = append(res.Samples, Sample{At: now, Replicas: cl.replicas, Ready: r, Queued: queued, OldestWaitSecond: oldest})
		}
		cl.dispatch(fs)
		cl.reap(fs)
	}

	end := float64(total)
	res.QueueWaitOverTargetMinutes = float64(overWait) / 60
	queuedEnd, runningEnd := cl.observe(end)
	res.Arrived = cl.arrived
	res.QueuedAtEnd, res.RunningAtEnd = queuedEnd, runningEnd
	var waits, peakWaits []float64
	for _, t := range tasks[:cl.arrived] {
		wait := end - t.arrive // never started: its wait so far
		if t.start >= 0 {
			wait = t.start - t.arrive
			if t.start+t.service <= end {
				res.Videos++
			}
		}
		waits = append(waits, wait)
		if peak.Holds(tr.Start.Add(time.Duration(t.arrive * float64(time.Second)))) {
			peakWaits = append(peakWaits, wait)
		}
	}
	if len(waits) > 0 {
		res.QueueWaitP95Seconds = p95(waits)
		res.QueueWaitMaxSeconds = waits[len(waits)-1]
	}
	if peak != nil {
		v := 0.0
		if len(peakWaits) > 0 {
			v = p95(peakWaits)
		}
		res.PeakQueueWaitP95Seconds = &v
	}
	secs := cl.podSecs
	for _, p := range cl.pods {
		secs += end - p.created
	}
	res.PodHours = secs / 3600
	if rec != nil {
		res.Timeline = rec.finish(total, cl, tasks)
	}
	if res.Videos > 0 {
		v := res.PodHours / float64(res.Videos)
		res.CostPerVideo = &v
	}
	res.ScaleEventsPerHour = float64(cl.changes) / (end / 3600)
	if events > 0 {
		v := float64(readyEvents) / float64(events)
		res.ReadyAtEventStart = &v
	}
	return res
}

// p95 sorts vs and returns its 95th percentile (nearest rank).
func p95(vs []float64) float64 {
	slices.Sort(vs)
	return vs[int(math.Ceil(0.95*float64(len(vs))))-1]
}

// loadSamples averages the trace's arrival rates over each sample period.
func loadSamples(tr Trace, every time.Duration) []LoadSample {
	tasks := tasksOf(tr)
	total := tr.End().Sub(tr.Start).Seconds()
	per := every.Seconds()
	step := tr.Step.Seconds()
	var out []LoadSample
	k := 0
	for from := 0.0; from < total; from += per {
		to := math.Min(from+per, total)
		n := 0
		for k < len(tasks) && tasks[k].arrive < to {
			n++
			k++
		}
		req := 0.0
		for sec := from; sec < to; sec++ {
			req += tr.Rows[int(sec/step)].Requests / step
		}
		out = append(out, LoadSample{At: tr.Start.Add(time.Duration(from) * time.Second),
			TasksPerMinute: float64(n) * 60 / (to - from), RequestsPerMinute: req * 60 / (to - from)})
	}
	return out
}
