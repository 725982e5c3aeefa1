package redisbroker

import (
	"reflect"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func TestAttributionCountsByQueueAndState(t *testing.T) {
	a := &attribution{}
	if !a.stepDue(t0, 5*time.Second) {
		t.Fatal("first poll: no step")
	}
	a.pendingCursor = 0
	a.addStep([]scanned{
		{tag: "fresh", queue: "video"},
		{tag: "old", queue: "video"},
		{tag: "eta-ahead", queue: "video", eta: t0.Add(time.Hour)},
		{tag: "eta-due", queue: "video", eta: t0.Add(-time.Second)},
		{tag: "acked-meanwhile", queue: "video"},
		{tag: "other", queue: "thumbs"},
		{tag: "unreadable"},
	}, []float64{unix(t0.Add(-time.Minute)), unix(t0.Add(-2 * time.Hour)), unix(t0), unix(t0.Add(-time.Minute)), 0, unix(t0), unix(t0)}, t0)
	got := a.count(t0, time.Hour)
	want := map[string]*queueCounts{"video": {unacked: 1, stale: 1, etaDue: 1, etaWaiting: 1}, "thumbs": {unacked: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("count = %v, want %v", got["video"], want["video"])
	}
	if a.stepDue(t0.Add(time.Second), 5*time.Second) {
		t.Error("a new pass started 1s after the last one")
	}
	if !a.stepDue(t0.Add(5*time.Second), 5*time.Second) {
		t.Error("no new pass 5s after the last one")
	}
}

func TestBacklogScalesTheAttributionToTheCurrentHashLength(t *testing.T) {
	tests := []struct {
		name          string
		hlen          int64
		wantInFlight  int64
		wantScaled    bool
		unattributed  int64
		sampled       int
		partialCursor uint64
	}{
		{"the hash as scanned", 4, 3, false, 0, 4, 0},
		{"the hash doubled since", 8, 6, true, 0, 4, 0},
		{"half of it acked since", 2, 2, true, 0, 4, 0}, // 1.5 rounds to 2
		{"nothing sampled but entries present", 3, 0, true, 3, 0, 0},
		{"a partial first pass", 40, 30, true, 0, 4, 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &attribution{}
			a.stepDue(t0, time.Second)
			a.pendingCursor = tt.partialCursor
			var step []scanned
			var scores []float64
			for i := range tt.sampled {
				q := "video"
				if i == 3 {
					q = "thumbs"
				}
				step = append(step, scanned{tag: string(rune('a' + i)), queue: q})
				scores = append(scores, unix(t0))
			}
			a.addStep(step, scores, t0)
			a.lastHLen = tt.hlen
			l := celery.DefaultLayout("video")
			bl := a.backlog(l, a.count(t0, time.Hour), nil, nil, nil)
			if bl.InFlight != tt.wantInFlight || bl.UnackedScaled != tt.wantScaled || bl.UnackedUnattributed != tt.unattributed ||
				bl.UnackedPartial != (tt.partialCursor != 0) || bl.UnackedTotal != tt.hlen || bl.UnackedSampled != int64(tt.sampled) {
				t.Errorf("backlog %+v; want InFlight %d, scaled %t, unattributed %d", bl, tt.wantInFlight, tt.wantScaled, tt.unattributed)
			}
		})
	}
}

func TestParseUnackedReadsKombusEntry(t *testing.T) {
	v := `[{"body": "W10=", "headers": {"task": "block", "eta": "2026-11-27T07:14:35.667527+00:00"}, "properties": {}}, "", "q2"]`
	q, eta, err := parseUnacked([]byte(v))
	if err != nil || q != "q2" || !eta.Equal(time.Date(2026, 11, 27, 7, 14, 35, 667527000, time.UTC)) {
		t.Errorf("parseUnacked = %q, %v, %v", q, eta, err)
	}
	if _, _, err := parseUnacked([]byte(`["x", ""]`)); err == nil || err.Error() != "unacked entry is not [message, exchange, routing_key]" {
		t.Errorf("two-element entry: %v", err)
	}
}
