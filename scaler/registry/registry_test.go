package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/registry/registrytest"
	"github.com/montage/montage-scaler/scaler/spec"
)

var t0 = time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)

// md is valid metadata; the fake factory never dials its broker.
func md(kv ...string) map[string]string {
	m := map[string]string{"brokerURL": "redis://fake.invalid:6379/0", "minReplicas": "1", "maxReplicas": "8"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func newRegistry(t *testing.T, clock *registrytest.Clock, o registry.Options) (*registry.Registry, *registrytest.Factory) {
	t.Helper()
	f := &registrytest.Factory{Make: func(string, string, *spec.Spec) []*registrytest.Source {
		return []*registrytest.Source{registrytest.NewSource("celery")}
	}}
	o.Sources, o.Now, o.Parse.Table = f, clock.Now, registrytest.Table()
	if o.Parse.StaleAfter == 0 {
		o.Parse.StaleAfter = 2 * time.Minute
	}
	r := registry.New(o)
	t.Cleanup(r.Close)
	return r, f
}

func TestAWatchIsMadeOncePerScaledObjectAndMetadata(t *testing.T) {
	clock := registrytest.NewClock(t0)
	r, f := newRegistry(t, clock, registry.Options{FirstWait: time.Millisecond})
	noWait, cancel := context.WithCancel(t.Context())
	cancel()
	a, err := r.Get(noWait, "media", "worker", md())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Get(noWait, "media", "worker", md())
	c, _ := r.Get(noWait, "media", "worker", md("queues", "video"))
	d, _ := r.Get(noWait, "other", "worker", md())
	if a != b || a == c || a == d || r.Len() != 3 {
		t.Fatalf("a==b %t, a==c %t, a==d %t, %d watches; want one watch per namespace, name and metadata", a == b, a == c, a == d, r.Len())
	}
	if n := len(f.Made("media", "worker")); n != 2 {
		t.Errorf("sources made %d times for media/worker, want 2 (two metadata maps)", n)
	}
	if a.Namespace() != "media" || a.Name() != "worker" || a.Spec().MetricName != spec.DefaultMetricName {
		t.Errorf("watch names %s/%s metric %q", a.Namespace(), a.Name(), a.Spec().MetricName)
	}
}

func TestBadMetadataIsAMetadataErrorAndMakesNoWatch(t *testing.T) {
	clock := registrytest.NewClock(t0)
	r, f := newRegistry(t, clock, registry.Options{})
	_, err := r.Get(t.Context(), "media", "worker", md("tasksPerReplica", "zero"))
	if !meta.IsError(err) || !strings.Contains(err.Error(), `metadata "tasksPerReplica": bad value "zero"`) {
		t.Fatalf("err = %v, want a metadata error naming tasksPerReplica", err)
	}
	if r.Len() != 0 || len(f.Made("media", "worker")) != 0 {
		t.Errorf("%d watches, %d source sets after bad metadata; want none", r.Len(), len(f.Made("media", "worker")))
	}
}

func TestTheFirstAnswerWaitsForTheFirstReadingAndNoLaterOneWaits(t *testing.T) {
	clock := registrytest.NewClock(t0)
	// Ten seconds of FirstWait: the reading ends the wait long before; a
	// first answer that did not wake on it fails the test then.
	r, f := newRegistry(t, clock, registry.Options{FirstWait: 10 * time.Second})
	got := make(chan decide.Decision, 1)
	go func() {
		d, err := r.Decide(t.Context(), "media", "worker", md())
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	// The first answer is still waiting: give the source its reading.
	waitFor(t, "the watch's source made", func() bool { return len(f.Made("media", "worker")) == 1 })
	src := f.Made("media", "worker")[0][0]
	src.Set(decide.Opinion{Desired: decide.Ptr(3), Active: true}, t0, nil)
	d := <-got
	if d.Desired == nil || *d.Desired != 3 || !d.Active {
		t.Fatalf("first answer %v (%s), want 3 active", d.Desired, d.Error)
	}

	// A source that never answers: the first answer gives up after
	// FirstWait and says "no reading yet"; later calls do not wait at all.
	r2, _ := newRegistry(t, clock, registry.Options{FirstWait: 20 * time.Millisecond})
	d, err := r2.Decide(t.Context(), "media", "silent", md())
	if err != nil || d.Desired != nil || !strings.Contains(d.Error, "celery: no reading yet") {
		t.Fatalf("silent source: %v, %v (%s); want no decision naming celery", d.Desired, err, d.Error)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // a later call with a dead context still answers: it never waits
	if d, err := r2.Decide(ctx, "media", "silent", md()); err != nil || !strings.Contains(d.Error, "no reading yet") {
		t.Fatalf("later call: %v %v", d.Error, err)
	}
}

func TestIdleWatchesAreDroppedWithTheirSourcesUnlessAStreamFollowsThem(t *testing.T) {
	clock := registrytest.NewClock(t0)
	var dropped atomic.Value
	r, f := newRegistry(t, clock, registry.Options{IdleAfter: time.Second, FirstWait: time.Millisecond,
		OnDrop: func(ns, name string) { dropped.Store(ns + "/" + name) }})
	streamed, err := r.Get(t.Context(), "media", "streamed", md())
	if err != nil {
		t.Fatal(err)
	}
	end := streamed.OpenStream(clock.Now)
	if _, err := r.Get(t.Context(), "media", "idle", md()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	clock.Add(2 * time.Second)
	// OnDrop comes after the watch leaves the registry and its sources
	// close: wait for the drop to be reported, not only for the count.
	waitFor(t, "the idle watch dropped and reported", func() bool { return r.Len() == 1 && dropped.Load() == "media/idle" })
	if got := dropped.Load(); got != "media/idle" {
		t.Errorf("OnDrop saw %v, want media/idle", got)
	}
	if !f.Made("media", "idle")[0][0].Closed() || f.Made("media", "streamed")[0][0].Closed() {
		t.Error("the idle watch's source must be closed, the streamed one's not")
	}
	// The streamed ScaledObject's metadata changes: its old watch (still
	// streamed) and its new one live side by side. When the new one goes
	// idle, the ScaledObject still has a watch: nothing is forgotten.
	if _, err := r.Get(t.Context(), "media", "streamed", md("tasksPerReplica", "7")); err != nil {
		t.Fatal(err)
	}
	dropped.Store("")
	clock.Add(2 * time.Second)
	waitFor(t, "the new version's watch dropped and its source closed", func() bool {
		return r.Len() == 1 && f.Made("media", "streamed")[1][0].Closed()
	})
	if got := dropped.Load(); got != "" {
		t.Errorf("OnDrop saw %v while media/streamed still has a watch, want nothing", got)
	}
	// The stream ends: the watch is idle from then on.
	end()
	clock.Add(2 * time.Second)
	waitFor(t, "the formerly streamed watch dropped and reported", func() bool {
		return r.Len() == 0 && dropped.Load() == "media/streamed"
	})
	if got := dropped.Load(); got != "media/streamed" {
		t.Errorf("OnDrop saw %v, want media/streamed once its last watch went", got)
	}
	cancel()
	<-done
}

func TestRunClosesEveryWatchLastSourceFirstWhenItsContextEnds(t *testing.T) {
	clock := registrytest.NewClock(t0)
	var closed []string
	f := &registrytest.Factory{Make: func(string, string, *spec.Spec) []*registrytest.Source {
		var out []*registrytest.Source
		for _, n := range []string{"celery", "latency", "forecast"} {
			s := registrytest.NewSource(n)
			s.OnClose = func() { closed = append(closed, n) }
			out = append(out, s)
		}
		return out
	}}
	r := registry.New(registry.Options{Sources: f, Now: clock.Now, FirstWait: time.Millisecond, Parse: spec.Options{Table: registrytest.Table(), StaleAfter: time.Minute}})
	if _, err := r.Get(t.Context(), "media", "worker", md()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r.Run(ctx)
	// The forecast reads the others as it closes: it goes first.
	if r.Len() != 0 || strings.Join(closed, ",") != "forecast,latency,celery" {
		t.Fatalf("after Run ended: %d watches, closed %v; want none left, closed forecast,latency,celery", r.Len(), closed)
	}
}

// Closing a source may take a while (a poller waits for its read in
// flight): the watches close side by side, none waits behind another.
// Each source here finishes closing only once every one has started to.
func TestCloseClosesTheWatchesSideBySide(t *testing.T) {
	const watches = 20
	var started sync.WaitGroup
	started.Add(watches)
	f := &registrytest.Factory{Make: func(string, string, *spec.Spec) []*registrytest.Source {
		s := registrytest.NewSource("celery")
		s.OnClose = func() { started.Done(); started.Wait() }
		return []*registrytest.Source{s}
	}}
	r := registry.New(registry.Options{Sources: f, Now: registrytest.NewClock(t0).Now, FirstWait: time.Millisecond, Parse: spec.Options{Table: registrytest.Table(), StaleAfter: time.Minute}})
	for i := range watches {
		if _, err := r.Get(t.Context(), "media", fmt.Sprintf("worker-%d", i), md()); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close still runs after 30s: the watches close one after the other")
	}
	if r.Len() != 0 {
		t.Errorf("%d watches left after Close", r.Len())
	}
}

func TestChangesWakeOnANewReadingSinceTakenATickOrDone(t *testing.T) {
	clock := registrytest.NewClock(t0)
	r, f := newRegistry(t, clock, registry.Options{FirstWait: time.Millisecond})
	w, err := r.Get(t.Context(), "media", "worker", md())
	if err != nil {
		t.Fatal(err)
	}
	src := f.Made("media", "worker")[0][0]
	never := make(chan time.Time)
	open := make(chan struct{})
	// A reading that lands after the channels were taken, before Wait is
	// called, must wake Wait: it is the window a stream reads its
	// decision in.
	changes := w.Changes()
	src.Set(decide.Opinion{}, t0, errors.New("x"))
	if !changes.Wait(open, never) {
		t.Fatal("a reading since Changes must wake Wait with true")
	}
	woke := make(chan bool)
	changes = w.Changes()
	go func() { woke <- changes.Wait(open, never) }()
	src.Set(decide.Opinion{}, t0, errors.New("y"))
	if !<-woke {
		t.Fatal("a reading while waiting must wake Wait with true")
	}
	tick := make(chan time.Time, 1)
	tick <- t0
	if !w.Changes().Wait(open, tick) {
		t.Fatal("a tick must wake Wait with true")
	}
	done := make(chan struct{})
	close(done)
	if w.Changes().Wait(done, never) {
		t.Fatal("done must wake Wait with false")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Refused metadata is kept in a bounded cache, and metadata beyond the
// limits is never kept at all; both age out like the specs of watches.
func TestRefusedMetadataIsCachedBoundedAndOversizedNeverCached(t *testing.T) {
	clock := registrytest.NewClock(t0)
	r, _ := newRegistry(t, clock, registry.Options{IdleAfter: time.Second})
	for i := range 3 * registry.MaxRejected {
		if _, err := r.Spec(md("tasksPerReplica", fmt.Sprintf("zero-%d", i))); !meta.IsError(err) {
			t.Fatalf("err = %v, want a metadata error", err)
		}
		clock.Add(time.Microsecond)
	}
	if specs, rejected := r.Cached(); specs != 0 || rejected != registry.MaxRejected {
		t.Fatalf("cached %d specs, %d refused; want 0 and %d", specs, rejected, registry.MaxRejected)
	}
	big := md("queues", strings.Repeat("q,", 1<<19))
	for range 10 {
		if _, err := r.Get(t.Context(), "media", "worker", big); !meta.IsError(err) || !strings.Contains(err.Error(), `metadata "queues": a value of 1048576 bytes`) {
			t.Fatalf("err = %v, want the value limit", err)
		}
	}
	if _, err := r.Spec(md("tasksPerReplica", "zero-0")); !meta.IsError(err) {
		t.Fatalf("err = %v", err)
	}
	if specs, rejected := r.Cached(); specs != 0 || rejected != registry.MaxRejected || r.Len() != 0 {
		t.Fatalf("cached %d specs, %d refused, %d watches after oversized metadata; want 0, %d, 0", specs, rejected, r.Len(), registry.MaxRejected)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	clock.Add(2 * time.Second)
	waitFor(t, "the refused metadata to age out", func() bool { _, rejected := r.Cached(); return rejected == 0 })
	cancel()
	<-done
}

// Unknown keys are one WARN line, however many there are.
func TestManyUnknownKeysAreOneWarnLine(t *testing.T) {
	clock := registrytest.NewClock(t0)
	var logs bytes.Buffer
	r, _ := newRegistry(t, clock, registry.Options{FirstWait: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	m := md()
	for i := range 90 {
		m[fmt.Sprintf("typo%02d", i)] = "1"
	}
	if _, err := r.Get(t.Context(), "media", "worker", m); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 || !strings.Contains(logs.String(), "90 unknown metadata keys ignored") {
		t.Fatalf("%d WARN lines:\n%s", n, logs.String())
	}
}

// A Factory's refusal (a process-wide limit) is the caller's error: no
// watch is kept, the running watches are untouched, and the next call
// asks again, so that a slot freed meanwhile is taken.
func TestARefusedWatchIsTheCallersErrorAndIsAskedForAgain(t *testing.T) {
	clock := registrytest.NewClock(t0)
	r, f := newRegistry(t, clock, registry.Options{FirstWait: time.Millisecond, IdleAfter: time.Minute})
	full := errors.New("resource exhausted: no room")
	var refuse atomic.Bool
	f.Refuse = func(namespace, _ string, _ *spec.Spec) error {
		if refuse.Load() && namespace == "newcomer" {
			return full
		}
		return nil
	}
	running, err := r.Get(t.Context(), "media", "worker", md())
	if err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	for range 2 {
		if _, err := r.Get(t.Context(), "newcomer", "worker", md()); !errors.Is(err, full) {
			t.Fatalf("err = %v, want the refusal", err)
		}
	}
	if r.Len() != 1 || len(f.Made("newcomer", "worker")) != 0 {
		t.Fatalf("%d watches, %d source sets for the newcomer; want the running one only", r.Len(), len(f.Made("newcomer", "worker")))
	}
	if again, err := r.Get(t.Context(), "media", "worker", md()); err != nil || again != running {
		t.Fatalf("the running watch: %v, same %t", err, again == running)
	}
	refuse.Store(false)
	if _, err := r.Get(t.Context(), "newcomer", "worker", md()); err != nil {
		t.Fatalf("once there is room: %v", err)
	}
}
