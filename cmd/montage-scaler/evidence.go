package main

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
)

// evidenceOf is a component's detail for people (`--format text`): short
// key=value words, and notes for what a word cannot say. JSON keeps the
// full form. It reads the detail as JSON shows it, so check (a component's
// own type) and explain (the Inspector's map) print the same words.
func evidenceOf(component string, detail any) (words, notes []string) {
	m := asMap(detail)
	if m == nil {
		return nil, nil
	}
	var w wordList
	switch component {
	case celery.Name:
		celeryWords(&w, m)
	case latency.Name:
		latencyWords(&w, m)
	case calendar.Name:
		calendarWords(&w, m)
	case forecast.Name:
		forecastWords(&w, m)
	default:
		genericWords(&w, m)
	}
	return w.words, w.notes
}

// asMap is detail as its JSON object; nil when it is none.
func asMap(detail any) map[string]any {
	if detail == nil {
		return nil
	}
	if m, ok := detail.(map[string]any); ok {
		return m
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

type wordList struct{ words, notes []string }

func (w *wordList) add(key, value string) { w.words = append(w.words, key+"="+value) }

func (w *wordList) note(s string) { w.notes = append(w.notes, s) }

func celeryWords(w *wordList, m map[string]any) {
	w.add("queued", count(m["queued"]))
	w.add("inFlight", count(m["inFlight"]))
	for _, k := range []string{"etaWaiting", "stale"} {
		if n, ok := m[k].(float64); ok && n > 0 {
			w.add(k, count(n))
		}
	}
	if queues, ok := m["queues"].([]any); ok && len(queues) > 1 {
		// Which queue the backlog is in, for the queues that have one.
		for _, q := range queues {
			qm, _ := q.(map[string]any)
			name, _ := qm["name"].(string)
			queued := num(qm["ready"]) + num(qm["stale"]) + num(qm["etaDue"])
			if queued > 0 {
				w.add(name+".queued", count(queued))
			}
			if n := num(qm["unacked"]); n > 0 {
				w.add(name+".inFlight", count(n))
			}
		}
	}
	if workers := num(m["heartbeatWorkers"]); workers > 0 {
		w.add("workers", count(workers))
		w.add("running", count(m["heartbeatActive"]))
	}
	if n := num(m["completed"]); n > 0 {
		w.add("completed", count(n))
	}
	if wait, ok := m["oldestWaitSeconds"].(float64); ok {
		v := seconds(wait)
		if method, _ := m["waitMethod"].(string); method != "" {
			v += "(" + method + ")"
		}
		w.add("oldestWait", v)
	}
	if target, ok := m["queueWaitTargetSeconds"].(float64); ok {
		w.add("waitTarget", seconds(target))
	}
	if ask, ok := m["waitAsk"].(float64); ok {
		w.add("waitAsk", decide.FormatReplicas(ask))
	}
	if flow, ok := m["flow"].(map[string]any); ok {
		flowWords(w, flow)
	}
	if scaled, _ := m["unackedScaled"].(bool); scaled && num(m["unackedTotal"]) > 0 {
		// The in-flight split by queue is scaled from a sample of the hash.
		w.add("unackedSampled", count(m["unackedSampled"])+"/"+count(m["unackedTotal"]))
	}
	if e, _ := m["waitError"].(string); e != "" {
		w.note("queue wait: " + e)
	}
}

// flowWords are the wait-based ask's figures: the rule that set the ask,
// the measured service time and arrivals, the drain time and the start-up
// it assumed, or why it fell back to the depth ask.
func flowWords(w *wordList, m map[string]any) {
	rule, _ := m["rule"].(string)
	w.add("rule", strings.ReplaceAll(rule, " ", ""))
	if v, ok := m["serviceSeconds"].(float64); ok {
		w.add("service", seconds(v))
	}
	if v, ok := m["arrivalsPerSecond"].(float64); ok {
		w.add("arrivals", strconv.FormatFloat(v, 'f', 2, 64)+"/s")
	}
	if v, ok := m["drainSeconds"].(float64); ok {
		w.add("drain", seconds(v))
	}
	w.add("podStartup", seconds(num(m["podStartupSeconds"])))
	if why, _ := m["fallback"].(string); why != "" {
		w.note("wait-based ask not used: " + why)
	}
}

func latencyWords(w *wordList, m map[string]any) {
	if mode, _ := m["mode"].(string); mode != "" {
		w.add("mode", mode)
	}
	p95 := "none"
	if v, ok := m["p95Seconds"].(float64); ok {
		p95 = seconds(v)
		if atLeast, _ := m["p95AtLeast"].(bool); atLeast {
			p95 = "≥" + p95
		}
	}
	w.add("p95", p95)
	if t, ok := m["targetSeconds"].(float64); ok {
		w.add("target", seconds(t))
	}
	replicas := count(m["currentReplicas"])
	if src, _ := m["replicasSource"].(string); src != "" {
		replicas += "(" + src + ")"
	}
	w.add("replicas", replicas)
	if pods, ok := m["pods"].([]any); ok {
		w.add("pods", strconv.Itoa(len(pods)))
	}
	if n := num(m["observations"]); n > 0 {
		w.add("requests", count(n))
	}
}

func calendarWords(w *wordList, m map[string]any) {
	inForce, _ := m["inForce"].([]any)
	if len(inForce) == 0 {
		w.add("inForce", "none")
	}
	for _, e := range inForce {
		em, _ := e.(map[string]any)
		w.add("event", strconv.Quote(str(em["summary"])))
		w.add("replicas", decide.FormatReplicas(num(em["replicas"])))
		w.add("until", str(em["until"]))
	}
	if next, ok := m["next"].(map[string]any); ok {
		w.add("next", strconv.Quote(str(next["summary"])))
		w.add("from", str(next["from"]))
	}
	if age, ok := m["feedAgeSeconds"].(float64); ok {
		w.add("feedAge", seconds(age))
	}
}

func forecastWords(w *wordList, m map[string]any) {
	w.add("mode", str(m["mode"]))
	w.add("slot", strconv.Quote(str(m["slot"])))
	w.add("history", strconv.FormatFloat(num(m["historyWeeks"]), 'f', 1, 64)+"w")
	if est, ok := m["estimate"].(float64); ok {
		w.add("estimate", decide.FormatReplicas(est))
	}
	if last, ok := m["lastWeek"].(map[string]any); ok {
		w.add("lastWeekOver", strconv.FormatFloat(num(last["over"]), 'f', 2, 64))
	}
	if next, ok := m["nextHour"].(float64); ok {
		w.add("nextHour", decide.FormatReplicas(next))
	}
	acting, _ := m["acting"].(bool)
	w.add("acting", strconv.FormatBool(acting))
	if silent := str(m["silent"]); silent != "" {
		w.note("silent: " + silent)
	}
}

// genericWords is the detail's top-level numbers, strings and booleans, for
// a component without words of its own.
func genericWords(w *wordList, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case float64:
			w.add(k, strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			w.add(k, strconv.FormatBool(v))
		case string:
			if k != "explanation" && v != "" {
				w.add(k, strconv.Quote(v))
			}
		}
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// count is a whole number as a person reads it.
func count(v any) string {
	return strconv.FormatFloat(num(v), 'f', -1, 64)
}

// seconds is a number of seconds as a Go duration (242.5ms, 12.3s, 1h0m0s);
// one too large for a duration stays in seconds.
func seconds(s float64) string {
	if math.IsNaN(s) || math.Abs(s) > 1e9 {
		return strconv.FormatFloat(s, 'g', 4, 64) + "s"
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Minute:
		d = d.Round(time.Second)
	case d >= time.Second:
		d = d.Round(100 * time.Millisecond)
	default:
		d = d.Round(100 * time.Microsecond)
	}
	return d.String()
}

// withoutPrefix is a component's error without the component's own name in
// front: the row already names it.
func withoutPrefix(name, err string) string {
	return strings.TrimPrefix(err, name+": ")
}
