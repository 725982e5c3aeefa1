package spec

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

// deployTrigger is deploy/autoscale's trigger as a command outside the
// cluster sees it: the broker's variable resolved, no replicasQuery.
func deployTrigger() map[string]string {
	return map[string]string{
		"scalerAddress": "montage-scaler.montage-scaler.svc.cluster.local:9090",
		"brokerURL":     "redis://redis:6379/0", "queues": "celery,video", "tasksPerReplica": "5",
		"prometheusURL": "http://prometheus:9090", "latencyQuery": "montage:http_request_duration_seconds:p95",
		"calendarURL": "https://calendar.example.org/basic.ics", "calendarLeadTime": "10m",
		"minReplicas": "1", "maxReplicas": "8",
	}
}

func TestAComponentsCommandNeverJudgesTheOthers(t *testing.T) {
	md := deployTrigger()
	md["prometheusBearerTokenFromEnv"] = "PROMETHEUS_TOKEN" // unresolved: the calendar never asks
	o := Options{Table: table, StaleAfter: time.Minute, Only: []string{"calendar"}}
	s, err := Parse(md, o)
	if err != nil {
		t.Fatalf("calendar only: %v", err)
	}
	if s.Calendar() == nil || s.Celery() != nil || s.Latency() != nil || s.Forecast() != nil {
		t.Fatalf("calendar only parsed %+v", s)
	}
	if len(s.Warnings) != 0 {
		t.Fatalf("the other components' keys are known, not typos: %q", s.Warnings)
	}
	// Without the calendar's keys, a calendar-only read has no component
	// and is no error: the command says what it misses.
	delete(md, "calendarURL")
	delete(md, "calendarLeadTime")
	if s, err := Parse(md, o); err != nil || s.Calendar() != nil {
		t.Fatalf("no calendar keys: %+v, %v", s, err)
	}
	// Read whole, the same trigger needs replicasQuery outside a cluster.
	if _, err := Parse(deployTrigger(), Options{Table: table, StaleAfter: time.Minute}); err == nil || !strings.Contains(err.Error(), `"replicasQuery"`) {
		t.Fatalf("all components: err = %v, want replicasQuery demanded", err)
	}
}

func TestAReplayNeedsNoAddress(t *testing.T) {
	cases := []struct {
		name string
		md   map[string]string
		want func(*Spec) bool
	}{
		{"a flat map with tasksPerReplica only configures celery", map[string]string{"tasksPerReplica": "2.5"},
			func(s *Spec) bool {
				return s.Celery() != nil && s.Celery().TasksPerReplica == 2.5 && s.Latency() == nil
			}},
		{"xFromEnv addresses are never resolved", map[string]string{"brokerURLFromEnv": "CELERY_BROKER_URL",
			"calendarURLFromEnv": "MONTAGE_CALENDAR_URL", "calendarLeadTime": "15m", "prometheusBearerTokenFromEnv": "T", "latencyTarget": "100ms"},
			func(s *Spec) bool {
				return s.Celery() != nil && s.Calendar() != nil && s.Calendar().LeadTime == 15*time.Minute && s.Calendar().URL.IsZero() &&
					s.Latency() != nil && s.Latency().Target == 100*time.Millisecond
			}},
		{"latencyQuery without prometheusURL is a PromQL latency", map[string]string{"latencyQuery": "x"},
			func(s *Spec) bool {
				return s.Latency() != nil && s.Latency().Mode == "promql" && s.Latency().PrometheusURL == ""
			}},
		{"a forecast needs no broker", map[string]string{"latencyTarget": "80ms", "forecastMode": "dry-run"},
			func(s *Spec) bool { return s.Forecast() != nil && s.Celery() == nil }},
		{"an unparsable broker URL is not read", map[string]string{"brokerURL": "not a url"},
			func(s *Spec) bool { return s.Celery() != nil }},
		{"no component is no error: the replay says what it misses", map[string]string{"minReplicas": "1"},
			func(s *Spec) bool { return s.Celery() == nil && s.Latency() == nil && s.Calendar() == nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.md, Options{Table: table, StaleAfter: time.Minute, ReplicaLookup: true, Replay: true})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(s) {
				t.Fatalf("spec %+v", s)
			}
			if len(s.Warnings) != 0 {
				t.Fatalf("warnings %q", s.Warnings)
			}
		})
	}
	// Settings are still judged.
	_, err := Parse(map[string]string{"tasksPerReplica": "five"}, Options{Table: table, Replay: true, StaleAfter: time.Minute})
	if err == nil || err.Error() != `metadata "tasksPerReplica": bad value "five": a number from 0.001 to 1e+06` {
		t.Fatalf("err = %v", err)
	}
}

func TestWantsSaysWhichKeysACommandResolves(t *testing.T) {
	cal := Options{Table: table, Only: []string{"calendar"}}
	replay := Options{Table: table, Replay: true}
	all := Options{Table: table}
	cases := []struct {
		key                string
		all, cal, replayed bool
	}{
		{"calendarURLFromEnv", true, true, false},
		{"brokerURLFromEnv", true, false, false},
		{"prometheusBearerTokenFromEnv", true, false, false},
		{"calendarLeadTime", true, true, true},
		{"tasksPerReplica", true, false, true},
		{"minReplicas", true, true, true},
		{"someTypoFromEnv", true, true, false},
	}
	for _, tc := range cases {
		if got := [3]bool{all.Wants(tc.key), cal.Wants(tc.key), replay.Wants(tc.key)}; got != [3]bool{tc.all, tc.cal, tc.replayed} {
			t.Errorf("%s: all, calendar, replay = %v, want %v", tc.key, got, [3]bool{tc.all, tc.cal, tc.replayed})
		}
	}
}

// TestKnownKeysListEveryKeyTheParsersRead parses metadata that configures
// every component and holds the keys the parsers asked for against
// KnownKeys: a key a component reads but does not list would be reported
// unknown by a command that skips that component.
func TestKnownKeysListEveryKeyTheParsersRead(t *testing.T) {
	md := deployTrigger()
	md["replicasQuery"] = "1"
	md["forecastMode"] = "dry-run"
	m := meta.New(md)
	if _, err := parse(m, Options{Table: table, StaleAfter: time.Minute}); err != nil {
		t.Fatal(err)
	}
	known := KnownKeys(table)
	for _, k := range m.Asked() {
		base, _ := strings.CutSuffix(k, "FromEnv")
		if !slices.Contains(known, base) {
			t.Errorf("the parsers read %q, which no component's Keys lists", k)
		}
	}
}

// forecastTimezone defaults to calendarTimezone also for a command that
// reads only the celery and forecast components (`forecast`), and for a
// trigger whose feed is not set: the creators' zone is the same.
func TestTheForecastZoneDefaultsToCalendarTimezoneWhereverItIsRead(t *testing.T) {
	md := map[string]string{"brokerURL": "redis://b:6379/0", "forecastMode": "dry-run", "calendarTimezone": "W. Europe Standard Time",
		"calendarURL": "https://cal.example.com/a.ics"}
	for name, o := range map[string]Options{
		"every component":          {Table: table, StaleAfter: time.Minute},
		"celery and forecast only": {Table: table, StaleAfter: time.Minute, Only: []string{"celery", "forecast"}},
	} {
		s, err := Parse(md, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if z := s.Forecast().Zone.String(); z != "Europe/Berlin" {
			t.Errorf("%s: forecast zone %s, want Europe/Berlin", name, z)
		}
	}
	_, err := Parse(map[string]string{"brokerURL": "redis://b:6379/0", "forecastMode": "dry-run", "calendarTimezone": "Mars/Olympus"},
		Options{Table: table, StaleAfter: time.Minute, Only: []string{"celery", "forecast"}})
	if err == nil || !strings.Contains(err.Error(), `metadata "calendarTimezone": bad value "Mars/Olympus"`) {
		t.Errorf("a bad calendarTimezone read for the forecast: %v", err)
	}
}
