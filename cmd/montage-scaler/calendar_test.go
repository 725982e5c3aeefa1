package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runWith runs the command with a fixed environment.
func runWith(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	code := run(t.Context(), args, env{stdout: &out, stderr: &errb, getenv: getenv})
	return code, out.String(), errb.String()
}

func TestCalendarReadsDeploysScaledObjectWithOnlyItsFeed(t *testing.T) {
	start := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	feed := httptestServer(t, icsWith(start, start.Add(time.Hour), "Upload session replicas=6"))
	so := filepath.Join("..", "..", "deploy", "autoscale", "scaledobject.yaml")
	// Only CALENDAR_URL is set: no CELERY_BROKER_URL, no PROMETHEUS_TOKEN,
	// and the trigger has no replicasQuery (the cluster finds the replicas).
	code, out, stderr := runWith(t, map[string]string{"CALENDAR_URL": feed + "/basic.ics"},
		"calendar", "--metadata", so, "--calendar-allow-private", "--at", "2026-12-05T12:00:00Z", "--days", "1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "Upload session replicas=6") {
		t.Fatalf("the event is not listed:\n%s", out)
	}
	if want := "montage-scaler calendar: reading spec.triggers[0] \"montage\" (external-push) of ScaledObject montage\n"; stderr != want {
		t.Fatalf("stderr %q, want %q", stderr, want)
	}

	// Without the feed's variable the calendar command says which one.
	code, _, stderr = runWith(t, nil, "calendar", "--metadata", so)
	want := `montage-scaler calendar: metadata "calendarURLFromEnv": bad value "CALENDAR_URL": names an environment variable of this command that is not set or empty`
	if code != exitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

func TestCalendarJSONNeverShowsANegativeAge(t *testing.T) {
	start := time.Date(2026, 11, 2, 18, 0, 0, 0, time.UTC)
	feed := httptestServer(t, icsWith(start, start.Add(time.Hour), "Upload session"))
	md := tempFile(t, "md.yaml", "calendarURL: "+feed+"/basic.ics\n")
	// The copy is fetched after --at (and after the real now a moment
	// later): it is fresh, 0 s old, not -0.006 s.
	for _, at := range []string{"2026-11-02T12:00:00Z", ""} {
		args := []string{"calendar", "--metadata", md, "--calendar-allow-private", "--format", "json"}
		if at != "" {
			args = append(args, "--at", at)
		}
		code, out, stderr := runWith(t, nil, args...)
		if code != exitOK || !strings.Contains(out, `"ageSeconds": 0,`) {
			t.Fatalf("--at %q: exit %d, want ageSeconds 0\n%s%s", at, code, out, stderr)
		}
	}
}
