package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/registry/registrytest"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/spec"
)

var t0 = time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)

// fixture is the gRPC server over a registry of fake sources, served on an
// in-memory listener: no redis-server, no Prometheus, no network.
type fixture struct {
	clock   *registrytest.Clock
	sources *registrytest.Factory
	reg     *registry.Registry
	srv     *server.Server
	prom    *prometheus.Registry
	ks      pb.ExternalScalerClient
	insp    scalerv1.InspectorClient
	conn    *grpc.ClientConn
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: registrytest.NewClock(t0), prom: prometheus.NewRegistry()}
	// Every ScaledObject gets a celery source and, when it names a
	// calendarURL, a calendar source that never expires.
	f.sources = &registrytest.Factory{Make: func(_, _ string, s *spec.Spec) []*registrytest.Source {
		out := []*registrytest.Source{registrytest.NewSource("celery")}
		if _, ok := spec.Find[*calendar.Config](s); ok {
			out = append(out, registrytest.NewSource("calendar").NoExpiry().Optional())
		}
		return out
	}}
	metrics := server.NewMetrics(f.prom)
	f.reg = registry.New(registry.Options{Sources: f.sources, Now: f.clock.Now, FirstWait: 50 * time.Millisecond,
		IdleAfter: time.Second, Parse: spec.Options{Table: registrytest.Table(), StaleAfter: 2 * time.Minute}, OnDrop: metrics.Forget})
	f.prom.MustRegister(server.SourceAges(f.reg, f.clock.Now))
	f.srv = server.New(server.Options{Registry: f.reg, Metrics: metrics, Now: f.clock.Now, StreamTick: time.Hour})

	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.ForceServerCodecV2(server.Codec()))
	pb.RegisterExternalScalerServer(gs, f.srv)
	scalerv1.RegisterInspectorServer(gs, f.srv)
	go gs.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		f.srv.EndStreams()
		gs.Stop()
		f.reg.Close()
	})
	f.ks, f.insp, f.conn = pb.NewExternalScalerClient(conn), scalerv1.NewInspectorClient(conn), conn
	return f
}

// waitDropped waits until the registry has no watch left, failing the test
// after ten seconds rather than hanging it.
func (f *fixture) waitDropped(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.reg.Len() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d watches still there after IdleAfter", f.reg.Len())
		}
	}
}

func ref(name string, kv ...string) *pb.ScaledObjectRef {
	md := map[string]string{"brokerURL": "redis://fake.invalid:6379/0", "minReplicas": "1", "maxReplicas": "8"}
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	return &pb.ScaledObjectRef{Namespace: "media", Name: name, ScalerMetadata: md}
}

// source returns the fake source named component of the ScaledObject's
// first watch, once the registry has made it.
func (f *fixture) source(t *testing.T, r *pb.ScaledObjectRef, component string) *registrytest.Source {
	t.Helper()
	noWait, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.reg.Get(noWait, r.Namespace, r.Name, r.ScalerMetadata); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.sources.Made(r.Namespace, r.Name)[0] {
		if s.Name() == component {
			return s
		}
	}
	t.Fatalf("no %s source", component)
	return nil
}

func opinion(v float64, active bool) decide.Opinion {
	return decide.Opinion{Desired: decide.Ptr(v), Active: active}
}

func TestGetMetricsAndIsActiveFollowTheReadings(t *testing.T) {
	boom := errors.New("dial tcp fake.invalid:6379: connection refused")
	tests := []struct {
		name       string
		ref        *pb.ScaledObjectRef
		set        func(f *fixture, celery, calendar *registrytest.Source)
		want       float64
		wantActive bool
		wantCode   codes.Code
		wantErr    string
	}{
		{
			name: "a fresh backlog's ask is the metric, and active",
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(2.4, true), t0, nil)
			},
			want: 2.4, wantActive: true,
		},
		{
			name: "an idle queue gives minReplicas and is not active",
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(0, false), t0, nil)
			},
			want: 1,
		},
		{
			name: "more than maxReplicas is clamped",
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(20, true), t0, nil)
			},
			want: 8, wantActive: true,
		},
		{
			name: "a failing source's last good reading is held until staleAfter",
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(3, true), t0, boom)
				f.clock.Add(119 * time.Second)
			},
			want: 3, wantActive: true,
		},
		{
			name: "past staleAfter it is Unavailable naming the source, never a made-up 0",
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(3, true), t0, boom)
				f.clock.Add(121 * time.Second)
			},
			wantCode: codes.Unavailable, wantErr: "celery: last good reading 2m1s old (staleAfter 2m0s): dial tcp",
		},
		{
			name:     "a source that has never answered is Unavailable",
			set:      func(*fixture, *registrytest.Source, *registrytest.Source) {},
			wantCode: codes.Unavailable, wantErr: "celery: no reading yet",
		},
		{
			name: "staleAfter from the metadata overrides the server's",
			ref:  ref("stale", "staleAfter", "10s"),
			set: func(f *fixture, c, _ *registrytest.Source) {
				c.Set(opinion(3, true), t0, boom)
				f.clock.Add(11 * time.Second)
			},
			wantCode: codes.Unavailable, wantErr: "staleAfter 10s",
		},
		{
			name: "a calendar's copy is kept however old, and the largest ask wins",
			ref:  ref("cal", "calendarURL", "https://cal.example.com/a.ics"),
			set: func(f *fixture, c, cal *registrytest.Source) {
				cal.Set(opinion(4, true), t0, boom)
				f.clock.Add(24 * time.Hour)
				c.Set(opinion(2, true), f.clock.Now(), nil)
			},
			want: 4, wantActive: true,
		},
		{
			name: "a calendar that never had a copy does not withhold the queue's decision",
			ref:  ref("worker", "calendarURL", "https://cal.example/x.ics"),
			set: func(f *fixture, c, cal *registrytest.Source) {
				cal.Set(decide.Opinion{}, time.Time{}, errors.New("calendar: fetch https://cal.example/x.ics: HTTP status 404"))
				c.Set(opinion(2.4, true), t0, nil)
			},
			want: 2.4, wantActive: true,
		},
		{
			name:     "bad metadata is InvalidArgument naming the key",
			ref:      ref("bad", "maxReplicas", "-1"),
			wantCode: codes.InvalidArgument, wantErr: `metadata "maxReplicas": bad value "-1"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			r := tc.ref
			if r == nil {
				r = ref("worker")
			}
			if tc.set != nil {
				var cal *registrytest.Source
				if r.ScalerMetadata["calendarURL"] != "" {
					cal = f.source(t, r, "calendar")
				}
				tc.set(f, f.source(t, r, "celery"), cal)
			}
			m, mErr := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: spec.DefaultMetricName})
			a, aErr := f.ks.IsActive(t.Context(), r)
			if tc.wantCode != codes.OK {
				for what, err := range map[string]error{"GetMetrics": mErr, "IsActive": aErr} {
					if status.Code(err) != tc.wantCode || !strings.Contains(status.Convert(err).Message(), tc.wantErr) {
						t.Errorf("%s = %v, want %s containing %q", what, err, tc.wantCode, tc.wantErr)
					}
				}
				return
			}
			if mErr != nil || aErr != nil {
				t.Fatalf("GetMetrics %v, IsActive %v", mErr, aErr)
			}
			v := m.GetMetricValues()[0]
			if v.GetMetricValueFloat() != tc.want || v.GetMetricName() != spec.DefaultMetricName || a.GetResult() != tc.wantActive {
				t.Errorf("metric %s=%g active %t, want %g %t", v.GetMetricName(), v.GetMetricValueFloat(), a.GetResult(), tc.want, tc.wantActive)
			}
		})
	}
}

func TestGetMetricSpecNamesTheMetricWithTargetOneAndStartsTheWatch(t *testing.T) {
	f := newFixture(t)
	r := ref("worker", "metricName", "videos")
	s, err := f.ks.GetMetricSpec(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	ms := s.GetMetricSpecs()
	if len(ms) != 1 || ms[0].GetMetricName() != "videos" || ms[0].GetTargetSizeFloat() != 1 {
		t.Fatalf("metric spec %v", ms)
	}
	if f.reg.Len() != 1 {
		t.Errorf("%d watches after GetMetricSpec, want 1 (warm for GetMetrics)", f.reg.Len())
	}
	_, err = f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "other"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `this trigger serves only "videos"`) {
		t.Errorf("GetMetrics of another metric = %v", err)
	}
	if _, err := f.ks.GetMetricSpec(t.Context(), nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetMetricSpec without a ref = %v, want InvalidArgument", err)
	}
}

// streamWithin opens a StreamIsActive that fails the test after d instead
// of hanging it: the fixture's stream tick is an hour, so only a change can
// wake a stream, and a missed one must fail fast.
func (f *fixture) streamWithin(t *testing.T, r *pb.ScaledObjectRef, d time.Duration) (recv func() bool, stream grpc.ServerStreamingClient[pb.IsActiveResponse]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	stream, err := f.ks.StreamIsActive(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return func() bool {
		t.Helper()
		m, err := stream.Recv()
		if status.Code(err) == codes.DeadlineExceeded {
			t.Fatalf("Recv: no message within %s: a change was missed", d)
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		return m.GetResult()
	}, stream
}

func TestStreamIsActiveSendsTheStateThenOnlyChangesAndEndsCleanly(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	c := f.source(t, r, "celery")
	c.Set(opinion(0, false), t0, nil)
	recv, stream := f.streamWithin(t, r, 10*time.Second)
	if recv() {
		t.Fatal("first message: active, want the current state false")
	}
	// The same state again is not sent (a repeated true would postpone
	// KEDA's cooldown); a change is.
	c.Set(opinion(0, false), t0, nil)
	c.Set(opinion(2, true), t0, nil)
	if !recv() {
		t.Fatal("second message: inactive, want the change to active")
	}
	c.Set(opinion(3, true), t0, nil)
	// Past staleAfter nothing is sent; the stream stays open.
	c.Set(opinion(3, true), t0, errors.New("down"))
	f.clock.Add(3 * time.Minute)
	c.Set(opinion(3, true), t0, errors.New("down"))
	// Back: the state is unchanged (active), so the next message is the
	// change to inactive.
	c.Set(opinion(0, false), f.clock.Now(), nil)
	if recv() {
		t.Fatal("third message: active, want inactive (nothing sent while stale or unchanged)")
	}
	f.srv.EndStreams()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after EndStreams Recv = %v, want a clean io.EOF", err)
	}
}

// A reading that lands after the stream read its decision and before it
// waits is sent at once. The source turns active right after the stream's
// first decision read it inactive; the stream's tick is an hour, so only
// the change can wake it (a stream that took the channels after deciding
// missed it and hung here).
func TestStreamIsActiveSendsAChangeThatLandsWhileItDecides(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	c := f.source(t, r, "celery")
	c.Set(opinion(0, false), t0, nil)
	c.AfterNextRead(func() { c.Set(opinion(2, true), t0, nil) })
	recv, _ := f.streamWithin(t, r, 10*time.Second)
	if recv() {
		t.Fatal("first message: active, want the state the stream read, false")
	}
	if !recv() {
		t.Fatal("second message: inactive, want the change that landed while the stream decided")
	}
}

func TestExplainReportsAFailingSourceInsteadOfFailing(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	f.source(t, r, "celery").Set(opinion(3, true), t0, errors.New("down"))
	f.clock.Add(time.Hour)
	e, err := f.insp.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	if e.DesiredReplicas != nil || !strings.Contains(e.GetError(), "celery: last good reading 1h0m0s old") || !e.GetComponents()[0].GetStale() {
		t.Fatalf("explanation %v", e)
	}
}

// An upstream's error body cut inside a character, or binary, reaches
// Explain and the RPC errors as valid UTF-8 (proto strings must be).
func TestErrorsThatAreNotUTF8ReachExplainAndStatusesValid(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	cut := "latency: prometheus http://prom: HTTP 500 for latencyQuery: " + strings.Repeat("a", 198) + "\xe2\x82"
	src := f.source(t, r, "celery")
	src.Set(decide.Opinion{Desired: decide.Ptr(3), Warnings: []string{"binary \xff\xfe"}}, t0, errors.New(cut))
	e, err := f.insp.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	c := e.GetComponents()[0]
	if !strings.HasSuffix(c.GetError(), "aa\ufffd") || c.GetWarnings()[0] != "binary \ufffd" {
		t.Fatalf("component error %q warnings %q", c.GetError(), c.GetWarnings())
	}
	src.Set(decide.Opinion{}, time.Time{}, errors.New(cut))
	_, err = f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !utf8.ValidString(st.Message()) || !strings.HasSuffix(st.Message(), "aa\ufffd") {
		t.Fatalf("GetMetrics = %v, want Unavailable with a valid UTF-8 message", err)
	}
}

func TestMetricsFollowTheDecisionsAndForgetADroppedScaledObject(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	f.source(t, r, "celery").Set(opinion(2.5, true), t0, nil)
	if _, err := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP montage_scaler_decision_replicas Desired replicas last answered for a ScaledObject (the clamped decision); absent while there is no decision (see montage_scaler_decision_available).
# TYPE montage_scaler_decision_replicas gauge
montage_scaler_decision_replicas{namespace="media",scaledobject="worker"} 2.5
# HELP montage_scaler_component_replicas Replicas a component asked for in the last decision (absent: no opinion).
# TYPE montage_scaler_component_replicas gauge
montage_scaler_component_replicas{component="celery",namespace="media",scaledobject="worker"} 2.5
`
	if err := testutil.GatherAndCompare(f.prom, strings.NewReader(want), "montage_scaler_decision_replicas", "montage_scaler_component_replicas"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(30 * time.Second)
	if err := testutil.GatherAndCompare(f.prom, strings.NewReader(`
# HELP montage_scaler_source_age_seconds Age of the oldest last good reading of a component among the watched ScaledObjects.
# TYPE montage_scaler_source_age_seconds gauge
montage_scaler_source_age_seconds{component="celery"} 30
`), "montage_scaler_source_age_seconds"); err != nil {
		t.Fatal(err)
	}

	// Nobody asks for an IdleAfter: the watch and its series go.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.reg.Run(ctx) }()
	f.clock.Add(2 * time.Second)
	f.waitDropped(t)
	cancel()
	<-done
	if n, err := testutil.GatherAndCount(f.prom, "montage_scaler_decision_replicas", "montage_scaler_decision_available", "montage_scaler_component_replicas", "montage_scaler_source_age_seconds"); err != nil || n != 0 {
		t.Fatalf("%d series left after the drop (%v), want 0", n, err)
	}
}

// While GetMetrics answers Unavailable the decision's series is gone, not
// left at its last value, and montage_scaler_decision_available says 0.
func TestTheDecisionMetricIsDroppedWhileThereIsNoDecision(t *testing.T) {
	f := newFixture(t)
	r := ref("worker")
	src := f.source(t, r, "celery")
	src.Set(opinion(6, true), t0, nil)
	series := func() string {
		t.Helper()
		var b strings.Builder
		for _, name := range []string{"montage_scaler_decision_replicas", "montage_scaler_decision_available", "montage_scaler_component_replicas"} {
			n, err := testutil.GatherAndCount(f.prom, name)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=%d ", name, n)
		}
		return b.String()
	}
	want := func(desired, available float64) {
		t.Helper()
		exp := fmt.Sprintf(`
# HELP montage_scaler_decision_available 1 when the last answer for a ScaledObject was a decision, 0 when GetMetrics and IsActive answered Unavailable (a source past staleAfter; KEDA's fallback holds the replicas).
# TYPE montage_scaler_decision_available gauge
montage_scaler_decision_available{namespace="media",scaledobject="worker"} %g
`, available)
		names := []string{"montage_scaler_decision_available"}
		if desired >= 0 {
			exp += fmt.Sprintf(`# HELP montage_scaler_decision_replicas Desired replicas last answered for a ScaledObject (the clamped decision); absent while there is no decision (see montage_scaler_decision_available).
# TYPE montage_scaler_decision_replicas gauge
montage_scaler_decision_replicas{namespace="media",scaledobject="worker"} %g
`, desired)
		}
		names = append(names, "montage_scaler_decision_replicas")
		if err := testutil.GatherAndCompare(f.prom, strings.NewReader(exp), names...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r}); err != nil {
		t.Fatal(err)
	}
	want(6, 1)

	src.Set(opinion(6, true), t0, errors.New("dial tcp fake.invalid:6379: connection refused"))
	f.clock.Add(3 * time.Minute)
	if _, err := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r}); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetMetrics past staleAfter = %v, want Unavailable", err)
	}
	want(-1, 0)
	if got := series(); got != "montage_scaler_decision_replicas=0 montage_scaler_decision_available=1 montage_scaler_component_replicas=0 " {
		t.Fatalf("series while unavailable: %s", got)
	}

	src.Set(opinion(2, true), f.clock.Now(), nil)
	if _, err := f.ks.IsActive(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	want(2, 1)
}

func TestComponentSeriesFollowTheLatestMetadata(t *testing.T) {
	f := newFixture(t)
	old := ref("worker", "calendarURL", "https://cal.example.com/a.ics")
	f.source(t, old, "celery").Set(opinion(1, true), t0, nil)
	f.source(t, old, "calendar").Set(opinion(4, true), t0, nil)
	if _, err := f.ks.IsActive(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	// The calendar is taken out of the metadata: the new watch's decision
	// has no calendar, and its series goes although the old watch lives on.
	cur := ref("worker")
	if _, err := f.ks.GetMetricSpec(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	f.sources.Made("media", "worker")[1][0].Set(opinion(2, true), t0, nil)
	if _, err := f.ks.IsActive(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP montage_scaler_component_replicas Replicas a component asked for in the last decision (absent: no opinion).
# TYPE montage_scaler_component_replicas gauge
montage_scaler_component_replicas{component="celery",namespace="media",scaledobject="worker"} 2
`
	if err := testutil.GatherAndCompare(f.prom, strings.NewReader(want), "montage_scaler_component_replicas"); err != nil {
		t.Fatal(err)
	}
}

// A new ScaledObject beyond a process-wide limit is ResourceExhausted on
// every RPC, with the refusal's text; its running neighbour is untouched.
func TestAWatchBeyondAProcessLimitIsResourceExhaustedOnEveryRPC(t *testing.T) {
	f := newFixture(t)
	refusal := &quota.Error{Kind: quota.Brokers, Limit: quota.Limit{Max: 1, Flag: "--max-brokers"}, Scope: "the process", Shown: "redis://fake.invalid:6379/1", Have: 1, Would: 2}
	f.sources.Refuse = func(_, name string, _ *spec.Spec) error {
		if name == "newcomer" {
			return refusal
		}
		return nil
	}
	running := ref("running")
	f.source(t, running, "celery").Set(opinion(2, true), t0, nil)
	r := ref("newcomer", "brokerURL", "redis://fake.invalid:6379/1")
	stream, err := f.ks.StreamIsActive(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	_, streamErr := stream.Recv()
	calls := map[string]error{"StreamIsActive": streamErr}
	_, calls["GetMetricSpec"] = f.ks.GetMetricSpec(t.Context(), r)
	_, calls["GetMetrics"] = f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
	_, calls["IsActive"] = f.ks.IsActive(t.Context(), r)
	_, calls["Explain"] = f.insp.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
	for call, err := range calls {
		if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != refusal.Error() {
			t.Errorf("%s: %v, want ResourceExhausted %q", call, err, refusal.Error())
		}
	}
	resp, err := f.ks.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: running, MetricName: "montage-desired-replicas"})
	if err != nil || resp.MetricValues[0].MetricValueFloat != 2 {
		t.Fatalf("the running neighbour: %v, %v", resp, err)
	}
}

// GetMetrics, the read the HPA acts on, marks its watch (the pod-cost
// writer follows that one); Explain on other metadata for the same name
// opens a watch of its own, unmarked, and shows the writer's plan for the
// name.
func TestGetMetricsMarksItsWatchAndExplainShowsPodCosts(t *testing.T) {
	f := newFixture(t)
	srv := server.New(server.Options{Registry: f.reg, Now: f.clock.Now, PodCosts: func(ns, name string) (any, bool) {
		return map[string]any{"target": "deployments/" + name, "namespace": ns}, name == "worker"
	}})
	keda := ref("worker")
	f.source(t, keda, "celery").Set(opinion(3, true), t0, nil)
	if _, err := srv.GetMetrics(t.Context(), &pb.GetMetricsRequest{ScaledObjectRef: keda, MetricName: ""}); err != nil {
		t.Fatal(err)
	}
	other := ref("worker", "tasksPerReplica", "10")
	f.source(t, other, "celery").Set(opinion(1, true), t0, nil)
	e, err := srv.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: other.Namespace, Name: other.Name, ScalerMetadata: other.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.GetPodCosts().AsMap(); got["target"] != "deployments/worker" || got["namespace"] != "media" {
		t.Errorf("explain's pod costs %v", got)
	}
	marked := map[float64]bool{}
	f.reg.Each(func(w *registry.Watch) {
		c, _ := spec.Find[*celery.Config](w.Spec())
		marked[c.TasksPerReplica] = !w.MetricsAt().IsZero()
	})
	if trues := len(marked) - countFalse(marked); marked[10] || len(marked) != 2 || trues != 1 {
		t.Errorf("watches marked by GetMetrics %v, want only KEDA's (tasksPerReplica unset)", marked)
	}
	// Without a plan for the name, Explain shows none.
	e, err = srv.Explain(t.Context(), &scalerv1.ExplainRequest{Namespace: "media", Name: "api", ScalerMetadata: keda.ScalerMetadata})
	if err != nil || e.GetPodCosts() != nil {
		t.Errorf("explain without a plan: %v, pod costs %v", err, e.GetPodCosts())
	}
}

func countFalse(m map[float64]bool) int {
	n := 0
	for _, v := range m {
		if !v {
			n++
		}
	}
	return n
}
