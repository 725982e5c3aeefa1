package decide

import (
	"testing"
	"time"
)

func TestCeleryWaitOpinion(t *testing.T) {
	tests := []struct {
		name       string
		b          CeleryBacklog
		target     time.Duration
		want       float64
		wantActive bool
	}{
		{"no target: the depth ask alone", CeleryBacklog{Queued: 3, InFlight: 5, OldestWait: time.Hour, Workers: 1}, 0, 1.6, true},
		{"a wait under the target changes nothing", CeleryBacklog{Queued: 3, InFlight: 5, OldestWait: 59 * time.Second, Workers: 1}, time.Minute, 1.6, true},
		{"exactly the target is not over it", CeleryBacklog{Queued: 3, InFlight: 5, OldestWait: time.Minute, Workers: 2}, time.Minute, 1.6, true},
		{"3 renders waiting 90 s behind 2 busy workers ask 2 × 1.5", CeleryBacklog{Queued: 3, InFlight: 10, OldestWait: 90 * time.Second, Workers: 2}, time.Minute, 3, true},
		{"at most twice the workers at work", CeleryBacklog{Queued: 3, InFlight: 5, OldestWait: 10 * time.Minute, Workers: 1}, time.Minute, 2, true},
		{"never below the depth ask", CeleryBacklog{Queued: 40, InFlight: 5, OldestWait: 2 * time.Minute, Workers: 1}, time.Minute, 9, true},
		{"without heartbeats, the tasks in flight over tasksPerReplica, rounded up", CeleryBacklog{Queued: 1, InFlight: 6, OldestWait: 90 * time.Second}, time.Minute, 3, true},
		{"nobody at work: the depth ask wakes a replica", CeleryBacklog{Queued: 1, OldestWait: 5 * time.Minute}, time.Minute, 0.2, true},
		{"nothing queued nor waiting: idle", CeleryBacklog{Workers: 3}, time.Minute, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := CeleryWaitOpinion(tt.b, 5, tt.target, nil)
			if o.Desired == nil || *o.Desired != tt.want || o.Active != tt.wantActive {
				t.Errorf("got %v active %t, want %g active %t", o.Desired, o.Active, tt.want, tt.wantActive)
			}
		})
	}
}
