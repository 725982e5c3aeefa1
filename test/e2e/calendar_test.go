//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// scenarioCalendar (issue 7, 2d): an event starting in 12 minutes with a
// 10-minute lead time, the queue empty: the replicas stay 0 until the lead
// window opens, then rise to the calendar's 4 before the event starts.
func scenarioCalendar(t *testing.T, e *env) {
	s := e.scenario(t, "calendar")
	r := servers.StartRedis(t)
	start := time.Now().Add(12 * time.Minute).Truncate(time.Second)
	const lead = 10 * time.Minute
	opens := start.Add(-lead)
	ics := strings.ReplaceAll(fmt.Sprintf(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//montage-scaler//e2e//EN
BEGIN:VEVENT
UID:e2e-launch@montage.test
DTSTAMP:%s
DTSTART:%s
DTEND:%s
SUMMARY:Launch stream
END:VEVENT
END:VCALENDAR
`, icsTime(time.Now()), icsTime(start), icsTime(start.Add(30*time.Minute))), "\n", "\r\n")
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(ics))
	}))
	t.Cleanup(feed.Close)

	port := s.startScaler(t, "scaler", "--calendar-allow-private").port()
	e.c.apply(t, deployment(s.ns, 0)+fmt.Sprintf(`---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: montage
  namespace: %s
spec:
  scaleTargetRef: {name: montage}
  pollingInterval: 5
  cooldownPeriod: 30
  minReplicaCount: 0
  maxReplicaCount: 8
  triggers:
    - type: external-push
      metadata:
        scalerAddress: 127.0.0.1:%d
        brokerURL: %s
        queues: celery
        calendarURL: %s/montage.ics
        calendarLeadTime: 10m
        calendarReplicas: "4"
`, s.ns, port, r.URL(0), feed.URL))
	tr := recordReplicas(t, e.c.client, s.ns, "montage")
	s.waitScaledObject(t, "montage")
	t.Logf("event at %s, lead window opens at %s", start.UTC().Format(time.TimeOnly), opens.UTC().Format(time.TimeOnly))

	upAt := tr.waitFor(t, time.Until(start), "reach 4 before the event", eq(4))
	ps := tr.snapshot()
	if got := values(ps); !equal(got, []int32{0, 1, 4}) {
		t.Fatalf("the replicas went %v, want [0 1 4] (KEDA's push at the lead window, then the HPA); trajectory: %s", got, tr)
	}
	// Seconds-precise event times and the same clock: nothing may rise
	// before the window opens.
	if rose := ps[1].at; rose.Before(opens.Add(-time.Second)) {
		t.Fatalf("replicas rose at %s, before the lead window opened at %s; trajectory: %s", rose.UTC().Format(time.TimeOnly), opens.UTC().Format(time.TimeOnly), tr)
	}
	if !upAt.Before(start) {
		t.Fatalf("replicas reached 4 at %s, not before the event at %s", upAt, start)
	}
	t.Logf("trajectory: %s (event at %s)", tr, start.UTC().Format(time.TimeOnly))
}

func icsTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }
