package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
)

// TestTextRoundsEveryReplicaCountOneWayAndJSONKeepsThemWhole: a P95 of
// 242.5 ms against 80 ms with 2 replicas asks for exactly 6.0625 replicas,
// clamped to 5. People see 6.063 wherever that number appears; JSON has
// 6.0625.
func TestTextRoundsEveryReplicaCountOneWayAndJSONKeepsThemWhole(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	r := latency.Reading{Mode: latency.ModePromQL, P95: 0.2425, Target: 80 * time.Millisecond, CurrentReplicas: 2, ReplicasSource: "--current-replicas"}
	o, err := r.Opinion()
	if err != nil {
		t.Fatal(err)
	}
	d := decide.Decide(now, decide.Policy{Max: decide.Ptr(5), StaleAfter: time.Minute},
		[]decide.Reading{{Name: decide.Latency, Opinion: o, GoodAt: now}})

	var text bytes.Buffer
	if err := writeText(&text, d); err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(`6\.06\d*`).FindAllString(text.String(), -1)
	if len(shown) != 3 || strings.Join(shown, " ") != "6.063 6.063 6.063" {
		t.Fatalf("6.0625 shown as %q (want 6.063 in the clamp warning, the ask and the explanation):\n%s", shown, text.String())
	}

	var js bytes.Buffer
	if err := writeJSON(&js, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"desiredReplicas": 6.0625,`) {
		t.Fatalf("JSON lost precision:\n%s", js.String())
	}
}
