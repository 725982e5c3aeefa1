package celery

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// event is a worker event as Celery publishes it: a JSON envelope with a
// base64 body.
func event(t *testing.T, typ, host string, pid, processed int64) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"type": typ, "hostname": host, "pid": pid, "processed": processed, "active": 0, "freq": 2.0})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body),
		"properties": map[string]any{"body_encoding": "base64"}})
	return string(env)
}

func TestCompletedFollowsTheWorkersRunningTotals(t *testing.T) {
	ch := heartbeatChannels("", 0)
	type step struct {
		after            time.Duration // since subscribing
		channel          int           // 0 heartbeat, 1 offline
		typ, host        string
		pid, processed   int64
		wantCompleted    int64
		wantFreshWorkers int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a worker running before the scaler is a baseline, then counts its increases", []step{
			{1 * time.Second, 0, "worker-heartbeat", "a@h", 7, 120, 0, 1},
			{3 * time.Second, 0, "worker-heartbeat", "a@h", 7, 125, 5, 1},
			{5 * time.Second, 0, "worker-heartbeat", "a@h", 7, 125, 5, 1},
		}},
		{"a worker restarted under the same hostname counts from 0", []step{
			{1 * time.Second, 0, "worker-heartbeat", "a@h", 7, 120, 0, 1},
			{3 * time.Second, 0, "worker-heartbeat", "a@h", 7, 123, 3, 1},
			{4 * time.Second, 1, "worker-offline", "a@h", 7, 124, 4, 0},
			{9 * time.Second, 0, "worker-heartbeat", "a@h", 8, 2, 6, 1},
			{11 * time.Second, 0, "worker-heartbeat", "a@h", 8, 5, 9, 1},
		}},
		{"a restart with the same pid shows as a total that went down", []step{
			{1 * time.Second, 0, "worker-heartbeat", "a@h", 1, 50, 0, 1},
			{20 * time.Second, 0, "worker-heartbeat", "a@h", 1, 4, 4, 1},
		}},
		{"a worker first heard long after subscribing started since: its whole total is new", []step{
			{1 * time.Second, 0, "worker-heartbeat", "a@h", 7, 120, 0, 1},
			{30 * time.Second, 0, "worker-heartbeat", "b@h", 9, 3, 3, 1},
		}},
		{"two workers add up", []step{
			{1 * time.Second, 0, "worker-heartbeat", "a@h", 7, 10, 0, 1},
			{2 * time.Second, 0, "worker-heartbeat", "b@h", 9, 20, 0, 2},
			{3 * time.Second, 0, "worker-heartbeat", "a@h", 7, 12, 2, 2},
			{4 * time.Second, 0, "worker-heartbeat", "b@h", 9, 25, 7, 2},
		}},
	}
	t0 := time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			h := newHeartbeats(nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
			h.subscribed[ch[0]], h.subscribed[ch[1]] = t0, t0
			for i, s := range tc.steps {
				now = t0.Add(s.after)
				h.handle(ch[s.channel], event(t, s.typ, s.host, s.pid, s.processed))
				_, workers, completed, _ := h.sum("", 0, now, time.Second)
				if completed != s.wantCompleted || workers != s.wantFreshWorkers {
					t.Fatalf("step %d (%s %s processed %d): completed %d, %d fresh workers; want %d, %d",
						i, s.typ, s.host, s.processed, completed, workers, s.wantCompleted, s.wantFreshWorkers)
				}
			}
		})
	}
}
