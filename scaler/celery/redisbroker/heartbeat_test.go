package redisbroker

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// event is a worker event as Celery publishes it on Redis: kombu's envelope
// around a base64 JSON body.
func event(t *testing.T, typ, host string, processed, active int64) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"hostname": host, "type": typ, "processed": processed, "active": active, "freq": 2.0})
	if err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body),
		"properties": map[string]any{"body_encoding": "base64"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(env)
}

func TestCompletedCountsIncreasesOfEachWorkersProcessed(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	chs := heartbeatChannels("", 0)
	hbCh, offCh, onCh := chs[0], chs[1], chs[2]
	type ev struct {
		channel, typ, host string
		processed          int64
	}
	tests := []struct {
		name   string
		events []ev
		want   int64
	}{
		{"a worker already running counts from its first heartbeat",
			[]ev{{hbCh, "worker-heartbeat", "a", 500}, {hbCh, "worker-heartbeat", "a", 503}}, 3},
		{"a worker that starts while followed counts from 0",
			[]ev{{onCh, "worker-online", "a", 0}, {hbCh, "worker-heartbeat", "a", 4}}, 4},
		{"workers add up",
			[]ev{{hbCh, "worker-heartbeat", "a", 10}, {hbCh, "worker-heartbeat", "b", 7}, {hbCh, "worker-heartbeat", "a", 12}, {hbCh, "worker-heartbeat", "b", 10}}, 5},
		{"a restart seen by its worker-online counts the new total from 0",
			[]ev{{hbCh, "worker-heartbeat", "a", 10}, {hbCh, "worker-heartbeat", "a", 15}, {onCh, "worker-online", "a", 0}, {hbCh, "worker-heartbeat", "a", 2}}, 7},
		{"a restart whose worker-online was missed shows as a decrease: the new total counts",
			[]ev{{hbCh, "worker-heartbeat", "a", 10}, {hbCh, "worker-heartbeat", "a", 15}, {hbCh, "worker-heartbeat", "a", 2}, {hbCh, "worker-heartbeat", "a", 3}}, 8},
		{"a warm shutdown's last total counts, and a start after it from 0",
			[]ev{{hbCh, "worker-heartbeat", "a", 10}, {offCh, "worker-offline", "a", 12}, {onCh, "worker-online", "a", 0}, {hbCh, "worker-heartbeat", "a", 1}}, 3},
		{"a repeated heartbeat counts nothing",
			[]ev{{hbCh, "worker-heartbeat", "a", 10}, {hbCh, "worker-heartbeat", "a", 10}, {hbCh, "worker-heartbeat", "a", 10}}, 0},
		{"events of a channel not followed are ignored",
			[]ev{{"/1.celeryev/worker.heartbeat", "worker-heartbeat", "a", 10}, {"/1.celeryev/worker.heartbeat", "worker-heartbeat", "a", 20}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			h := newHeartbeats(nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
			for _, c := range chs {
				h.subscribed[c] = t0
			}
			for _, e := range tt.events {
				now = now.Add(time.Second)
				h.handle(e.channel, event(t, e.typ, e.host, e.processed, 0))
			}
			if got := h.counts("", 0, now, 0).completed; got != tt.want {
				t.Errorf("completed = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestLiveWorkersAreFreshAndNotOffline(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	now := t0
	h := newHeartbeats(nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	chs := heartbeatChannels("montage:", 2)
	for _, c := range chs {
		h.subscribed[c] = t0
	}
	h.handle(chs[0], event(t, "worker-heartbeat", "a", 1, 2))
	h.handle(chs[0], event(t, "worker-heartbeat", "b", 1, 3))
	h.handle(chs[0], event(t, "worker-heartbeat", "c", 1, 1))
	h.handle(chs[1], event(t, "worker-offline", "c", 1, 0))
	c := h.counts("montage:", 2, now, 3*time.Second)
	if c.workers != 2 || c.active != 5 || c.warm {
		t.Errorf("at once: %+v, want 2 live workers, 5 active, not warm", c)
	}
	now = now.Add(5 * time.Second) // over twice the frequency: none is live
	c = h.counts("montage:", 2, now, 3*time.Second)
	if c.workers != 0 || c.active != 0 || !c.warm {
		t.Errorf("5s later: %+v, want no live worker, warm", c)
	}
	// Still remembered: a later heartbeat counts from the last total.
	h.handle(chs[0], event(t, "worker-heartbeat", "a", 4, 0))
	if c := h.counts("montage:", 2, now, 0); c.completed != 3 || c.workers != 1 {
		t.Errorf("after a gap: %+v, want completed 3 and 1 live worker", c)
	}
	// Forgotten after workerForget: the next heartbeat is a new baseline.
	now = now.Add(workerForget + time.Second)
	h.counts("montage:", 2, now, 0)
	h.handle(chs[0], event(t, "worker-heartbeat", "a", 100, 0))
	if c := h.counts("montage:", 2, now, 0); c.completed != 3 {
		t.Errorf("after %s: completed %d, want still 3", workerForget, c.completed)
	}
}

// A heartbeat whose counts are negative is not one: it is dropped where it
// enters, and the worker keeps what its last good heartbeat said (the
// active sum never goes below 0, so the ask is never made smaller by it).
func TestAHeartbeatWithANegativeCountIsDroppedAndTheWorkerKeepsItsState(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	hbCh := heartbeatChannels("", 0)[0]
	now := t0
	h := newHeartbeats(nil, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	h.subscribed[hbCh] = t0
	h.handle(hbCh, event(t, "worker-heartbeat", "a", 10, 3))
	now = now.Add(time.Second)
	h.handle(hbCh, event(t, "worker-heartbeat", "a", 12, -5))
	h.handle(hbCh, event(t, "worker-heartbeat", "a", -1, 2))
	c := h.counts("", 0, now, 0)
	if c.active != 3 || c.completed != 0 || c.workers != 1 {
		t.Fatalf("after negative heartbeats: active %d, completed %d, workers %d; want 3, 0, 1 (the last good heartbeat's)", c.active, c.completed, c.workers)
	}
}
