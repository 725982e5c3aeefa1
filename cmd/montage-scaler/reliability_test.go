package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/test/servers"
)

// switchableFeed serves body while ok is set, else 404.
func switchableFeed(t *testing.T, body string) (url string, ok *atomic.Bool) {
	t.Helper()
	ok = &atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ok.Load() {
			http.NotFound(w, nil)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ok
}

// metricLine returns the /metrics lines that start with prefix.
func metricLines(t *testing.T, p *scalerProc, prefix string) []string {
	t.Helper()
	_, body := p.get(t, "/metrics")
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// The fault probe's case: a calendar feed that answers 404 when the scaler
// first sees the ScaledObject. The queue and the other components decide
// at once (no Unavailable for the refresh interval), Explain, the log and
// a metric say loudly that the calendar has no copy, the feed is retried
// within seconds, and its event counts as soon as it is fixed.
func TestACalendarFailingAtStartLeavesTheOtherComponentsDeciding(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	push(t, rdb, "video", 12)
	now := time.Now()
	feed, feedOK := switchableFeed(t, icsWith(now.Add(-time.Hour), now.Add(time.Hour), "Upload session replicas=6"))
	p := startServe(t, "--calendar-allow-private")
	const secret = "private-s3cr3tT0ken42"
	r := ref(rs.URL(0), "calendarURL", feed+"/"+secret+"/basic.ics", "maxReplicas", "8")

	wantMetric(t, p, r, 2.4) // 12 tasks / 5
	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	cal := e.GetComponents()[1]
	if cal.GetName() != "calendar" || cal.DesiredReplicas != nil || cal.GetStale() || !strings.Contains(cal.GetError(), "HTTP status 404") ||
		strings.Join(cal.GetWarnings(), "|") != decide.NoGoodReadingWarning {
		t.Fatalf("calendar component = %v", cal)
	}
	if w := strings.Join(e.GetWarnings(), "|"); !strings.Contains(w, "calendar has no good reading yet (calendar: fetch http://") || !strings.Contains(w, "HTTP status 404): decided without it") {
		t.Fatalf("warnings = %q", e.GetWarnings())
	}
	if got := metricLines(t, p, "montage_scaler_calendar_has_copy"); len(got) != 1 || !strings.HasSuffix(got[0], "} 0") {
		t.Fatalf("has_copy = %q, want one series at 0", got)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, `"msg":"read failing; no good reading yet","component":"calendar","feed":"http://`) || strings.Contains(logs, "keeping the last good") {
		t.Fatalf("logs do not say there is no copy:\n%s", logs)
	}

	feedOK.Store(true)
	wantMetric(t, p, r, 6)
	if got := metricLines(t, p, "montage_scaler_calendar_has_copy"); len(got) != 1 || !strings.HasSuffix(got[0], "} 1") {
		t.Fatalf("has_copy = %q after the first copy, want 1", got)
	}
	if all := p.logs.String() + e.String() + fmt.Sprint(metricLines(t, p, "montage_scaler_calendar")); strings.Contains(all, secret) {
		t.Fatal("the feed's secret path shows in logs, Explain or metrics")
	}
}
