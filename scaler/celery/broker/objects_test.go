package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/source"
)

// scraped is objectMetrics at one scrape of objs, as a collector.
type scraped struct {
	m    *objectMetrics
	objs []source.ObjectReading
}

func (s scraped) Describe(ch chan<- *prometheus.Desc) { s.m.Describe(ch) }
func (s scraped) Collect(ch chan<- prometheus.Metric) { s.m.collect(s.objs, ch) }

// reading is media/worker's celery reading of b, fresh or not.
func reading(b celery.Backlog, fresh bool) source.ObjectReading {
	return source.ObjectReading{Namespace: "media", Name: "worker", Fresh: fresh,
		Reading: decide.Reading{Name: celery.Name, GoodAt: time.Unix(1, 0), Opinion: decide.Opinion{Detail: b}}}
}

func TestCeleryMetricsCountProcessedTasksOnceAcrossReadingsAndForgetThem(t *testing.T) {
	m := &objectMetrics{}
	expect := func(step string, objs []source.ObjectReading, queued, inFlight, processed string) {
		t.Helper()
		want := `
# HELP montage_scaler_celery_in_flight_tasks Celery tasks taken by a worker and not acknowledged, at the ScaledObject's latest reading (absent: no fresh reading).
# TYPE montage_scaler_celery_in_flight_tasks gauge
` + inFlight + `
# HELP montage_scaler_celery_queued_tasks Celery tasks waiting for a worker in the ScaledObject's queues, at its latest reading (absent: no fresh reading).
# TYPE montage_scaler_celery_queued_tasks gauge
` + queued + `
# HELP montage_scaler_celery_tasks_processed_total Tasks the Celery workers on the ScaledObject's broker completed, from their heartbeats' processed, counted while this replica watches the ScaledObject.
# TYPE montage_scaler_celery_tasks_processed_total counter
` + processed + "\n"
		if queued == "" && inFlight == "" && processed == "" {
			want = ""
		}
		if err := testutil.CollectAndCompare(scraped{m, objs}, strings.NewReader(want), "montage_scaler_celery_queued_tasks",
			"montage_scaler_celery_in_flight_tasks", "montage_scaler_celery_tasks_processed_total"); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	series := func(metric string, v int) string {
		return fmt.Sprintf(`%s{namespace="media",scaledobject="worker"} %d`, metric, v)
	}
	backlog := func(queued, inFlight, completed int64, counter string) []source.ObjectReading {
		return []source.ObjectReading{reading(celery.Backlog{Queued: queued, InFlight: inFlight, Completed: completed, CompletedSource: counter}, true)}
	}
	gauges := func(q, i, p int) (string, string, string) {
		return series("montage_scaler_celery_queued_tasks", q), series("montage_scaler_celery_in_flight_tasks", i),
			series("montage_scaler_celery_tasks_processed_total", p)
	}

	// The first sight of the poller's counter is the baseline: 500 tasks
	// done before this ScaledObject was watched are not its own.
	q, i, p := gauges(3, 2, 0)
	expect("baseline", backlog(3, 2, 500, "poller-1/"), q, i, p)
	q, i, p = gauges(1, 4, 4)
	expect("4 more", backlog(1, 4, 504, "poller-1/"), q, i, p)
	// The same counter read again (another scrape, or the newest source of
	// a changed metadata on the same broker): the tasks count once.
	expect("read again", backlog(1, 4, 504, "poller-1/"), q, i, p)
	q, i, p = gauges(0, 1, 10)
	expect("six more", backlog(0, 1, 510, "poller-1/"), q, i, p)

	// Another counter (the new metadata names another broker): its own
	// baseline, then its increases add up.
	q, i, p = gauges(0, 0, 10)
	expect("a second counter", backlog(0, 0, 70, "poller-2/"), q, i, p)
	q, i, p = gauges(0, 0, 13)
	expect("its increase", backlog(0, 0, 73, "poller-2/"), q, i, p)
	// A counter that went down started again: all it holds is new.
	q, i, p = gauges(0, 0, 15)
	expect("a restarted counter", backlog(0, 0, 2, "poller-2/"), q, i, p)

	// Past staleAfter the gauges go (no made-up value); the counter stays.
	stale := []source.ObjectReading{reading(celery.Backlog{Completed: 2, CompletedSource: "poller-2/"}, false)}
	_, _, p = gauges(0, 0, 15)
	expect("stale", stale, "", "", p)

	// No longer watched: every series goes with the ScaledObject, and its
	// counter starts again from its baseline if it comes back.
	expect("dropped", nil, "", "", "")
	q, i, p = gauges(0, 0, 0)
	expect("back", backlog(0, 0, 9, "poller-2/"), q, i, p)
}

func TestOldestWaitSeriesFollowTheQueuesOfTheLatestReading(t *testing.T) {
	m := &objectMetrics{}
	wait := func(v float64) *float64 { return &v }
	expect := func(step string, objs []source.ObjectReading, series string) {
		t.Helper()
		want := `
# HELP montage_scaler_celery_oldest_wait_seconds How long the oldest task of a queue has waited for a worker, at the ScaledObject's latest reading (0: none waits; absent: unknown).
# TYPE montage_scaler_celery_oldest_wait_seconds gauge
` + series
		if series == "" {
			want = ""
		}
		if err := testutil.CollectAndCompare(scraped{m, objs}, strings.NewReader(want), "montage_scaler_celery_oldest_wait_seconds"); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	queues := func(fresh bool, qs ...celery.QueueBacklog) []source.ObjectReading {
		return []source.ObjectReading{reading(celery.Backlog{Queued: 1, Queues: qs}, fresh)}
	}
	expect("both queues", queues(true, celery.QueueBacklog{Name: "render", OldestWaitSeconds: wait(95.5), WaitMethod: celery.WaitStamp},
		celery.QueueBacklog{Name: "thumbs", OldestWaitSeconds: wait(0)}),
		`montage_scaler_celery_oldest_wait_seconds{namespace="media",queue="render",scaledobject="worker"} 95.5
montage_scaler_celery_oldest_wait_seconds{namespace="media",queue="thumbs",scaledobject="worker"} 0
`)
	// A queue whose wait could not be read has no series (no made-up 0).
	expect("thumbs unknown", queues(true, celery.QueueBacklog{Name: "render", OldestWaitSeconds: wait(3)}, celery.QueueBacklog{Name: "thumbs"}),
		`montage_scaler_celery_oldest_wait_seconds{namespace="media",queue="render",scaledobject="worker"} 3
`)
	// Stale: every wait series goes.
	expect("stale", queues(false, celery.QueueBacklog{Name: "render", OldestWaitSeconds: wait(3)}), "")
}
