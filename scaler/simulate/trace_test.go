package simulate

import (
	"strings"
	"testing"
	"time"
)

func TestReadTraceNamesTheBadRow(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"an empty file", "", "trace: empty: want a header time,tasks,requests[,service_seconds]"},
		{"a header without requests", "time,tasks\n", `trace: header has no "requests" column: want time,tasks,requests[,service_seconds]`},
		{"an unknown column", "time,tasks,requests,cpu\n", `trace: header column "cpu": want time, tasks, requests and optionally service_seconds and queue`},
		{"a single row", "time,tasks,requests\n2026-03-02T00:00:00Z,1,2\n", "trace: one row: the step is the gap between the first two rows, so a trace needs at least two"},
		{"a row off the step", "time,tasks,requests\n2026-03-02T00:00:00Z,1,2\n2026-03-02T00:01:00Z,1,2\n2026-03-02T00:03:00Z,1,2\n",
			"trace: line 4: time 2026-03-02T00:03:00Z breaks the step of 1m0s set by the first two rows: want 2026-03-02T00:02:00Z"},
		{"rows going backwards", "time,tasks,requests\n2026-03-02T00:01:00Z,1,2\n2026-03-02T00:00:00Z,1,2\n",
			"trace: line 3: time 2026-03-02T00:00:00Z is not after the first row's 2026-03-02T00:01:00Z: rows must go forward in equal steps"},
		{"a time that is not RFC3339", "time,tasks,requests\n2026-03-02 00:00,1,2\n", `trace: line 2: time "2026-03-02 00:00": want RFC3339, like 2026-03-02T18:00:00Z`},
		{"negative tasks", "time,tasks,requests\n2026-03-02T00:00:00Z,-1,2\n", `trace: line 2: tasks "-1": want a whole number from 0 to 1000000`},
		{"fractional tasks", "time,tasks,requests\n2026-03-02T00:00:00Z,1.5,2\n", `trace: line 2: tasks "1.5": want a whole number from 0 to 1000000`},
		{"requests that are not a number", "time,tasks,requests\n2026-03-02T00:00:00Z,1,many\n", `trace: line 2: requests "many": want a number from 0 to 1e9`},
		{"a zero service time", "time,tasks,requests,service_seconds\n2026-03-02T00:00:00Z,1,2,0\n", `trace: line 2: service_seconds "0": want seconds above 0 and at most 86400`},
		{"a step that is not whole seconds", "time,tasks,requests\n2026-03-02T00:00:00Z,1,2\n2026-03-02T00:00:00.5Z,1,2\n", "trace: line 3: step 500ms: want whole seconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestReadTraceReadsStepsAndServiceTimes(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("requests,time,tasks,service_seconds\n# comment\n850,2026-03-02T18:00:00+01:00,3,\n900,2026-03-02T18:05:00+01:00,0,12.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Step != 5*time.Minute || !tr.Start.Equal(time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC)) || len(tr.Rows) != 2 {
		t.Fatalf("trace %+v", tr)
	}
	if r := tr.Rows[0]; r.Tasks != 3 || r.Requests != 850 || r.Service != 9*time.Second {
		t.Errorf("row 0 %+v: want 3 tasks, 850 requests, the default 9s", r)
	}
	if r := tr.Rows[1]; r.Service != 12500*time.Millisecond {
		t.Errorf("row 1 service %s, want 12.5s", r.Service)
	}
	if !tr.End().Equal(time.Date(2026, 3, 2, 17, 10, 0, 0, time.UTC)) {
		t.Errorf("end %s", tr.End())
	}
}

func TestReadTraceReadsClassesAndQueues(t *testing.T) {
	in := "time,tasks,requests,service_seconds,queue\n" +
		"2026-03-02T18:00:00Z,50,100,2,thumbs\n" +
		"2026-03-02T18:00:00Z,3,0,60,renders\n" +
		"2026-03-02T18:01:00Z,10,100,2,thumbs\n"
	tr, err := ReadTrace(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Step != time.Minute || len(tr.Rows) != 2 || len(tr.Queues) != 2 || tr.Queues[1] != "renders" {
		t.Fatalf("trace %+v: want 2 steps of a minute, queues thumbs and renders", tr)
	}
	r := tr.Rows[0]
	if r.Tasks != 53 || r.Requests != 100 || len(r.Classes) != 2 || r.Classes[1] != (Class{Tasks: 3, Queue: 1, Service: time.Minute}) {
		t.Errorf("step 0 %+v: want 53 tasks in two classes, the renders in queue 1", r)
	}
	// Without a queue column, classes share the default queue.
	tr, err = ReadTrace(strings.NewReader("time,tasks,requests,service_seconds\n2026-03-02T18:00:00Z,50,100,2\n2026-03-02T18:00:00Z,3,0,60\n2026-03-02T18:01:00Z,0,0,2\n"))
	if err != nil || len(tr.Queues) != 1 || tr.Queues[0] != DefaultQueue || len(tr.Rows[0].Classes) != 2 {
		t.Fatalf("trace %+v, %v: want one queue %q with two classes", tr, err, DefaultQueue)
	}
}

// TestTwoQueuesAreServedInTurn: one slot, two renders queued before two
// thumbnails. In one queue the thumbnails wait for both renders (FIFO); in
// two queues the slot takes them in turn: the first thumbnail goes after
// the first render, then the second render.
func TestTwoQueuesAreServedInTurn(t *testing.T) {
	w := DefaultWorkload()
	w.Concurrency = 1
	mk := func(q1 int) []task {
		return []task{{arrive: 0.1, service: 60, start: -1, queue: 0}, {arrive: 0.2, service: 60, start: -1, queue: 0},
			{arrive: 0.3, service: 2, start: -1, queue: q1}, {arrive: 0.4, service: 2, start: -1, queue: q1}}
	}
	starts := func(queues int, tasks []task) []float64 {
		c := newCluster(w, tasks, queues, 1)
		for s := 0.0; s < 300; s++ {
			c.observe(s)
			c.dispatch(s)
		}
		var out []float64
		for _, t := range c.tasks {
			out = append(out, t.start)
		}
		return out
	}
	one := starts(1, mk(0))
	two := starts(2, mk(1))
	if one[2] != 120.1 || two[2] != 60.1 || two[1] != 62.1 {
		t.Errorf("one queue starts %v, two queues %v: want the first thumbnail at 120.1 s behind both renders in one queue, at 60.1 s (its queue's turn) in two", one, two)
	}
}
