package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// TestREADMEHasTheExitStatusTable: README's table is the one the commands'
// -h print from (exitTable).
func TestREADMEHasTheExitStatusTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := exitTableMarkdown(); !strings.Contains(string(b), "\n"+want+"\n") {
		t.Fatalf("README.md lacks the exit status table, or it drifted; want:\n%s", want)
	}
}

// missingFeed serves 404 for every path, as a deleted calendar does.
func missingFeed(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.URL + "/basic.ics"
}

// TestEveryCommandsExitStatusIsTheTables holds each command to README's
// exit status table, one case per status (report's 0 is proven against a
// real Prometheus by TestReportMeasuresWhatSimulatePredicted, serve's 0 by
// the signal tests and its 1 by TestServeSaysWhichPortIsTakenOnce).
func TestEveryCommandsExitStatusIsTheTables(t *testing.T) {
	rs := servers.StartRedis(t)
	feed := missingFeed(t)
	traces := filepath.Join("..", "..", "examples", "traces")
	live := tempFile(t, "live.yaml", "brokerURL: "+rs.URL(0)+"\n")
	deadFeed := tempFile(t, "dead-feed.yaml", "calendarURL: "+feed+"\n")
	liveAndDeadFeed := tempFile(t, "both.yaml", "brokerURL: "+rs.URL(0)+"\ncalendarURL: "+feed+"\n")
	down := tempFile(t, "down.yaml", "brokerURL: redis://127.0.0.1:1/0\n")
	bad := tempFile(t, "bad.yaml", "brokerURL: "+rs.URL(0)+"\nmaxReplicas: lots\n")
	okFeed := tempFile(t, "ok-feed.yaml", "calendarURL: "+httptestServer(t, icsWith(mustTime(t, "2026-12-05T18:00:00Z"), mustTime(t, "2026-12-05T19:00:00Z"), "Live"))+"/basic.ics\n")
	forecastDown := tempFile(t, "forecast.yaml", "brokerURL: redis://127.0.0.1:1/0\nforecastMode: dry-run\n")
	p := startServe(t, "--calendar-allow-private")

	for _, tc := range []struct {
		name string
		args []string
		want int
		// stderr, when set, is a line stderr must hold.
		stderr string
	}{
		{"check: every component read", []string{"check", "--metadata", live}, exitOK, ""},
		{"check: the only source, a calendar, is a 404", []string{"check", "--metadata", deadFeed, "--calendar-allow-private"}, exitDegraded,
			"montage-scaler check: decided, but calendar failed (its error is in the output): exit status 3\n"},
		{"check: the broker read, the calendar a 404", []string{"check", "--metadata", liveAndDeadFeed, "--calendar-allow-private"}, exitDegraded, ""},
		{"check: the broker down", []string{"check", "--metadata", down, "--timeout", "2s"}, exitNoDecision, ""},
		{"check: bad metadata", []string{"check", "--metadata", bad}, exitUsage, `metadata "maxReplicas"`},
		{"explain: every component read", []string{"explain", "--addr", p.grpcAddr, "--metadata", live}, exitOK, ""},
		{"explain: the calendar a 404", []string{"explain", "--addr", p.grpcAddr, "--metadata", liveAndDeadFeed}, exitDegraded,
			"montage-scaler explain: decided, but calendar failed (its error is in the output): exit status 3\n"},
		{"explain: no server", []string{"explain", "--addr", "127.0.0.1:1", "--metadata", live, "--timeout", "2s"}, exitNoDecision, ""},
		{"explain: the server refuses the metadata", []string{"explain", "--addr", p.grpcAddr, "--metadata", bad}, exitUsage, `metadata "maxReplicas"`},
		{"calendar: listed", []string{"calendar", "--metadata", okFeed, "--calendar-allow-private", "--at", "2026-12-05T12:00:00Z"}, exitOK, ""},
		{"calendar: a 404", []string{"calendar", "--metadata", deadFeed, "--calendar-allow-private"}, exitNoDecision, "404"},
		{"calendar: no feed", []string{"calendar", "--metadata", live}, exitUsage, "no calendarURL"},
		{"simulate: printed", []string{"simulate", "--trace", filepath.Join(traces, "idle-night.csv"), "--metadata", filepath.Join(traces, "md.yaml")}, exitOK, ""},
		{"simulate: the plot not written", []string{"simulate", "--trace", filepath.Join(traces, "idle-night.csv"), "--metadata", filepath.Join(traces, "md.yaml"),
			"--plot", filepath.Join(t.TempDir(), "no-such-dir", "plot.svg")}, exitNoDecision, "--plot"},
		{"simulate: no trace", []string{"simulate", "--metadata", filepath.Join(traces, "md.yaml")}, exitUsage, "--trace"},
		{"forecast: a trace replayed", []string{"forecast", "--metadata", filepath.Join(traces, "md.yaml"), "--trace", filepath.Join(traces, "idle-night.csv")}, exitOK, ""},
		{"forecast: the broker down", []string{"forecast", "--metadata", forecastDown, "--namespace", "a", "--name", "b", "--timeout", "2s"}, exitNoDecision, ""},
		{"forecast: no metadata", []string{"forecast"}, exitUsage, "--metadata FILE is required"},
		{"report: Prometheus down", []string{"report", "--prometheus", "http://127.0.0.1:1", "--until", "2026-03-03T00:00:00Z"}, exitNoDecision, "unreachable"},
		{"report: no --prometheus", []string{"report"}, exitUsage, "--prometheus URL is required"},
		{"serve: a bad flag", []string{"serve", "--poll-interval", "often"}, exitUsage, "--poll-interval"},
		{"version", []string{"version"}, exitOK, ""},
		{"no command", nil, exitUsage, "usage: montage-scaler <command>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runWith(t, nil, tc.args...)
			if code != tc.want || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("%v: exit %d, want %d (stderr holding %q)\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.want, tc.stderr, out, stderr)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
