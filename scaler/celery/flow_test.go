package celery

import (
	"math"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

var t0 = time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestFlowSaysWhyItCannotMeasure(t *testing.T) {
	tests := []struct {
		name     string
		readings []Backlog
		want     string
	}{
		{"one reading", []Backlog{{Queued: 5, BrokerTime: at(0)}}, "no flow measured yet (one reading)"},
		{"no heartbeats", []Backlog{{Queued: 5, InFlight: 5, BrokerTime: at(0)}, {Queued: 5, InFlight: 5, BrokerTime: at(10)}},
			"no worker heartbeats in the last 2m0s (none running, or started with --without-heartbeat)"},
		{"no completion yet", []Backlog{{Queued: 5, InFlight: 5, HeartbeatWorkers: 1, BrokerTime: at(0)}, {Queued: 5, InFlight: 5, HeartbeatWorkers: 1, BrokerTime: at(30)}},
			"no task completed in the last 30 s yet: no service time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlow(&Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute})
			for _, b := range tt.readings {
				f.Observe(b, time.Time{})
			}
			if m := f.Measure(); m.Measured || m.Why != tt.want {
				t.Errorf("measured %t why %q, want %q", m.Measured, m.Why, tt.want)
			}
		})
	}
}

// TestFlowMeasuresLittlesLaw: 5 tasks always in flight and 1 completing
// every 2 s for the 2 minutes of the window, while the backlog stays the
// same, is 0.5 arrivals a second and a service time of 5 × 120 / 60 = 10 s.
func TestFlowMeasuresLittlesLaw(t *testing.T) {
	f := NewFlow(&Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute})
	for s := 0; s <= 120; s += 2 {
		f.Observe(Backlog{Queued: 3, InFlight: 5, HeartbeatWorkers: 1, Completed: int64(s / 2), CompletedSource: "p", BrokerTime: at(s)}, time.Time{})
	}
	m := f.Measure()
	if !m.Measured || math.Abs(m.ArrivalsPerSecond-0.5) > 1e-9 || math.Abs(m.ServiceSeconds-10) > 1e-9 {
		t.Errorf("got %+v, want 0.5/s and 10 s", m)
	}
	// Readings older than the window drop out; a poll seen twice is one.
	f.Observe(Backlog{Queued: 3, InFlight: 5, HeartbeatWorkers: 1, Completed: 60, CompletedSource: "p", BrokerTime: at(120)}, time.Time{})
	f.Observe(Backlog{Queued: 3, InFlight: 5, HeartbeatWorkers: 1, Completed: 60, CompletedSource: "p", BrokerTime: at(260)}, time.Time{})
	if m := f.Measure(); m.Measured {
		t.Errorf("after 140 s without a reading: %+v, want not measured", m)
	}
	// A burst still queued is no arrival rate: 60 more queued at once.
	f = NewFlow(&Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute})
	for s := 0; s <= 120; s += 2 {
		q := int64(3)
		if s == 120 {
			q = 63
		}
		f.Observe(Backlog{Queued: q, InFlight: 5, HeartbeatWorkers: 1, Completed: int64(s / 2), CompletedSource: "p", BrokerTime: at(s)}, time.Time{})
	}
	if m := f.Measure(); math.Abs(m.ArrivalsPerSecond-0.5) > 1e-9 {
		t.Errorf("with a burst of 60 still queued: %g arrivals a second, want the 0.5 served", m.ArrivalsPerSecond)
	}
}

func TestFlowLearnsThePodStartUpFromTheNextWorker(t *testing.T) {
	c := &Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute}
	f := NewFlow(c)
	if got := f.PodStartup(); got != DefaultPodStartup {
		t.Fatalf("before any rise: %s, want the default %s", got, DefaultPodStartup)
	}
	// 40 tasks and one worker: the ask (the depth fallback: 9) rises above
	// it at 10 s; a second worker's first heartbeat comes at 80 s.
	busy := func(s, workers int) Backlog {
		return Backlog{Queued: 40, InFlight: 5, HeartbeatWorkers: workers, CompletedSource: "p", BrokerTime: at(s)}
	}
	if _, err := f.Opinion(busy(10, 1), time.Time{}); err != nil {
		t.Fatal(err)
	}
	f.Opinion(busy(40, 1), time.Time{})
	f.Observe(busy(80, 2), time.Time{})
	if got := f.PodStartup(); got != 70*time.Second {
		t.Errorf("learned %s, want 70s", got)
	}
	c.PodStartup = 20 * time.Second
	if got := f.PodStartup(); got != 20*time.Second {
		t.Errorf("with podStartupTime 20s: %s, want it over what was learned", got)
	}
}

func TestFlowOpinionExplainsTheRule(t *testing.T) {
	f := NewFlow(&Config{TasksPerReplica: 5, QueueWaitTarget: time.Minute})
	var o decide.Opinion
	for s := 0; s <= 120; s += 2 {
		// 45 thumbnails queued, 5 running, one worker finishing 2.5 a second
		// and as many arriving: the queue never drains without another pod,
		// which has half a target to help: 1 + 45·2/(5·30) = 1.6.
		o, _ = f.Opinion(Backlog{Queued: 45, InFlight: 5, HeartbeatWorkers: 1, Completed: int64(s) * 5 / 2, CompletedSource: "p", BrokerTime: at(s)}, time.Time{})
	}
	d := o.Detail.(Backlog).Flow
	if d == nil || d.Rule != decide.RuleDrain || math.Abs(*o.Desired-1.6) > 1e-9 || d.ServiceSeconds == nil || math.Abs(*d.ServiceSeconds-2) > 1e-9 ||
		math.Abs(*d.ArrivalsPerSecond-2.5) > 1e-9 || d.DrainSeconds != nil {
		t.Fatalf("got ask %v detail %+v, want 1.6 (drain) with a 2 s service time, 2.5/s and no drain time", *o.Desired, d)
	}
}
