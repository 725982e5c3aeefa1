package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

var parseOpts = Options{StaleAfter: 2 * time.Minute}

func TestParseSpecDefaults(t *testing.T) {
	s, err := Parse(map[string]string{"brokerURL": "redis://10.0.0.5:6379/2", "scalerAddress": "x:9090"}, parseOpts)
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricName != "montage-desired-replicas" || s.Policy.Min != 0 || s.Policy.Max != nil || s.Policy.StaleAfter != 2*time.Minute {
		t.Fatalf("defaults: %+v", s)
	}
	l := s.Celery.Layout
	if strings.Join(l.Queues, ",") != "celery" || s.Celery.TasksPerReplica != 5 || !l.AcksLate || l.VisibilityTimeout != time.Hour || l.Separator != "\x06\x16" {
		t.Fatalf("celery defaults: %+v, tasksPerReplica %v", l, s.Celery.TasksPerReplica)
	}
	if len(s.Warnings) != 0 {
		t.Fatalf("KEDA's own scalerAddress must not warn: %q", s.Warnings)
	}
}

func TestParseSpecReadsEveryKey(t *testing.T) {
	s, err := Parse(map[string]string{
		"brokerURL": "redis://:pw@h:6380/1", "queues": "video, celery", "tasksPerReplica": "2.5",
		"minReplicas": "1", "maxReplicas": "8", "metricName": "montage-jobs", "staleAfter": "90",
		"acksLate": "false", "keyPrefix": "montage:", "visibilityTimeout": "30m",
	}, parseOpts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy.Min != 1 || *s.Policy.Max != 8 || s.Policy.StaleAfter != 90*time.Second || s.MetricName != "montage-jobs" {
		t.Fatalf("policy: %+v %q", s.Policy, s.MetricName)
	}
	l := s.Celery.Layout
	if strings.Join(l.Queues, ",") != "celery,video" || l.AcksLate || l.KeyPrefix != "montage:" || l.VisibilityTimeout != 30*time.Minute || s.Celery.TasksPerReplica != 2.5 {
		t.Fatalf("layout: %+v", l)
	}
}

func TestParseSpecErrorsNameKeyAndValue(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"brokerURL": "redis://127.0.0.1:6379/0"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"no source at all", map[string]string{"minReplicas": "1"},
			`metadata "brokerURL": no source is configured: set brokerURL (or brokerURLFromEnv), prometheusURL or metricsURLs, or calendarURL (or calendarURLFromEnv); KEDA drops a xFromEnv key when the container's variable is empty`},
		{"a word for minReplicas", base("minReplicas", "one"),
			`metadata "minReplicas": bad value "one": a number from 0 to 10000`},
		{"maxReplicas below minReplicas", base("minReplicas", "3", "maxReplicas", "2"),
			`metadata "maxReplicas": bad value "2": must not be below minReplicas (3)`},
		{"a negative staleAfter", base("staleAfter", "-5s"),
			`metadata "staleAfter": bad value "-5s": a positive Go duration such as 90s or 1h, or a bare number of seconds`},
		{"a metricName KEDA cannot carry", base("metricName", "desired replicas!"),
			`metadata "metricName": bad value "desired replicas!": letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 182 characters`},
		{"both brokerURL and brokerURLFromEnv", base("brokerURLFromEnv", "redis://:s3cret@h:6379"),
			`metadata "brokerURL": bad value "redis://127.0.0.1:6379/0": set "brokerURL" or "brokerURLFromEnv", not both`},
		{"a NaN tasksPerReplica", base("tasksPerReplica", "NaN"),
			`metadata "tasksPerReplica": bad value "NaN": a number from 0.001 to 1e+06`},
		{"an unknown forecastTimezone", base("forecastMode", "dry-run", "forecastTimezone", "Mars/Olympus_Mons"),
			`metadata "forecastTimezone": bad value "Mars/Olympus_Mons": an IANA time zone such as Europe/Berlin (or a Windows zone name such as W. Europe Standard Time)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.md, parseOpts)
			if err == nil {
				t.Fatal("want an error")
			}
			if !meta.IsError(err) {
				t.Fatalf("%v is not a metadata error (would not be InvalidArgument)", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseSpecNeverPrintsTheBrokerPassword(t *testing.T) {
	for _, md := range []map[string]string{
		{"brokerURL": "redis://:s3cret@h:notaport/0"},
		{"brokerURL": "redis://user:s3cret@h:6379/0", "brokerURLFromEnv": "x"},
		{"brokerURL": "rediss://:s3cret@h:6379/0?ssl_cert_reqs=maybe"},
		{"brokerURL": "ftp://:s3cret@h/"},
	} {
		_, err := Parse(md, parseOpts)
		if err == nil {
			t.Fatalf("%v: want an error", md)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func TestParseSpecWarnsAboutUnknownKeys(t *testing.T) {
	s, err := Parse(map[string]string{"brokerURL": "redis://h:6379", "taskPerReplica": "3", "enableTLS": "false"}, parseOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 1 || s.Warnings[0] != `unknown key "taskPerReplica" (did you mean "tasksPerReplica"?)` {
		t.Fatalf("warnings = %q", s.Warnings)
	}
	if len(s.Unknown) != 1 || s.Unknown[0] != "taskPerReplica" {
		t.Fatalf("unknown = %q", s.Unknown)
	}
}

func TestUnknownKeysSuggestTheNearestKnownKey(t *testing.T) {
	cases := []struct{ key, want string }{
		{"tasksPerReplca", `unknown key "tasksPerReplca" (did you mean "tasksPerReplica"?)`},
		{"brokerUrl", `unknown key "brokerUrl" (did you mean "brokerURL"?)`},
		{"queue", `unknown key "queue" (did you mean "queues"?)`},
		{"calendarURLFromENV", `unknown key "calendarURLFromENV" (did you mean "calendarURLFromEnv"?)`},
		{"latencytarget", `unknown key "latencytarget" (did you mean "latencyTarget"?)`},
		{"colour", `unknown key "colour" (no component reads it; ignored)`},
	}
	for _, tc := range cases {
		s, err := Parse(map[string]string{"brokerURL": "redis://h:6379", tc.key: "1"}, parseOpts)
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if len(s.Warnings) != 1 || s.Warnings[0] != tc.want {
			t.Errorf("%s: warnings %q, want %q", tc.key, s.Warnings, tc.want)
		}
	}
}

func TestMetadataKeyIsCanonical(t *testing.T) {
	a := Key(map[string]string{"a": "1", "b": "2"})
	b := Key(map[string]string{"b": "2", "a": "1"})
	c := Key(map[string]string{"a": "12", "b": ""})
	if a != b || a == c {
		t.Fatalf("keys: %q %q %q", a, b, c)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add("redis://:pw@h:6379/0", "celery,video", "5", "1", "8", "2m", "0,3,6,9", `\x06\x16`)
	f.Add("sentinel://a:26379;sentinel://b:26379/1", "", "0", "", "", "", "", "")
	f.Add("redis+socket:///tmp/r.sock?virtual_host=3", ",", "1e309", "-1", "NaN", "1e400", "9,3", `\x`)
	f.Fuzz(func(t *testing.T, broker, queues, per, min, max, stale, steps, sep string) {
		md := map[string]string{"brokerURL": broker, "queues": queues, "tasksPerReplica": per,
			"minReplicas": min, "maxReplicas": max, "staleAfter": stale, "prioritySteps": steps, "prioritySeparator": sep}
		s, err := Parse(md, parseOpts)
		if err != nil {
			if !meta.IsError(err) {
				t.Fatalf("error is not a metadata error: %v", err)
			}
			return
		}
		if s.Celery == nil || s.Celery.TasksPerReplica <= 0 || s.Policy.StaleAfter <= 0 {
			t.Fatalf("accepted a spec that cannot work: %+v", s)
		}
		if s.Policy.Max != nil && *s.Policy.Max < s.Policy.Min {
			t.Fatalf("max %v below min %v", *s.Policy.Max, s.Policy.Min)
		}
	})
}

func TestTheForecastsWeeksFollowTheCalendarsZoneUnlessTold(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string]string
		want string
	}{
		{"without a calendar: UTC", map[string]string{}, "UTC"},
		{"with a calendar: calendarTimezone", map[string]string{"calendarURL": "https://example.com/c.ics", "calendarTimezone": "America/New_York"}, "America/New_York"},
		{"forecastTimezone wins", map[string]string{"calendarURL": "https://example.com/c.ics", "calendarTimezone": "America/New_York",
			"forecastTimezone": "Europe/Berlin"}, "Europe/Berlin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"brokerURL": "redis://127.0.0.1:6379/0", "forecastMode": "dry-run"}
			for k, v := range tc.md {
				md[k] = v
			}
			s, err := Parse(md, parseOpts)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Forecast.Zone.String(); got != tc.want || len(s.Warnings) != 0 {
				t.Errorf("zone %s (warnings %q), want %s", got, s.Warnings, tc.want)
			}
		})
	}
}
