package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/test/servers"
)

// The secrets a trigger carries: none may show in any log line, error,
// Explain output or /metrics.
const (
	brokerPassword = "brokerS3cretPW42"
	bearerToken    = "tok3nS3cretXYZ987"
	promPathToken  = "pathT0kenS3cret123"
	calendarSecret = "private-calS3cretPath0042"
	calendarOwner  = "creator%40example.com"
)

var allSecrets = []string{brokerPassword, bearerToken, promPathToken, calendarSecret, "calS3cretPath0042", "creator"}

// faultyUpstream is an HTTP server standing in for Prometheus or a feed,
// whose behaviour a test switches: it produces the garbage and the hangs a
// real server does not.
type faultyUpstream struct {
	srv  *httptest.Server
	mode atomic.Value // string
	ok   func(w http.ResponseWriter, r *http.Request)
	// modeOf, if set, picks the mode of a request instead of mode.
	modeOf func(r *http.Request) string
	flip   atomic.Int64
	hang   chan struct{}
}

func newFaultyUpstream(t *testing.T, ok func(w http.ResponseWriter, r *http.Request)) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{ok: ok, hang: make(chan struct{})}
	u.mode.Store("ok")
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	t.Cleanup(func() { close(u.hang) }) // first: release hung requests
	return u
}

func (u *faultyUpstream) serve(w http.ResponseWriter, r *http.Request) {
	mode := u.mode.Load().(string)
	if u.modeOf != nil {
		if m := u.modeOf(r); m != "" {
			mode = m
		}
	}
	if mode == "flapping" {
		mode = "ok"
		if u.flip.Add(1)%2 == 0 {
			mode = "killed"
		}
	}
	switch mode {
	case "ok":
		u.ok(w, r)
	case "killed": // the connection dies under the request
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	case "hung":
		select {
		case <-u.hang:
		case <-r.Context().Done():
		}
	case "html":
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body>Sign in to continue "+r.URL.Path+"</body></html>")
	case "invalid-json":
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.05"]}`)
	case "status-error":
		io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"parse error at char 1: `+r.URL.Path+`"}`)
	case "three-series":
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"0.05"]},{"metric":{"pod":"b"},"value":[1,"0.05"]},{"metric":{"pod":"c"},"value":[1,"0.05"]}]}}`)
	case "null":
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":null}}`)
	case "404":
		http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
	case "binary":
		w.Write([]byte("\x00\xff\xfeBEGIN:VCALENDAR\x80\x81" + r.URL.Path))
	case "huge":
		chunk := bytes.Repeat([]byte("X"), 1<<20)
		io.WriteString(w, "BEGIN:VCALENDAR\r\nX-PAD:")
		for range 2 {
			w.Write(chunk)
		}
	case "invalid-ics":
		io.WriteString(w, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:"+r.URL.Path+"\r\n")
	}
}

// evidence is everything the scaler said during the test.
type evidence struct {
	mu    sync.Mutex
	texts []string
}

func (e *evidence) add(what string, s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.texts = append(e.texts, what+": "+s)
}

func (e *evidence) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.texts...)
}

// Every fault of every source — killed, hung, garbage, flapping — with a
// broker password, a bearer token, a token in the Prometheus path and a
// calendar secret address, at debug level: no log line, RPC error, Explain
// output (RPC and command) or /metrics shows any of them. Every JSON log
// line also has each key once.
func TestSecretsNeverShowInLogsErrorsExplainOrMetricsUnderEveryFault(t *testing.T) {
	rs := servers.StartRedisWith(t, servers.RedisOptions{Password: brokerPassword})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), Password: brokerPassword})
	t.Cleanup(func() { rdb.Close() })
	prom := newFaultyUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+bearerToken || !strings.HasPrefix(r.URL.Path, "/t/"+promPathToken+"/") {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.05"]}]}}`)
	})
	feedBody := icsWith(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "Upload session replicas=3")
	feed := newFaultyUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		io.WriteString(w, feedBody)
	})
	// A feed URL ending in <mode>.ics answers in that mode: each calendar
	// fault gets its own URL, so its first fetch meets the fault.
	calendarFaults := []string{"killed", "hung", "404", "binary", "huge", "invalid-ics", "flapping"}
	feed.modeOf = func(r *http.Request) string {
		if m := strings.TrimSuffix(filepath.Base(r.URL.Path), ".ics"); slices.Contains(calendarFaults, m) {
			return m
		}
		return ""
	}
	brokerURL := fmt.Sprintf("redis://:%s@%s/0", brokerPassword, rs.Addr())
	promURL := prom.srv.URL + "/t/" + promPathToken
	feedURL := func(name string) string {
		return feed.srv.URL + "/calendar/ical/" + calendarOwner + "/" + calendarSecret + "/" + name + ".ics"
	}
	md := func(calendar string) map[string]string {
		return map[string]string{"brokerURL": brokerURL, "queues": "video", "maxReplicas": "8",
			"prometheusURL": promURL, "latencyQuery": "p95", "replicasQuery": "replicas", "prometheusBearerToken": bearerToken,
			"calendarURL": feedURL(calendar)}
	}
	p := startServe(t, "--calendar-allow-private", "--stale-after", "1s", "--latency-interval", "100ms",
		"--redis-timeout", "300ms", "--calendar-fetch-timeout", "500ms", "--calendar-max-bytes", "1048576")
	insp := scalerv1.NewInspectorClient(p.conn)
	var ev evidence
	main := &pb.ScaledObjectRef{Namespace: "prod", Name: "montage", ScalerMetadata: md("basic")}

	// ask makes every call KEDA and a person would, and keeps what the
	// scaler answered.
	ask := func(r *pb.ScaledObjectRef) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := p.ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"}); err != nil {
			ev.add("GetMetrics", status.Convert(err).Message())
		}
		if _, err := p.ks.IsActive(ctx, r); err != nil {
			ev.add("IsActive", status.Convert(err).Message())
		}
		e, err := insp.Explain(ctx, &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
		if err != nil {
			ev.add("Explain error", status.Convert(err).Message())
			return
		}
		b, _ := protojson.Marshal(e)
		ev.add("Explain", string(b))
	}
	// during asks for a while, as the fault lasts.
	during := func(r *pb.ScaledObjectRef, d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			ask(r)
			time.Sleep(100 * time.Millisecond)
		}
		_, m := p.get(t, "/metrics")
		ev.add("/metrics", m)
	}
	// A push stream follows the main ScaledObject throughout.
	sctx, scancel := context.WithCancel(t.Context())
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		stream, err := p.ks.StreamIsActive(sctx, main)
		for err == nil {
			_, err = stream.Recv()
		}
		if sctx.Err() == nil {
			ev.add("StreamIsActive", status.Convert(err).Message())
		}
	}()
	wantMetric(t, p, main, 3) // the calendar's event; queue empty, latency under target
	during(main, 300*time.Millisecond)

	type fault struct {
		name        string
		start, stop func()
	}
	setProm := func(m string) func() { return func() { prom.mode.Store(m) } }
	faults := []fault{
		{"Redis killed", rs.Stop, func() { rs.Restart(t) }},
		{"Redis hung", func() { rs.Pause(t) }, func() { rs.Resume(t) }},
		{"Redis garbage: a queue and unacked of the wrong type", func() {
			rdb.Set(t.Context(), "video", "not a list", 0)
			rdb.Set(t.Context(), "unacked", "not a hash", 0)
		}, func() { rdb.Del(t.Context(), "video", "unacked") }},
		{"Redis flapping", func() {
			for range 3 {
				rs.Stop()
				time.Sleep(300 * time.Millisecond)
				rs.Restart(t)
				time.Sleep(300 * time.Millisecond)
			}
		}, func() {}},
	}
	for _, m := range []string{"killed", "hung", "html", "invalid-json", "status-error", "three-series", "null", "flapping"} {
		faults = append(faults, fault{"Prometheus " + m, setProm(m), setProm("ok")})
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			f.start()
			during(main, 1500*time.Millisecond)
			f.stop()
			during(main, 500*time.Millisecond)
		})
	}
	// Calendar faults: each on a feed URL of its own, first fetched in
	// the fault (no copy yet), the secret address in every one.
	for _, m := range calendarFaults {
		t.Run("calendar "+m, func(t *testing.T) {
			during(&pb.ScaledObjectRef{Namespace: "prod", Name: "cal-" + m, ScalerMetadata: md(m)}, 1500*time.Millisecond)
		})
	}
	// Refused metadata, each with its secret.
	refused := []map[string]string{
		{"calendarURL": "ftp://cal.example/calendar/ical/" + calendarOwner + "/" + calendarSecret + "/basic.ics"},
		{"calendarURL": "https:///" + calendarSecret + "/basic.ics"},
		{"calendarURL": feedURL("basic"), "calendarURLFromEnv": feedURL("basic")},
		{"brokerURL": "redis://:" + brokerPassword + "@h:notaport/0"},
		{"brokerURL": brokerURL, "brokerURLFromEnv": brokerURL},
		{"prometheusURL": "ftp://prom/t/" + promPathToken, "latencyQuery": "p95", "replicasQuery": "1"},
		{"prometheusURL": "http:///api?token=" + promPathToken, "latencyQuery": "p95", "replicasQuery": "1"},
		{"prometheusURL": promURL, "prometheusURLFromEnv": promURL, "latencyQuery": "p95", "replicasQuery": "1"},
		{"prometheusURL": promURL, "latencyQuery": "p95", "replicasQuery": "1", "prometheusBearerToken": bearerToken, "prometheusUsername": "u"},
		{"brokerURL": brokerURL, "queues": strings.Repeat(brokerPassword+",", 1<<16)},
	}
	for i, m := range refused {
		ask(&pb.ScaledObjectRef{Namespace: "prod", Name: fmt.Sprintf("refused-%d", i), ScalerMetadata: m})
	}
	// explain and check print what they were told.
	dir := t.TempDir()
	file := filepath.Join(dir, "md.yaml")
	var yaml strings.Builder
	for k, v := range md("basic") {
		fmt.Fprintf(&yaml, "%s: %q\n", k, v)
	}
	writeFile(t, file, yaml.String())
	prom.mode.Store("status-error")
	for _, args := range [][]string{
		{"explain", "--addr", p.grpcAddr, "--metadata", file, "--name", "montage", "--namespace", "prod"},
		{"explain", "--addr", p.grpcAddr, "--metadata", file, "--format", "text"},
		{"check", "--metadata", file, "--calendar-allow-private"},
	} {
		var out, errb bytes.Buffer
		run(t.Context(), args, env{stdout: &out, stderr: &errb, getenv: os.LookupEnv})
		ev.add(args[0]+" stdout", out.String())
		ev.add(args[0]+" stderr", errb.String())
	}
	scancel()
	<-streamDone
	p.stop(t)

	logs := p.logs.String()
	texts := append(ev.all(), "logs: "+logs)
	for _, secret := range allSecrets {
		for _, s := range texts {
			if i := strings.Index(s, secret); i >= 0 {
				what, _, _ := strings.Cut(s, ": ")
				t.Errorf("%s shows %q: …%s…", what, secret, s[max(0, i-200):min(len(s), i+100)])
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	for _, l := range lines {
		if dup := duplicateKeys(l); dup != "" {
			t.Errorf("log line has key %q twice: %s", dup, l)
		}
	}
	var errs int
	for _, s := range texts {
		if strings.HasPrefix(s, "GetMetrics") || strings.HasPrefix(s, "Explain error") {
			errs++
		}
	}
	t.Logf("%d log lines (%d bytes), %d answers and outputs checked, %d of them errors", len(lines), len(logs), len(texts), errs)
	if !strings.Contains(logs, `"msg":"read failing; keeping the last good reading","component":"celery"`) {
		t.Errorf("no log line for the celery poll's failures")
	}
}

// duplicateKeys returns a key that appears twice in one object of a JSON
// log line, or "".
func duplicateKeys(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return ""
				}
				key := fmt.Sprint(k)
				if seen[key] {
					return key
				}
				seen[key] = true
				if d := walk(); d != "" {
					return d
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if d := walk(); d != "" {
					return d
				}
			}
			_, _ = dec.Token()
		}
		return ""
	}
	return walk()
}

func TestDuplicateKeysFindsARepeatedKey(t *testing.T) {
	if d := duplicateKeys(`{"level":"WARN","component":"latency","g":{"a":1,"b":[{"x":1}]},"component":"latency"}`); d != "component" {
		t.Fatalf("duplicateKeys = %q", d)
	}
	if d := duplicateKeys(`{"a":{"k":1},"b":{"k":2}}`); d != "" {
		t.Fatalf("duplicateKeys = %q for keys in two objects", d)
	}
}

// A Nextcloud share token is letters only (no digit, under 24 bytes): it
// does not look like a secret, and `check --log-level debug` printed it
// four times. Every path segment of a feed's address but the file name is
// hidden, in every line, answer and error.
func TestCheckNeverPrintsAFeedsLetterOnlyToken(t *testing.T) {
	const token = "kRXDqcCzfcZbYjSj"
	const path = "/remote.php/dav/public-calendars/" + token
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ok") {
			w.Header().Set("Content-Type", "text/calendar")
			fmt.Fprint(w, icsWith(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "Upload session replicas=3"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name  string
		md    string
		env   string // CALENDAR_URL's value, "" unset
		shows string // what the output says instead, so the path was reached
	}{
		{"the feed answers 404", "calendarURL: " + srv.URL + path + "?export\n", "", "/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx: HTTP status 404"},
		{"the feed answers", "calendarURL: " + srv.URL + "/ok" + path + "?export\n", "", `"desiredReplicas": 3`},
		{"the URL's scheme is refused", "calendarURL: ftp://cloud.example.org" + path + "?export\n", "", `bad value "ftp://cloud.example.org/xxxxx/xxxxx/xxxxx/xxxxx?export=xxxxx"`},
		{"the URL and its FromEnv twin are both set", "calendarURL: " + srv.URL + path + "\ncalendarURLFromEnv: CALENDAR_URL\n", srv.URL + path, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("CALENDAR_URL", tc.env)
			}
			file := tempFile(t, "md.yaml", tc.md)
			_, stdout, stderr := runProcess(t, "check", "--metadata", file, "--log-level", "debug", "--calendar-allow-private")
			out := stdout + stderr
			if n := strings.Count(out, token); n > 0 {
				t.Errorf("the token shows %d times:\n%s", n, out)
			}
			if !strings.Contains(out, tc.shows) {
				t.Errorf("the output does not say %q:\n%s", tc.shows, out)
			}
		})
	}
}
