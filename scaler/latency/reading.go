package latency

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
)

// Reading is one latency observation with the current replicas, as Explain
// shows it (see MarshalJSON).
type Reading struct {
	Mode Mode
	// P95 in seconds; NaN when nothing was served in the window or nothing
	// matched.
	P95 float64
	// AtLeast: the P95 fell in the +Inf bucket and is the highest finite
	// bound, a lower bound of the truth.
	AtLeast bool
	Target  time.Duration
	// CurrentReplicas and where they came from: "--current-replicas",
	// "replicasQuery" or "kubernetes <resource>/<name> scale".
	CurrentReplicas int32
	ReplicasSource  string
	// Query and Series (its labels) in PromQL mode.
	Query  string
	Series string
	// Histogram, Window, Observations and Pods in scrape mode.
	Histogram    string
	Window       time.Duration
	Observations float64
	Pods         []PodStatus
	// Warnings and Infos from Prometheus or from the scrape.
	Warnings []string
	Infos    []string
}

// PodStatus is how one pod's scrape went.
type PodStatus struct {
	URL   string `json:"url"`
	Error string `json:"error,omitempty"`
	// Series is how many label sets of the family the pod exposes.
	Series int `json:"series"`
}

// NoSeriesWarning is the explanation of an empty PromQL result.
const NoSeriesWarning = "no series: the query matched nothing (a typo, or no traffic yet)"

// Evidence returns the reading in decide's plain terms.
func (r Reading) Evidence() decide.LatencyEvidence {
	w := append(append([]string{}, r.Warnings...), r.Infos...)
	return decide.LatencyEvidence{P95: r.P95, AtLeast: r.AtLeast, CurrentReplicas: float64(r.CurrentReplicas), Warnings: w}
}

// Opinion is decide.LatencyOpinion of this reading, the reading as detail.
// A reading the hub let through is always judged; the error is the second
// line of defence (a P95 or replica count that is not a reading).
func (r Reading) Opinion() (decide.Opinion, error) {
	o, err := decide.LatencyOpinion(r.Evidence(), r.Target, r)
	if err != nil {
		return decide.Opinion{}, fmt.Errorf("latency: %w", err)
	}
	return o, nil
}

// Opinion is the latency component's ask for a reading: current × p95 /
// latencyTarget while the P95 is above target (at most decide.Ceiling),
// else no opinion.
func Opinion(r Reading, _ time.Time) (decide.Opinion, error) { return r.Opinion() }

// Explanation says in one sentence what the reading means.
func (r Reading) Explanation() string {
	src := "PromQL"
	if r.Mode == ModeScrape {
		src = fmt.Sprintf("a direct scrape of %d pod(s) over %s", len(r.Pods), r.Window)
	}
	reps := fmt.Sprintf("%d current replicas (%s)", r.CurrentReplicas, r.ReplicasSource)
	switch {
	case math.IsNaN(r.P95):
		return fmt.Sprintf("no P95 from %s (no requests in the window, or no series): no opinion; %s", src, reps)
	case r.P95 <= r.Target.Seconds():
		return fmt.Sprintf("P95 %s from %s is within target %s: no opinion; %s", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps)
	}
	o, err := r.Opinion()
	switch {
	case err != nil:
		return fmt.Sprintf("P95 %s from %s is not a reading: %v; %s", fmtSeconds(r.P95, r.AtLeast), src, err, reps)
	case o.Desired == nil:
		return fmt.Sprintf("P95 %s from %s is above target %s but gives no opinion; %s", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps)
	case float64(max(r.CurrentReplicas, 1))*(r.P95/r.Target.Seconds()) > decide.Ceiling:
		return fmt.Sprintf("P95 %s from %s is above target %s: %s ask for more than the ceiling, so %d replicas", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps,
			decide.Ceiling)
	}
	return fmt.Sprintf("P95 %s from %s is above target %s: %s × %s = %s replicas", fmtSeconds(r.P95, r.AtLeast), src, r.Target, reps,
		decide.FormatReplicas(r.P95/r.Target.Seconds()), decide.FormatReplicas(*o.Desired))
}

func fmtSeconds(s float64, atLeast bool) string {
	v := strconv.FormatFloat(s, 'g', 4, 64) + " s"
	if atLeast {
		return "≥ " + v + " (the highest bound)"
	}
	return v
}

// MarshalJSON writes the reading for Explain; a NaN P95 is null.
func (r Reading) MarshalJSON() ([]byte, error) {
	var p95 *float64
	if !math.IsNaN(r.P95) && !math.IsInf(r.P95, 0) {
		p95 = &r.P95
	}
	out := struct {
		Mode            Mode        `json:"mode"`
		P95             *float64    `json:"p95Seconds"`
		AtLeast         bool        `json:"p95AtLeast,omitempty"`
		Target          float64     `json:"targetSeconds"`
		CurrentReplicas int32       `json:"currentReplicas"`
		ReplicasSource  string      `json:"replicasSource"`
		Query           string      `json:"query,omitempty"`
		Series          string      `json:"series,omitempty"`
		Histogram       string      `json:"histogram,omitempty"`
		Window          string      `json:"window,omitempty"`
		Observations    float64     `json:"observations,omitempty"`
		Pods            []PodStatus `json:"pods,omitempty"`
		Warnings        []string    `json:"warnings"`
		Infos           []string    `json:"infos"`
		Explanation     string      `json:"explanation"`
	}{r.Mode, p95, r.AtLeast, r.Target.Seconds(), r.CurrentReplicas, r.ReplicasSource, r.Query, r.Series,
		r.Histogram, "", r.Observations, r.Pods, nonNil(r.Warnings), nonNil(r.Infos), r.Explanation()}
	if r.Window > 0 {
		out.Window = r.Window.String()
	}
	return json.Marshal(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
