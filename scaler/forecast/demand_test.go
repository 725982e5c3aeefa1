package forecast

import (
	"math"
	"testing"
	"time"
)

// samples are n looks 15 s apart from monday 18:00; f gives sample i's
// backlog, in flight and completed count.
func samples(n int, f func(i int64) (backlog, inFlight, completed int64)) []TaskSample {
	out := make([]TaskSample, n)
	for i := range out {
		b, fl, c := f(int64(i))
		out[i] = TaskSample{At: monday.Add(18*time.Hour + time.Duration(i)*15*time.Second), Backlog: b, InFlight: fl, Completed: c}
	}
	return out
}

func TestEstimateDemand(t *testing.T) {
	tests := []struct {
		name    string
		samples []TaskSample
		tpr     float64
		want    DemandEstimate // Replicas, Tasks, Method, Arrived, Completed, ServiceSeconds are compared
	}{
		{"a rush served as it comes is the work in flight",
			// 10 in flight, 30 s each: 5 done every 15 s, as many arrive.
			samples(20, func(i int64) (int64, int64, int64) { return 10, 10, 1000 + 5*i }), 5,
			DemandEstimate{Replicas: 2, Tasks: 10, Method: MethodArrivals, Arrived: 95, Completed: 95, ServiceSeconds: 30}},
		{"a queue building behind too few replicas asks for the arrivals, not the queue",
			// One replica (5 slots), 15 s tasks: 5 done every 15 s while 15
			// arrive; the queue grows by 10 a sample (the celery component
			// ends the bucket asking for 39 replicas).
			samples(20, func(i int64) (int64, int64, int64) { return 5 + 10*i, 5, 5 * i }), 5,
			DemandEstimate{Replicas: 3, Tasks: 15, Method: MethodArrivals, Arrived: 285, Completed: 95, ServiceSeconds: 15}},
		{"a draining backlog asks for the arrivals, not the drain",
			// Four replicas drain 20 every 15 s while 15 arrive.
			samples(20, func(i int64) (int64, int64, int64) { return 200 - 5*i, 20, 20 * i }), 5,
			DemandEstimate{Replicas: 3, Tasks: 15, Method: MethodArrivals, Arrived: 285, Completed: 380, ServiceSeconds: 15}},
		{"a completed count that starts again from 0 counts from there",
			// The scaler's poller restarted after sample 9: the count is 0,
			// then grows as before.
			samples(20, func(i int64) (int64, int64, int64) {
				if i < 10 {
					return 10, 10, 500 + 5*i
				}
				return 10, 10, 5 * (i - 9)
			}), 5,
			DemandEstimate{Replicas: 2, Tasks: 10, Method: MethodArrivals, Arrived: 95, Completed: 95, ServiceSeconds: 30}},
		{"few completions: the demand is capped at the mean backlog",
			// One task done in the bucket, 5 held, 6 to 8 present.
			samples(3, func(i int64) (int64, int64, int64) { return 6 + i, 5, min(i, 1) }), 5,
			DemandEstimate{Replicas: 7.0 / 5, Tasks: 7, Method: MethodArrivals, Arrived: 3, Completed: 1, ServiceSeconds: 150}},
		{"no completion (workers without heartbeats): the work in flight",
			samples(20, func(i int64) (int64, int64, int64) { return 5 + 10*i, 5, 0 }), 5,
			DemandEstimate{Replicas: 1, Tasks: 5, Method: MethodInFlight, Arrived: 190}},
		{"tasks waiting with no worker: the tasks present",
			samples(20, func(i int64) (int64, int64, int64) { return 10, 0, 0 }), 5,
			DemandEstimate{Replicas: 2, Tasks: 10, Method: MethodBacklog}},
		{"nothing at all is idle", samples(20, func(int64) (int64, int64, int64) { return 0, 0, 42 }), 5,
			DemandEstimate{Method: MethodIdle}},
		{"one sample has no span: the work in flight",
			samples(1, func(int64) (int64, int64, int64) { return 9, 4, 7 }), 2,
			DemandEstimate{Replicas: 2, Tasks: 4, Method: MethodInFlight}},
		{"tasksPerReplica unset divides by the celery default 5",
			samples(20, func(i int64) (int64, int64, int64) { return 10, 10, 5 * i }), 0,
			DemandEstimate{Replicas: 2, Tasks: 10, Method: MethodArrivals, Arrived: 95, Completed: 95, ServiceSeconds: 30}},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := EstimateDemand(tc.samples, tc.tpr)
			w := tc.want
			if !ok || !near(e.Replicas, w.Replicas) || !near(e.Tasks, w.Tasks) || e.Method != w.Method || e.Arrived != w.Arrived ||
				e.Completed != w.Completed || !near(e.ServiceSeconds, w.ServiceSeconds) || e.Samples != len(tc.samples) {
				t.Errorf("EstimateDemand = %+v, %t\nwant %+v", e, ok, w)
			}
		})
	}
	if e, ok := EstimateDemand(nil, 5); ok {
		t.Errorf("no samples: %+v, want not ok", e)
	}
}
