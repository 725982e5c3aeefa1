package spec

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/meta"
)

var parseOpts = Options{Table: table, StaleAfter: 2 * time.Minute}

func TestParseSpecDefaults(t *testing.T) {
	s, err := Parse(map[string]string{"brokerURL": "redis://10.0.0.5:6379/2", "scalerAddress": "x:9090"}, parseOpts)
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricName != "montage-desired-replicas" || s.Policy.Min != 0 || s.Policy.Max != nil || s.Policy.StaleAfter != 2*time.Minute {
		t.Fatalf("defaults: %+v", s)
	}
	l := s.Celery().Layout
	if strings.Join(l.Queues, ",") != "celery" || s.Celery().TasksPerReplica != 5 || !l.AcksLate || l.VisibilityTimeout != time.Hour || l.Separator != "\x06\x16" {
		t.Fatalf("celery defaults: %+v, tasksPerReplica %v", l, s.Celery().TasksPerReplica)
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
	l := s.Celery().Layout
	if strings.Join(l.Queues, ",") != "celery,video" || l.AcksLate || l.KeyPrefix != "montage:" || l.VisibilityTimeout != 30*time.Minute || s.Celery().TasksPerReplica != 2.5 {
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

// Every URL-valued key (brokerURL, prometheusURL, metricsURLs, calendarURL)
// is redacted in every error, whatever made it bad: its scheme, a missing
// host, both the key and its FromEnv twin set.
func TestEveryURLValuedKeyIsRedactedInEveryError(t *testing.T) {
	const secret = "s3cr3tT0ken1234"
	promQ := func(kv ...string) map[string]string {
		m := map[string]string{"latencyQuery": "up", "replicasQuery": "1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name, key string
		md        map[string]string
	}{
		{"a calendar feed on ftp", "calendarURL", map[string]string{"calendarURL": "ftp://cal.example/private-" + secret + "/basic.ics"}},
		{"a calendar feed with no host", "calendarURL", map[string]string{"calendarURL": "https:///" + secret + "/basic.ics"}},
		{"a calendar feed in both keys", "calendarURL", map[string]string{"calendarURL": "https://cal.example/" + secret + "/basic.ics", "calendarURLFromEnv": "https://cal.example/" + secret + "/b.ics"}},
		{"a calendar token in the query", "calendarURL", map[string]string{"calendarURL": "gopher://cal.example/x.ics?t=" + secret}},
		{"a Prometheus token in the path, on ftp", "prometheusURL", promQ("prometheusURL", "ftp://prom/t/"+secret+"/")},
		{"a Prometheus token in the query, no host", "prometheusURL", promQ("prometheusURL", "http:///api?x="+secret)},
		{"a Prometheus URL in both keys", "prometheusURL", promQ("prometheusURL", "http://prom/t/"+secret, "prometheusURLFromEnv", "http://prom/t/"+secret)},
		{"scrape URLs beside a query", "metricsURLs", promQ("prometheusURL", "http://prom:9090", "metricsURLs", "http://pod/"+secret+"/metrics")},
		{"a scrape URL on ftp", "metricsURLs", map[string]string{"metricsURLs": "ftp://pod/" + secret + "/metrics", "latencyHistogram": "h", "replicasQuery": "1"}},
		{"a broker password with a bad port", "brokerURL", map[string]string{"brokerURL": "redis://:" + secret + "@h:x/0"}},
		{"a broker password in the query", "brokerURL", map[string]string{"brokerURL": "redis://h/0?password=" + secret}},
		{"a broker on ftp", "brokerURL", map[string]string{"brokerURL": "ftp://u:" + secret + "@h/"}},
		{"a sentinel with a bad port", "brokerURL", map[string]string{"brokerURL": "sentinel://:" + secret + "@a:1;sentinel://:" + secret + "@b:x", "sentinelMaster": "m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.md, parseOpts)
			if err == nil || !meta.IsError(err) {
				t.Fatalf("err = %v, want a metadata error", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), `"`+tc.key+`"`) {
				t.Fatalf("error does not name %s: %v", tc.key, err)
			}
		})
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
		if s.Celery() == nil || s.Celery().TasksPerReplica <= 0 || s.Policy.StaleAfter <= 0 {
			t.Fatalf("accepted a spec that cannot work: %+v", s)
		}
		if s.Policy.Max != nil && *s.Policy.Max < s.Policy.Min {
			t.Fatalf("max %v below min %v", *s.Policy.Max, s.Policy.Min)
		}
	})
}

// Metadata beyond the documented limits is refused, naming a key, before
// anything is parsed: a client cannot make a watch hold megabytes.
func TestMetadataBeyondTheLimitsIsRefusedNamingAKey(t *testing.T) {
	broker := map[string]string{"brokerURL": "redis://h:6379/0"}
	with := func(kv map[string]string) map[string]string {
		m := maps.Clone(broker)
		maps.Copy(m, kv)
		return m
	}
	manyKeys := with(nil)
	for i := range 10000 {
		manyKeys[fmt.Sprintf("k%05d", i)] = "v"
	}
	bigTotal := with(nil)
	for i := range 5 {
		bigTotal[fmt.Sprintf("x%d", i)] = strings.Repeat("v", 15000)
	}
	queues := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = fmt.Sprintf("q%d", i)
		}
		return strings.Join(q, ",")
	}
	tests := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"10,000 keys", manyKeys,
			`metadata "k00099": the metadata has 10001 keys, more than the 100 allowed (this is the first one over)`},
		{"a key of 200 bytes", with(map[string]string{strings.Repeat("k", 200): "1"}),
			`metadata "` + strings.Repeat("k", 100) + `…(200 bytes)": a key of 200 bytes, more than the 128 allowed`},
		{"a 1 MB value", with(map[string]string{"queues": strings.Repeat("q,", 1<<19)}),
			`metadata "queues": a value of 1048576 bytes, more than the 16384 allowed`},
		{"75 kB in total", bigTotal,
			`metadata "x0": the metadata totals 75035 bytes, more than the 65536 allowed; this key's value is the largest (15000 bytes)`},
		{"a value that is not UTF-8", with(map[string]string{"queues": "video\xff"}),
			`metadata "queues": the value is not valid UTF-8`},
		{"a key that is not UTF-8", with(map[string]string{"q\xc3": "1"}),
			"metadata \"q\ufffd\": the key is not valid UTF-8"},
		{"101 queues", with(map[string]string{"queues": queues(101)}),
			`metadata "queues": 101 queue names, more than the 100 allowed`},
		{"100 queues of 11 lists", with(map[string]string{"queues": queues(100), "prioritySteps": "0,1,2,3,4,5,6,7,8,9,10"}),
			`metadata "prioritySteps": 100 queues × 11 lists each = 1100 Redis lists to poll, more than the 1000 allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.md, parseOpts)
			if err == nil || !meta.IsError(err) || err.Error() != tc.want {
				t.Fatalf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
	// At the limits, a trigger is accepted.
	if _, err := Parse(with(map[string]string{"queues": queues(100), "prioritySteps": "0,1,2,3,4,5,6,7,8,9"}), parseOpts); err != nil {
		t.Fatalf("100 queues of 10 lists: %v", err)
	}
}

// Many unknown keys are one warning, naming ten of them.
func TestManyUnknownKeysAreOneWarning(t *testing.T) {
	md := map[string]string{"brokerURL": "redis://h:6379/0"}
	for i := range 50 {
		md[fmt.Sprintf("k%02d", i)] = "v"
	}
	s, err := Parse(md, parseOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := `50 unknown metadata keys ignored (typos?): "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09" and 40 more`
	if len(s.Warnings) != 1 || s.Warnings[0] != want {
		t.Fatalf("warnings = %q", s.Warnings)
	}
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
			if got := s.Forecast().Zone.String(); got != tc.want || len(s.Warnings) != 0 {
				t.Errorf("zone %s (warnings %q), want %s", got, s.Warnings, tc.want)
			}
		})
	}
}
