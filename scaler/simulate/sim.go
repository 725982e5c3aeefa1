// Package simulate replays a load trace through the real decision code
// (scaler/decide, with the opinion functions the server uses) and a model of
// the HPA and KEDA (scaler/hpa), beside the alternatives a user would pick
// instead, and measures each on the same workload model (see Workload).
package simulate

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/simulate/hpa"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Policy ids, in the order reports list them.
const (
	// Phase1HPA is the ADR's Phase 1: a plain HPA on CPU 65 %, 1–4 replicas.
	Phase1HPA = "phase1-hpa"
	// KEDABuiltin is what users build from KEDA's built-in triggers: redis
	// list length of the default queue, prometheus P95 (ignoreNullValues),
	// a cron window per calendar event, with the same cpu/memory triggers
	// and HPA behavior as the ScaledObject.
	KEDABuiltin = "keda-builtin"
	// MontageScaler is this scaler: decide.Decide behind KEDA's HPA.
	MontageScaler = "montage-scaler"
	// MontageDepth is this scaler with the metadata's queueWaitTarget left
	// out: the celery component's depth ask, beside the wait-based ask of
	// MontageScaler in the same run (the report still counts the time over
	// the target).
	MontageDepth = "montage-scaler-depth"
)

// Policies lists the policies a run has by default.
func Policies() []string { return []string{Phase1HPA, KEDABuiltin, MontageScaler} }

// allPolicies lists every policy id.
func allPolicies() []string { return append(Policies(), MontageDepth, MontageForecast) }

// Options tune a run.
type Options struct {
	Workload Workload
	// Policies to run, in order; empty: Policies(), and MontageForecast
	// when the metadata sets forecastMode.
	Policies []string
	// SampleEvery is the plot's resolution; zero: one minute.
	SampleEvery time.Duration
	// Record names the policy whose Timeline is kept (WriteOpenMetrics).
	Record string
	// Loop is the timing of the controllers and metrics around the
	// policies; the zero Loop is the model's defaults.
	Loop Loop
}

// Sample is one policy's state at one instant, for plots.
type Sample struct {
	At               time.Time `json:"at"`
	Replicas         int32     `json:"replicas"`
	Ready            int       `json:"ready"`
	Queued           int       `json:"queued"`
	Running          int       `json:"running"`
	OldestWaitSecond float64   `json:"oldestWaitSeconds"`
}

// Result is one policy's figures on the trace.
type Result struct {
	Policy   string  `json:"policy"`
	PodHours float64 `json:"podHours"`
	// Videos are the tasks finished by the trace's end.
	Videos int `json:"videos"`
	// CostPerVideo is pod-hours per finished video; nil with none.
	CostPerVideo        *float64 `json:"costPerVideo"`
	QueueWaitP95Seconds float64  `json:"queueWaitP95Seconds"`
	QueueWaitMaxSeconds float64  `json:"queueWaitMaxSeconds"`
	// QueueWaitOverTargetMinutes is how long some task had waited longer
	// than queueWaitTarget (60 s without one), in minutes.
	QueueWaitOverTargetMinutes float64 `json:"queueWaitOverTargetMinutes"`
	// PeakQueueWaitP95Seconds is the queue wait P95 of the tasks that
	// arrived during the weekly peak (Report.Peak); nil without one.
	PeakQueueWaitP95Seconds *float64 `json:"peakQueueWaitP95Seconds"`
	// LatencyOverTargetMinutes counts minutes whose API P95 was above
	// latencyTarget (80 ms by default).
	LatencyOverTargetMinutes int     `json:"latencyOverTargetMinutes"`
	ScaleEventsPerHour       float64 `json:"scaleEventsPerHour"`
	// ReadyAtEventStart is the share of calendar events that began with their
	// replicas ready; nil without events.
	ReadyAtEventStart *float64 `json:"readyAtEventStart"`
	// Arrived = Videos + QueuedAtEnd + RunningAtEnd.
	Arrived      int   `json:"arrived"`
	QueuedAtEnd  int   `json:"queuedAtEnd"`
	RunningAtEnd int   `json:"runningAtEnd"`
	PeakReplicas int32 `json:"peakReplicas"`
	// ScaleDownsBelowInFlight counts scale-downs to fewer slots
	// (replicas × concurrency) than tasks running at that moment.
	ScaleDownsBelowInFlight int      `json:"scaleDownsBelowInFlight"`
	Samples                 []Sample `json:"-"`
	// Timeline is what the cluster exported, for Options.Record's policy.
	Timeline *Timeline `json:"-"`
}

// LoadSample is the trace's load over one sample period, for plots.
type LoadSample struct {
	At time.Time
	// TasksPerMinute and RequestsPerMinute are arrival rates.
	TasksPerMinute, RequestsPerMinute float64
}

// Report is a simulation's outcome.
type Report struct {
	Start, End time.Time
	Step       time.Duration
	Results    []Result
	Load       []LoadSample
	Events     []decide.CalendarWindow
	Settings   KEDASettings
	// LatencyTarget is what latencyOverTargetMinutes counts against.
	LatencyTarget time.Duration
	// QueueWaitTarget is what queueWaitOverTargetMinutes counts against;
	// WaitTargetSet says the metadata set it (else it is the default).
	QueueWaitTarget time.Duration
	WaitTargetSet   bool
	// Peak is the trace's weekly peak; nil for a trace under three weeks.
	Peak     *WeeklyPeak
	Warnings []string
}

// observation is what the sources would report at one instant.
type observation struct {
	queued, running int
	// queuedBy are the tasks waiting in each of the trace's queues.
	queuedBy []int
	// oldestWait is how long the head of the queue has waited, in seconds.
	oldestWait float64
	// completed counts the tasks finished so far, as the workers'
	// heartbeats would.
	completed int
	// p95 is Prometheus's P95 over the last minute, NaN without requests.
	p95 float64
	// cpu and mem are the mean over ready pods (fraction, percent) as the
	// HPA reads them: Loop.ResourceLag late.
	cpu, mem       float64
	ready, unready int
}

// controller is a policy: each simulated second it may set the replicas.
type controller interface {
	tick(now time.Time, sec int, o observation, current int32) int32
	initial() int32
}

// Run replays tr under each policy. It is deterministic: the same input
// gives the same report.
func Run(tr Trace, s *Setup, o Options) (*Report, error) {
	if err := o.Workload.Validate(); err != nil {
		return nil, err
	}
	if err := o.Loop.Validate(); err != nil {
		return nil, err
	}
	if len(tr.Rows) < 2 || tr.Step <= 0 {
		return nil, fmt.Errorf("simulate: trace has no step")
	}
	ids := o.Policies
	if len(ids) == 0 {
		ids = Policies()
		if s.Forecast != nil {
			ids = append(ids, MontageForecast)
		}
	}
	every := o.SampleEvery
	if every <= 0 {
		every = time.Minute
	}
	if every%time.Second != 0 {
		return nil, fmt.Errorf("simulate: sample period %s: want whole seconds", every)
	}
	settings := s.KEDA
	if o.Loop.Polling > 0 {
		settings.PollingInterval = o.Loop.Polling
	}
	r := &Report{Start: tr.Start, End: tr.End(), Step: tr.Step, Events: s.Windows, Settings: settings, Warnings: slices.Clone(s.Warnings),
		LatencyTarget: latency.DefaultTarget, QueueWaitTarget: s.waitTarget(), WaitTargetSet: s.QueueWaitTarget > 0}
	if s.Latency != nil {
		r.LatencyTarget = s.Latency.Target
	}
	r.Peak = FindWeeklyPeak(tr, s.Zone())
	for _, id := range ids {
		c, err := newController(id, s, tr.Start, o.Loop)
		if err != nil {
			return nil, err
		}
		var rec *recorder
		if id == o.Record {
			rec = newRecorder(tr, o.Workload)
		}
		r.Results = append(r.Results, replay(replayRun{trace: tr, setup: s, workload: o.Workload, policy: id, ctl: c,
			every: int(every / time.Second), rec: rec, peak: r.Peak, lag: o.Loop.ResourceLag}))
	}
	r.Load = loadSamples(tr, every)
	return r, nil
}

func newController(id string, s *Setup, start time.Time, l Loop) (controller, error) {
	switch id {
	case Phase1HPA:
		ctl, err := hpa.New(hpa.Spec{MinReplicas: 1, MaxReplicas: 4, Behavior: hpa.DefaultBehavior()})
		if err != nil {
			return nil, err
		}
		return &phase1{ctl: ctl, sync: l.syncSeconds()}, nil
	case KEDABuiltin, MontageScaler, MontageDepth, MontageForecast:
		k := &hpa.KEDA{MinReplicaCount: s.KEDA.MinReplicaCount, MaxReplicaCount: s.KEDA.MaxReplicaCount, Cooldown: s.KEDA.Cooldown}
		if err := k.Validate(); err != nil {
			return nil, err
		}
		k.Start(start)
		ctl, err := hpa.New(k.HPASpec(s.KEDA.Behavior))
		if err != nil {
			return nil, err
		}
		p := &kedaPolicy{keda: k, ctl: ctl, s: s, poll: l.pollSeconds(s.KEDA), sync: l.syncSeconds(), cached: l.CachedMetrics}
		p.replays = newReplays(s.parts)
		switch id {
		case MontageScaler:
			p.push = s.KEDA.Push
			p.eval = p.montage
		case MontageDepth:
			p.push = s.KEDA.Push
			p.eval = p.montage
			p.replays = newReplays(s.depthParts())
		case MontageForecast:
			p.push = s.KEDA.Push
			p.eval = newForecaster(p).eval
		default:
			p.eval = p.builtin
		}
		return p, nil
	}
	return nil, fmt.Errorf("simulate: policy %q: want one of %v", id, allPolicies())
}

type phase1 struct {
	ctl  *hpa.Controller
	sync int // seconds
}

func (p *phase1) initial() int32 { return 1 }

func (p *phase1) tick(now time.Time, sec int, o observation, current int32) int32 {
	if sec%p.sync != 0 {
		return current
	}
	m := []hpa.Metric{{Name: "cpu", Kind: hpa.Utilization, Target: 65, Utilization: o.cpu * 100, ReadyPods: int32(o.ready), UnreadyPods: int32(o.unready)}}
	return p.ctl.Sync(now, current, m).Desired
}

type kedaPolicy struct {
	keda *hpa.KEDA
	ctl  *hpa.Controller
	s    *Setup
	// poll and sync are KEDA's polling interval and the HPA's sync
	// period, in seconds.
	poll, sync int
	push       bool
	// cached says the HPA reads ext, the metrics of the last poll, at a
	// sync between polls (useCachedMetrics).
	cached bool
	ext    []hpa.Metric
	// eval returns the trigger's external metrics and whether KEDA sees
	// the ScaledObject active.
	eval func(now time.Time, o observation, current int32) ([]hpa.Metric, bool)
	// last is the latest decision, which the scaler would export.
	last *decide.Decision
	// replays are the components' opinions in the model's world, each
	// with its own memory for this policy.
	replays []replayPart
}

func (p *kedaPolicy) initial() int32 { return p.keda.MinReplicaCount }

func (p *kedaPolicy) tick(now time.Time, sec int, o observation, current int32) int32 {
	pollNow := sec%p.poll == 0
	syncNow := sec%p.sync == 0
	if !pollNow && !syncNow && !(p.push && current == 0) {
		return current
	}
	if p.cached && !pollNow && p.ext != nil && current > 0 {
		return p.hpaSync(now, slices.Clone(p.ext), o, current)
	}
	ext, active := p.eval(now, o, current)
	if pollNow {
		p.ext = slices.Clone(ext)
	}
	if pollNow || (p.push && active && current == 0) {
		if n, changed := p.keda.Scale(now, active, current); changed {
			return n
		}
	}
	if !syncNow || current == 0 {
		return current
	}
	return p.hpaSync(now, ext, o, current)
}

// hpaSync is one HPA sync on the trigger's metrics ext and the cpu/memory
// triggers beside them.
func (p *kedaPolicy) hpaSync(now time.Time, ext []hpa.Metric, o observation, current int32) int32 {
	ms := ext
	if t := p.s.KEDA.CPU; t != nil {
		ms = append(ms, hpa.Metric{Name: "cpu", Kind: hpa.Utilization, Target: *t, Utilization: o.cpu * 100, ReadyPods: int32(o.ready), UnreadyPods: int32(o.unready)})
	}
	if t := p.s.KEDA.Memory; t != nil {
		ms = append(ms, hpa.Metric{Name: "memory", Kind: hpa.Utilization, Target: *t, Utilization: o.mem, ReadyPods: int32(o.ready), UnreadyPods: int32(o.unready)})
	}
	return p.ctl.Sync(now, current, ms).Desired
}

// montage asks the real decision code, with readings built by the same
// opinion functions the server uses; every source is fresh.
func (p *kedaPolicy) montage(now time.Time, o observation, current int32) ([]hpa.Metric, bool) {
	return p.decide(now, p.readings(now, o, current))
}

// readings are the components' fresh readings at now, each replayed by its
// own component on the model's world; evidence that is not a reading (the
// model's P95 is finite, capped by the workload's latency cap) is a failed
// read, as on a server.
func (p *kedaPolicy) readings(now time.Time, o observation, current int32) []decide.Reading {
	w := component.World{Now: now, Queued: o.queued, Running: o.running,
		OldestWait: time.Duration(o.oldestWait * float64(time.Second)), Ready: o.ready, Completed: o.completed,
		Current: float64(current), P95: o.p95, Windows: p.s.Windows}
	var rs []decide.Reading
	for _, part := range p.replays {
		c := part.c
		r := decide.Reading{Name: c.Name, NoExpiry: c.Expiry == component.NeverExpires, Optional: c.Optional}
		if op, err := part.replay(w); err != nil {
			r.Err = fmt.Errorf("%s: %w", c.Name, err)
		} else {
			r.Opinion, r.GoodAt = op, now
		}
		rs = append(rs, r)
	}
	return rs
}

// replayPart is one component replayed for one policy.
type replayPart struct {
	c      component.Component
	replay func(component.World) (decide.Opinion, error)
}

// newReplays are parts' replays for one policy: a fresh memory each for
// the components that keep one (Component.NewReplay).
func newReplays(parts []spec.Part) []replayPart {
	var out []replayPart
	for _, part := range parts {
		c, cfg := part.Component, part.Config
		r := replayPart{c: c, replay: func(w component.World) (decide.Opinion, error) { return c.Replay(cfg, w) }}
		if c.NewReplay != nil {
			r.replay = c.NewReplay(cfg)
		}
		out = append(out, r)
	}
	return out
}

// decide folds readings into the trigger's metric and activity.
func (p *kedaPolicy) decide(now time.Time, rs []decide.Reading) ([]hpa.Metric, bool) {
	d := decide.Decide(now, p.s.Spec.Policy, rs)
	p.last = &d
	v := math.NaN() // no decision: the HPA keeps its scale
	if d.Desired != nil {
		v = *d.Desired
	}
	return []hpa.Metric{{Name: "s0-" + p.s.Spec.MetricName, Kind: hpa.External, Target: 1, Value: v}}, d.Active
}
