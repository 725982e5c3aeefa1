package celery

import (
	"math"
	"testing"
	"time"
)

func secs(v float64) *float64 { return &v }

func TestOpinionActsOnSharedAgesOnlyAndExplainsItself(t *testing.T) {
	b := Backlog{Queued: 3, InFlight: 10, HeartbeatWorkers: 2, Queues: []QueueBacklog{
		{Name: "render", Ready: 3, Unacked: 10, OldestWaitSeconds: secs(90), WaitMethod: WaitStamp},
		{Name: "thumbs", OldestWaitSeconds: secs(600), WaitMethod: WaitFirstSeenLocal},
	}}
	c := &Config{TasksPerReplica: 5}
	o, _ := c.Opinion(b, time.Time{})
	if *o.Desired != 2.6 || len(o.Warnings) != 0 || o.Detail.(Backlog).QueueWaitTargetSeconds != nil {
		t.Errorf("no target: %v %q %+v; want the depth ask 2.6, shown only", *o.Desired, o.Warnings, o.Detail)
	}

	c.QueueWaitTarget = time.Minute
	o, _ = c.Opinion(b, time.Time{})
	d := o.Detail.(Backlog)
	// 2 workers × 90/60: the stamped 90 s acts, this replica's 600 s does not.
	if *o.Desired != 3 || !o.Active || *d.QueueWaitTargetSeconds != 60 || *d.WaitAsk != 3 {
		t.Errorf("target 60s: %v active %t, detail target %v ask %v; want 3, active, 60, 3", *o.Desired, o.Active, d.QueueWaitTargetSeconds, d.WaitAsk)
	}
	want := `queue "thumbs": its oldest task waited 600 s by this replica's own sighting: shown, not acted on`
	if len(o.Warnings) != 1 || o.Warnings[0] != want {
		t.Errorf("warnings %q, want %q", o.Warnings, want)
	}
	if b.WaitAsk != nil {
		t.Error("Opinion changed the reading it was given")
	}
}

func TestOpinionOfAbsurdCountsIsAFiniteAskOrAnError(t *testing.T) {
	c := &Config{TasksPerReplica: 5}
	tests := []struct {
		name    string
		b       Backlog
		want    float64
		wantErr string
	}{
		{"counts whose int64 sum overflows still ask for more, not less", Backlog{Queued: math.MaxInt64, InFlight: math.MaxInt64}, 2 * float64(math.MaxInt64) / 5, ""},
		{"a negative in-flight count is an error naming celery, not a smaller ask", Backlog{Queued: 3, InFlight: -10},
			0, "celery: 3 queued and -10 in flight is not a count of tasks (a worker heartbeat with a negative active?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := c.Opinion(tt.b, time.Time{})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v (opinion %+v), want %q", err, o, tt.wantErr)
				}
				return
			}
			if err != nil || o.Desired == nil || *o.Desired != tt.want || !o.Active {
				t.Fatalf("opinion %v active %t, error %v; want %g active", o.Desired, o.Active, err, tt.want)
			}
		})
	}
}
