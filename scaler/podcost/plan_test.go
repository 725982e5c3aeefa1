package podcost

import (
	"strings"
	"testing"

	"github.com/montage/montage-scaler/scaler/celery"
)

func wl(host string, active int64) celery.WorkerLoad {
	return celery.WorkerLoad{Hostname: host, Active: active}
}

// costs prints a plan's pods as name=cost (- for none) and a * when written.
func costs(p Plan) string {
	var b strings.Builder
	for _, w := range p.Pods {
		c := "-"
		if w.Cost != nil {
			c = string(rune('0' + *w.Cost))
		}
		b.WriteString(w.Pod + "=" + c)
		if w.Write {
			b.WriteString("*")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

func TestBuild(t *testing.T) {
	pods := []Pod{{Name: "a"}, {Name: "b"}, {Name: "c", Cost: "2", Ours: true}, {Name: "d", Cost: "7"}, {Name: "e", Deleting: true}}
	workers := []celery.WorkerLoad{wl("celery@a", 0), wl("celery@b", 3), wl("celery@c", 2), wl("celery@e", 5)}
	cases := []struct {
		name             string
		desired          float64
		current          int32
		workers          []celery.WorkerLoad
		pods             []Pod
		want, warningHas string
	}{
		{"below: busy pods cost their running tasks, idle ones none; a cost already ours is not written again",
			2, 5, workers, pods, "a=- b=3* c=2 d=- e=-", ""},
		{"a fraction the HPA rounds up to the current replicas is not below", 4.2, 5, workers, pods, "a=- b=- c=-* d=- e=-", ""},
		{"not below: ours cleared, someone else's left alone", 5, 5, workers, pods, "a=- b=- c=-* d=- e=-", ""},
		{"a busy pod with someone else's cost gets ours", 1, 2, []celery.WorkerLoad{wl("celery@d", 1)}, []Pod{{Name: "d", Cost: "7"}}, "d=1*", ""},
		{"a pod whose worker is silent costs nothing", 1, 2, []celery.WorkerLoad{wl("celery@a", 1)}, []Pod{{Name: "a"}, {Name: "z", Cost: "4", Ours: true}}, "a=1* z=-*", ""},
		{"workers that match no pod: a warning and no write", 1, 3, []celery.WorkerLoad{wl("worker1@node-7", 2)}, []Pod{{Name: "a"}, {Name: "b", Cost: "1", Ours: true}},
			"a=- b=-", "run the workers with hostname celery@<pod name>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Build(tc.desired, tc.current, tc.workers, tc.pods)
			if got := costs(p); got != tc.want {
				t.Errorf("costs %q, want %q", got, tc.want)
			}
			if !strings.Contains(p.Warning, tc.warningHas) || (tc.warningHas == "") != (p.Warning == "") {
				t.Errorf("warning %q, want one with %q", p.Warning, tc.warningHas)
			}
			for _, w := range p.Pods {
				if w.Why == "" {
					t.Errorf("pod %s: no reason", w.Pod)
				}
			}
		})
	}
}

func TestPodOf(t *testing.T) {
	for host, want := range map[string]string{"celery@montage-7c9f-x2": "montage-7c9f-x2", "montage-1": "montage-1", "w@a@b": "a@b"} {
		if got := podOf(host); got != want {
			t.Errorf("podOf(%q) = %q, want %q", host, got, want)
		}
	}
}
