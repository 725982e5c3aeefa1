package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/addrfile"
	"github.com/montage/montage-scaler/test/servers"
)

// scalerProc is `montage-scaler serve` run in-process through run().
type scalerProc struct {
	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
	ks                 pb.ExternalScalerClient
	logs               *servers.LogBuffer
	cancel             context.CancelFunc
	exit               chan int
}

func startServe(t *testing.T, args ...string) *scalerProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &scalerProc{logs: &servers.LogBuffer{}, cancel: cancel, exit: make(chan int, 1)}
	listening := make(chan struct{})
	e := env{stdout: io.Discard, stderr: p.logs, getenv: func(string) (string, bool) { return "", false },
		onListen: func(g, h string) { p.grpcAddr, p.httpAddr = g, h; close(listening) }}
	args = append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--poll-interval", "50ms", "--log-level", "debug"}, args...)
	go func() { p.exit <- run(ctx, args, e) }()
	select {
	case <-listening:
	case code := <-p.exit:
		t.Fatalf("serve exited with %d before listening:\n%s", code, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen:\n%s", p.logs)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.conn, p.ks = conn, pb.NewExternalScalerClient(conn)
	t.Cleanup(func() {
		conn.Close()
		p.stop(t)
		if t.Failed() {
			t.Logf("scaler logs:\n%s", p.logs)
		}
	})
	return p
}

// stop sends the equivalent of SIGTERM and returns the exit status.
func (p *scalerProc) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.exit:
		p.exit <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop:\n%s", p.logs)
		return -1
	}
}

func (p *scalerProc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ref(brokerURL string, kv ...string) *pb.ScaledObjectRef {
	md := map[string]string{"brokerURL": brokerURL, "queues": "celery,video", "tasksPerReplica": "5"}
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	return &pb.ScaledObjectRef{Name: "montage", Namespace: "prod", ScalerMetadata: md}
}

func ctxT(t *testing.T) context.Context { return ctxWithin(t, 10*time.Second) }

// ctxWithin bounds what a test waits for: a bug fails it after d, not at
// go test's timeout.
func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually retries cond until it returns nil, failing with its last error
// after a generous deadline.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t *testing.T, p *scalerProc, r *pb.ScaledObjectRef) (float64, error) {
	resp, err := p.ks.GetMetrics(ctxT(t), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
	if err != nil {
		return 0, err
	}
	return resp.MetricValues[0].MetricValueFloat, nil
}

func wantMetric(t *testing.T, p *scalerProc, r *pb.ScaledObjectRef, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("GetMetrics = %v", want), func() error {
		v, err := metricValue(t, p, r)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("got %v", v)
		}
		return nil
	})
}

// push LPUSHes n kombu-format messages, as a Celery producer would, so the
// server tests control the backlog exactly (scaler/celery's tests check the
// layout against a real Celery producer and worker).
func push(t *testing.T, rdb *redis.Client, queue string, n int) {
	t.Helper()
	for i := range n {
		msg := fmt.Sprintf(`{"body":"W10=","headers":{"id":"t-%s-%d","task":"x","eta":null},"properties":{"delivery_tag":"t-%s-%d","priority":0,"delivery_info":{"exchange":"","routing_key":%q}}}`, queue, i, queue, i, queue)
		if err := rdb.LPush(t.Context(), queue, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServeAnswersEveryRPC(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := startServe(t)
	r := ref(rs.URL(0), "minReplicas", "1", "maxReplicas", "8")

	spec, err := p.ks.GetMetricSpec(ctxT(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.MetricSpecs) != 1 || spec.MetricSpecs[0].MetricName != "montage-desired-replicas" || spec.MetricSpecs[0].TargetSizeFloat != 1 {
		t.Fatalf("GetMetricSpec = %v", spec)
	}

	wantMetric(t, p, r, 1) // idle: minReplicas
	act, err := p.ks.IsActive(ctxT(t), r)
	if err != nil || act.Result {
		t.Fatalf("IsActive on an idle queue = %v, %v", act, err)
	}

	push(t, rdb, "celery", 9)
	push(t, rdb, "video", 3)
	wantMetric(t, p, r, 2.4) // 12 tasks / 5 per replica
	act, err = p.ks.IsActive(ctxT(t), r)
	if err != nil || !act.Result {
		t.Fatalf("IsActive with 12 queued = %v, %v", act, err)
	}
	m, _ := p.ks.GetMetrics(ctxT(t), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
	if m.MetricValues[0].MetricValue != 3 || m.MetricValues[0].MetricName != "montage-desired-replicas" {
		t.Fatalf("deprecated integer field must be the ceiling: %v", m)
	}

	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	if e.GetDesiredReplicas() != 2.4 || !e.Active || len(e.Components) != 1 || e.Components[0].Name != "celery" ||
		e.Components[0].Detail.AsMap()["queued"] != float64(12) || e.Bounds.GetMax() != 8 {
		t.Fatalf("Explain = %v", e)
	}

	h, err := healthpb.NewHealthClient(p.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	assertReflection(t, p.conn, "externalscaler.ExternalScaler", "montage.scaler.v1.Inspector", "grpc.health.v1.Health")

	if code, body := p.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz %d %s", code, body)
	}
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}
	_, metrics := p.get(t, "/metrics")
	for _, want := range []string{
		`montage_scaler_decision_replicas{namespace="prod",scaledobject="montage"} 2.4`,
		`montage_scaler_component_replicas{component="celery",namespace="prod",scaledobject="montage"} 2.4`,
		`montage_scaler_source_age_seconds{component="celery"}`,
		`montage_scaler_celery_queued_tasks{namespace="prod",scaledobject="montage"} 12`,
		`montage_scaler_celery_in_flight_tasks{namespace="prod",scaledobject="montage"} 0`,
		`montage_scaler_celery_tasks_processed_total{namespace="prod",scaledobject="montage"} 0`,
		`montage_scaler_celery_oldest_wait_seconds{namespace="prod",queue="video",scaledobject="montage"} `,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetMetrics",grpc_service="externalscaler.ExternalScaler",grpc_type="unary"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, rs.Addr()) {
		t.Errorf("/metrics shows the broker address")
	}
}

func assertReflection(t *testing.T, conn *grpc.ClientConn, want ...string) {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.Name)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Fatalf("reflection lists %v, lacks %s", got, w)
		}
	}
	_ = stream.CloseSend()
}

func TestStreamIsActiveSendsStateThenChangesAndEndsCleanlyAtShutdown(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := startServe(t)
	r := ref(rs.URL(0))

	stream, err := p.ks.StreamIsActive(ctxWithin(t, time.Minute), r)
	if err != nil {
		t.Fatal(err)
	}
	recv := func(want bool) {
		t.Helper()
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if msg.Result != want {
			t.Fatalf("stream sent %t, want %t", msg.Result, want)
		}
	}
	recv(false) // the current state when the stream opens
	push(t, rdb, "video", 1)
	recv(true) // the next message is the change: no repeated false in between
	if err := rdb.Del(t.Context(), "video").Err(); err != nil {
		t.Fatal(err)
	}
	recv(false)
	push(t, rdb, "celery", 2)
	recv(true)

	// Shutdown: health goes NOT_SERVING and the stream ends with a clean
	// EOF (status OK), which resets KEDA's reconnect backoff.
	code := p.stop(t)
	_, err = stream.Recv()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after shutdown Recv = %v (code %s), want io.EOF", err, status.Code(err))
	}
	if code != 0 {
		t.Fatalf("serve exit = %d", code)
	}
}

func TestInvalidMetadataIsInvalidArgumentNamingTheKey(t *testing.T) {
	p := startServe(t)
	tests := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"no broker", map[string]string{"queues": "celery"},
			`metadata "brokerURL" is required: queues set but neither brokerURL nor brokerURLFromEnv has a value (KEDA drops brokerURLFromEnv when the container's variable is unset or empty)`},
		{"a bad tasksPerReplica", map[string]string{"brokerURL": "redis://127.0.0.1:1/0", "tasksPerReplica": "five"},
			`metadata "tasksPerReplica": bad value "five": a number from 0.001 to 1e+06`},
		{"a password in a bad URL is redacted", map[string]string{"brokerURL": "redis://:hunter2@127.0.0.1:notaport/0"}, "hunter2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &pb.ScaledObjectRef{Name: "m", Namespace: "ns", ScalerMetadata: tc.md}
			calls := map[string]error{}
			_, calls["GetMetricSpec"] = p.ks.GetMetricSpec(ctxT(t), r)
			_, calls["GetMetrics"] = p.ks.GetMetrics(ctxT(t), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
			_, calls["IsActive"] = p.ks.IsActive(ctxT(t), r)
			_, calls["Explain"] = scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: "m", Namespace: "ns", ScalerMetadata: tc.md})
			if s, err := p.ks.StreamIsActive(ctxT(t), r); err == nil {
				_, calls["StreamIsActive"] = s.Recv()
			}
			for rpc, err := range calls {
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("%s: %v, want InvalidArgument", rpc, err)
				}
				msg := status.Convert(err).Message()
				if tc.want == "hunter2" {
					if strings.Contains(msg, "hunter2") || !strings.Contains(msg, `"brokerURL"`) {
						t.Fatalf("%s: %s", rpc, msg)
					}
				} else if msg != tc.want {
					t.Fatalf("%s:\n got %s\nwant %s", rpc, msg, tc.want)
				}
			}
		})
	}
	if strings.Contains(p.logs.String(), "hunter2") {
		t.Fatal("the logs show a broker password")
	}
}

func TestRedisOutageHoldsThenUnavailableThenRecovers(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	before := runtime.NumGoroutine()
	p := startServe(t, "--stale-after", "3s", "--redis-timeout", "200ms")
	r := ref(rs.URL(0))
	stream, err := p.ks.StreamIsActive(ctxWithin(t, time.Minute), r)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.Result {
		t.Fatalf("first stream message = %v, %v", msg, err)
	}
	push(t, rdb, "celery", 7)
	wantMetric(t, p, r, 1.4)
	if msg, err := stream.Recv(); err != nil || !msg.Result {
		t.Fatalf("stream after 7 tasks = %v, %v", msg, err)
	}

	rs.Stop()
	// Held: the last good reading is served (never a 0) until staleAfter...
	eventually(t, "Explain reports the held reading", func() error {
		e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
		if err != nil {
			return err
		}
		c := e.Components[0]
		if c.Stale {
			return nil // already past staleAfter on a slow machine; the next check covers it
		}
		if !c.Held || c.Error == "" || e.GetDesiredReplicas() != 1.4 {
			return fmt.Errorf("explain = %v", e)
		}
		return nil
	})
	// ...then Unavailable naming the source.
	eventually(t, "GetMetrics becomes Unavailable", func() error {
		v, err := metricValue(t, p, r)
		if err == nil {
			if v != 1.4 {
				t.Fatalf("during the outage GetMetrics answered %v, not the held 1.4", v)
			}
			return errors.New("still answering")
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "celery") {
			t.Fatalf("GetMetrics error = %v, want Unavailable naming celery", err)
		}
		return nil
	})
	if _, err := p.ks.IsActive(ctxT(t), r); status.Code(err) != codes.Unavailable {
		t.Fatalf("IsActive past staleAfter = %v", err)
	}

	rs.Restart(t) // empty: the restarted Redis keeps nothing
	wantMetric(t, p, r, 0)
	if msg, err := stream.Recv(); err != nil || msg.Result {
		t.Fatalf("stream after recovery = %v, %v (the stream stayed open and silent during the outage)", msg, err)
	}
	_, metrics := p.get(t, "/metrics")
	if !strings.Contains(metrics, `montage_scaler_source_errors_total{component="celery"}`) {
		t.Errorf("/metrics lacks the celery error counter")
	}

	if code := p.stop(t); code != 0 {
		t.Fatalf("serve exit = %d", code)
	}
	p.conn.Close()
	eventually(t, "goroutines back to where they were", func() error {
		if n := runtime.NumGoroutine(); n > before+2 {
			return fmt.Errorf("%d goroutines, %d before serve", n, before)
		}
		return nil
	})
}

func TestIdleWatchIsDroppedWithItsConnections(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := startServe(t, "--idle-after", "500ms")
	r := ref(rs.URL(0))
	wantMetric(t, p, r, 0)
	clients := func() int {
		list, err := rdb.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "\n")
	}
	if n := clients(); n < 2 {
		t.Fatalf("the scaler holds no connection to Redis (%d clients)", n)
	}
	eventually(t, "the idle watch's connections closed", func() error {
		if n := clients(); n != 1 { // our own
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	_, metrics := p.get(t, "/metrics")
	if strings.Contains(metrics, `scaledobject="montage"`) {
		t.Fatal("a dropped watch's series are still exported")
	}
	wantMetric(t, p, r, 0) // asking again starts a new watch
}

func TestCheckAndExplainPrintTheSameDecision(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	push(t, rdb, "celery", 4)
	p := startServe(t)

	dir := t.TempDir()
	file := filepath.Join(dir, "md.yaml")
	writeFile(t, file, "brokerURLFromEnv: BROKER\nqueues: celery,video\ntasksPerReplica: \"2\"\nmaxReplicas: \"8\"\n")
	getenv := func(k string) (string, bool) {
		if k == "BROKER" {
			return rs.URL(0), true
		}
		return "", false
	}
	runCmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), args, env{stdout: &out, stderr: &errb, getenv: getenv})
		return code, out.String(), errb.String()
	}

	code, checkOut, stderr := runCmd("check", "--metadata", file)
	if code != 0 {
		t.Fatalf("check exit %d: %s", code, stderr)
	}
	code, explainOut, stderr := runCmd("explain", "--addr", p.grpcAddr, "--metadata", file)
	if code != 0 {
		t.Fatalf("explain exit %d: %s", code, stderr)
	}
	if a, b := dropTimes(checkOut), dropTimes(explainOut); a != b {
		t.Fatalf("check and explain differ:\ncheck:\n%s\nexplain:\n%s", a, b)
	}
	if !strings.Contains(checkOut, `"desiredReplicas": 2,`) {
		t.Fatalf("check output:\n%s", checkOut)
	}
	// The queue wait per queue, and where its age comes from (no stamp,
	// no target: this process's own first sighting).
	for _, want := range []string{`"oldestWaitSeconds": `, `"waitMethod": "first-seen-local"`, `"queueWaitTargetSeconds": null`} {
		if !strings.Contains(checkOut, want) {
			t.Fatalf("check output lacks %s:\n%s", want, checkOut)
		}
	}

	// Exit statuses: 2 bad metadata, 1 no decision (JSON still printed).
	writeFile(t, filepath.Join(dir, "bad.yaml"), "brokerURL: redis://127.0.0.1:1/0\ntasksPerReplica: lots\n")
	if code, _, stderr := runCmd("check", "--metadata", filepath.Join(dir, "bad.yaml")); code != 2 || !strings.Contains(stderr, `"tasksPerReplica"`) {
		t.Fatalf("bad metadata: exit %d, stderr %s", code, stderr)
	}
	writeFile(t, filepath.Join(dir, "down.yaml"), "brokerURL: redis://127.0.0.1:1/0\n")
	code, out, _ := runCmd("check", "--metadata", filepath.Join(dir, "down.yaml"), "--timeout", "3s")
	if code != 1 || !strings.Contains(out, `"desiredReplicas": null`) || !strings.Contains(out, `"error": "celery: `) {
		t.Fatalf("unreachable broker: exit %d, output:\n%s", code, out)
	}
	p.stop(t)
	if code, _, stderr := runCmd("explain", "--addr", p.grpcAddr, "--metadata", file, "--timeout", "2s"); code != 1 {
		t.Fatalf("explain to a stopped server: exit %d, %s", code, stderr)
	}
	if code, _, _ := runCmd("check", "--metadata", file, "--format", "xml"); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dropTimes removes the lines holding instants, which differ between runs.
func dropTimes(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, `"at":`) || strings.Contains(l, `"observedAt":`) || strings.Contains(l, "ageSeconds") || strings.Contains(l, `"attributedAt":`) || strings.Contains(l, `"brokerTime":`) ||
			strings.Contains(l, `"oldestWaitSeconds":`) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// icsWith returns a calendar with one event from start to end.
func icsWith(start, end time.Time, summary string) string {
	f := "20060102T150405Z"
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:ev-1@test\r\nDTSTAMP:20261101T000000Z\r\n" +
		"DTSTART:" + start.UTC().Format(f) + "\r\nDTEND:" + end.UTC().Format(f) + "\r\nSUMMARY:" + summary + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

func TestCalendarEventPreScalesWithAnEmptyQueue(t *testing.T) {
	rs := servers.StartRedis(t)
	start := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	ics := icsWith(start, start.Add(time.Hour), "Upload session replicas=6")
	feed := httptestServer(t, ics)
	p := startServe(t, "--calendar-allow-private")
	r := ref(rs.URL(0), "calendarURL", feed+"/private-s3cr3t/basic.ics", "calendarLeadTime", "10m", "maxReplicas", "8")

	// The event starts in 5 minutes, inside the 10-minute lead: its
	// replicas are asked for now, with the queue empty.
	wantMetric(t, p, r, 6)
	act, err := p.ks.IsActive(ctxT(t), r)
	if err != nil || !act.Result {
		t.Fatalf("IsActive inside the lead time = %v, %v", act, err)
	}
	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	var cal *scalerv1.Component
	for _, c := range e.Components {
		if c.Name == "calendar" {
			cal = c
		}
	}
	if cal == nil || cal.GetDesiredReplicas() != 6 || !strings.Contains(fmt.Sprint(cal.Detail.AsMap()["inForce"]), "Upload session") {
		t.Fatalf("calendar component = %v", cal)
	}
	if strings.Contains(p.logs.String()+e.String(), "s3cr3t") {
		t.Fatal("the feed's secret path shows in logs or Explain")
	}

	// check --at evaluates the same metadata at any instant.
	dir := t.TempDir()
	file := filepath.Join(dir, "md.yaml")
	writeFile(t, file, fmt.Sprintf("brokerURL: %s\ncalendarURL: %s/cal.ics\ncalendarLeadTime: 10m\n", rs.URL(0), feed))
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{start.Add(-20 * time.Minute), `"desiredReplicas": 0,`},
		{start.Add(30 * time.Minute), `"desiredReplicas": 6,`},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), []string{"check", "--metadata", file, "--calendar-allow-private", "--at", tc.at.Format(time.RFC3339)},
			env{stdout: &out, stderr: &errb, getenv: os.LookupEnv})
		if code != 0 || !strings.Contains(out.String(), tc.want) {
			t.Fatalf("check --at %s: exit %d, want %s in:\n%s\n%s", tc.at, code, tc.want, out.String(), errb.String())
		}
	}
	// Without the allowance a loopback feed is refused up front.
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"check", "--metadata", file}, env{stdout: &out, stderr: &errb, getenv: os.LookupEnv}); code != 2 ||
		!strings.Contains(errb.String(), "--calendar-allow-host") {
		t.Fatalf("loopback feed without allowance: exit %d, %s", code, errb.String())
	}
}

func httptestServer(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLatencyFromPrometheusFoldsWithTheQueueAndTheCalendar(t *testing.T) {
	rs := servers.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	api := servers.StartHistProc(t, servers.BuildHistProc(t), "http_request_duration_seconds", []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1})
	prom := servers.StartPrometheus(t, []string{api.Addr}, time.Second)
	prom.WaitFor(t, `http_request_duration_seconds_count`, 60*time.Second, func(v float64) bool { return v == 0 })
	feed := httptestServer(t, icsWith(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), "Launch replicas=3"))
	p := startServe(t, "--calendar-allow-private", "--latency-interval", "500ms", "--stale-after", "3s")

	p95 := `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))`
	r := ref(rs.URL(0), "prometheusURL", prom.URL, "latencyQuery", p95, "replicasQuery", "vector(2)",
		"calendarURL", feed+"/cal.ics", "maxReplicas", "8", "minReplicas", "1")

	// Idle API: NaN P95, no latency opinion; empty queue; the launch is an
	// hour away. The decision is minReplicas and the trigger is inactive.
	wantMetric(t, p, r, 1)
	if act, err := p.ks.IsActive(ctxT(t), r); err != nil || act.Result {
		t.Fatalf("IsActive when idle = %v, %v", act, err)
	}

	// A slow API: P95 above 80 ms asks for current × p95 / target.
	api.Observe(t, 0.03, 50)
	api.Observe(t, 0.07, 40)
	api.Observe(t, 0.3, 10)
	own := prom.WaitFor(t, p95, 60*time.Second, func(v float64) bool { return v > 0.08 })
	want := math.Round(2*own/0.08*1000) / 1000
	eventually(t, "latency opinion", func() error {
		v, err := metricValue(t, p, r)
		if err != nil {
			return err
		}
		if math.Abs(v-min(want, 8)) > 0.002 {
			return fmt.Errorf("GetMetrics = %v, want 2 × %v / 0.08 = %v (max 8)", v, own, want)
		}
		return nil
	})
	if act, err := p.ks.IsActive(ctxT(t), r); err != nil || !act.Result {
		t.Fatalf("IsActive with P95 %v = %v, %v", own, act, err)
	}
	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range e.Components {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "celery,latency,calendar" {
		t.Fatalf("components = %v", names)
	}

	// Prometheus gone: the latency reading is held, then the whole
	// decision is Unavailable naming latency (never a 0).
	prom.Stop()
	eventually(t, "Unavailable naming latency", func() error {
		_, err := metricValue(t, p, r)
		if err == nil {
			return errors.New("still answering from the held reading")
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "latency") {
			t.Fatalf("GetMetrics = %v", err)
		}
		return nil
	})
}

// With port 0, --addr-file says which ports the kernel chose, once the
// server serves, and goes at shutdown.
func TestServeWritesTheBoundAddressesToTheAddrFileAndRemovesItAtShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "addrs.json")
	p := startServe(t, "--addr-file", path)
	a, err := addrfile.Read(path)
	if err != nil {
		t.Fatalf("addr file after serving: %v", err)
	}
	if a.GRPC != p.grpcAddr || a.HTTP != p.httpAddr || strings.HasSuffix(a.GRPC, ":0") {
		t.Fatalf("addr file %+v, want the bound grpc %s and http %s", a, p.grpcAddr, p.httpAddr)
	}
	if code, _ := p.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz at the address in the file: %d", code)
	}
	if code := p.stop(t); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("addr file after shutdown: %v, want it removed", err)
	}
}

// An addr file that cannot be written stops serve with an error naming the
// flag: a caller waiting for it must not wait for nothing.
func TestServeFailsWhenTheAddrFileCannotBeWritten(t *testing.T) {
	var logs servers.LogBuffer
	e := env{stdout: io.Discard, stderr: &logs, getenv: func(string) (string, bool) { return "", false }}
	args := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--addr-file", filepath.Join(t.TempDir(), "no-such-dir", "addrs.json")}
	if code := run(t.Context(), args, e); code != 1 {
		t.Fatalf("serve exited %d, want 1\n%s", code, &logs)
	}
	if !strings.Contains(logs.String(), "--addr-file") {
		t.Fatalf("log does not name --addr-file:\n%s", &logs)
	}
}
