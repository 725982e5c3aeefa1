package simulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultServiceTime is a video task's mean service time (ADR baseline ~9 s).
const DefaultServiceTime = 9 * time.Second

// DefaultQueue is the queue of a trace row without a queue column.
const DefaultQueue = "celery"

// Row is one step of a trace.
type Row struct {
	// Start is when the step begins.
	Start time.Time
	// Tasks is how many video tasks arrive during the step (all classes).
	Tasks int
	// Requests is how many API requests arrive during the step.
	Requests float64
	// Service is the service time of the step's first class.
	Service time.Duration
	// Classes are the step's kinds of task: one per CSV row of the step
	// (rows repeating a time add classes to its step).
	Classes []Class
}

// Class is one kind of task in a step: how many arrive, into which queue
// (an index into Trace.Queues), and how long each runs.
type Class struct {
	Tasks   int
	Queue   int
	Service time.Duration
}

// Trace is a load trace: equal steps from Start.
type Trace struct {
	Start time.Time
	Step  time.Duration
	Rows  []Row
	// Queues are the queues the tasks arrive in, in order of first
	// appearance; [DefaultQueue] without a queue column.
	Queues []string
}

// End is when the last step ends.
func (t Trace) End() time.Time { return t.Start.Add(time.Duration(len(t.Rows)) * t.Step) }

// ReadTrace reads a CSV trace with the header time,tasks,requests and
// optionally service_seconds and queue (columns in any order). time is
// RFC3339 and starts a step; the step is the gap between the first two
// times and every row must keep it. A row repeating the previous row's time
// adds a class of tasks to that step (its own count, service time and
// queue; its requests add up): short thumbnails and long renders in one
// step. queue names the Celery queue the row's tasks go to (default
// celery). Errors name the line and the column.
func ReadTrace(r io.Reader) (Trace, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return Trace{}, errors.New("trace: empty: want a header time,tasks,requests[,service_seconds]")
	}
	if err != nil {
		return Trace{}, fmt.Errorf("trace: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch h {
		case "time", "tasks", "requests", "service_seconds", "queue":
		default:
			return Trace{}, fmt.Errorf("trace: header column %q: want time, tasks, requests and optionally service_seconds and queue", h)
		}
		if _, dup := col[h]; dup {
			return Trace{}, fmt.Errorf("trace: header column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range []string{"time", "tasks", "requests"} {
		if _, ok := col[need]; !ok {
			return Trace{}, fmt.Errorf("trace: header has no %q column: want time,tasks,requests[,service_seconds]", need)
		}
	}
	t := Trace{}
	queues := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Trace{}, fmt.Errorf("trace: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row, err := parseRow(rec, col)
		if err != nil {
			return Trace{}, fmt.Errorf("trace: line %d: %w", line, err)
		}
		q := DefaultQueue
		if i, ok := col["queue"]; ok && i < len(rec) && strings.TrimSpace(rec[i]) != "" {
			q = strings.TrimSpace(rec[i])
		}
		if _, ok := queues[q]; !ok {
			queues[q] = len(t.Queues)
			t.Queues = append(t.Queues, q)
		}
		row.Classes = []Class{{Tasks: row.Tasks, Queue: queues[q], Service: row.Service}}
		if n := len(t.Rows); n > 0 && row.Start.Equal(t.Rows[n-1].Start) {
			last := &t.Rows[n-1]
			last.Tasks += row.Tasks
			last.Requests += row.Requests
			last.Classes = append(last.Classes, row.Classes[0])
			continue
		}
		if err := t.keepsStep(row, line); err != nil {
			return Trace{}, err
		}
		t.Rows = append(t.Rows, row)
	}
	switch len(t.Rows) {
	case 0:
		return Trace{}, errors.New("trace: no rows after the header")
	case 1:
		return Trace{}, errors.New("trace: one row: the step is the gap between the first two rows, so a trace needs at least two")
	}
	return t, nil
}

// keepsStep says whether row, read at line, starts the next step of t.
func (t *Trace) keepsStep(row Row, line int) error {
	switch n := len(t.Rows); {
	case n == 0:
		t.Start = row.Start
	case n == 1:
		t.Step = row.Start.Sub(t.Rows[0].Start)
		if t.Step <= 0 {
			return fmt.Errorf("trace: line %d: time %s is not after the first row's %s: rows must go forward in equal steps",
				line, row.Start.Format(time.RFC3339), t.Start.Format(time.RFC3339))
		}
		if t.Step%time.Second != 0 {
			return fmt.Errorf("trace: line %d: step %s: want whole seconds", line, t.Step)
		}
	default:
		if want := t.Start.Add(time.Duration(n) * t.Step); !row.Start.Equal(want) {
			return fmt.Errorf("trace: line %d: time %s breaks the step of %s set by the first two rows: want %s",
				line, row.Start.Format(time.RFC3339), t.Step, want.Format(time.RFC3339))
		}
	}
	return nil
}

func parseRow(rec []string, col map[string]int) (Row, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var r Row
	var err error
	if r.Start, err = time.Parse(time.RFC3339, get("time")); err != nil {
		return r, fmt.Errorf("time %q: want RFC3339, like 2026-03-02T18:00:00Z", get("time"))
	}
	r.Start = r.Start.UTC()
	if r.Tasks, err = strconv.Atoi(get("tasks")); err != nil || r.Tasks < 0 || r.Tasks > 1_000_000 {
		return r, fmt.Errorf("tasks %q: want a whole number from 0 to 1000000", get("tasks"))
	}
	if r.Requests, err = strconv.ParseFloat(get("requests"), 64); err != nil || r.Requests < 0 || r.Requests > 1e9 || math.IsNaN(r.Requests) {
		return r, fmt.Errorf("requests %q: want a number from 0 to 1e9", get("requests"))
	}
	r.Service = DefaultServiceTime
	if v := get("service_seconds"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s > 0) || s > 86400 {
			return r, fmt.Errorf("service_seconds %q: want seconds above 0 and at most 86400", v)
		}
		r.Service = time.Duration(s * float64(time.Second))
	}
	return r, nil
}
