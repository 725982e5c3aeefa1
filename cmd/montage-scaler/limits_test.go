package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/test/servers"
)

// bigRef is a trigger at the per-object limits: 100 queues × 10 priority
// steps = 1,000 lists, its queue names its own.
func bigRef(brokerURL, namespace, name string) *pb.ScaledObjectRef {
	queues := make([]string, 100)
	for i := range queues {
		queues[i] = fmt.Sprintf("%s-%03d", name, i)
	}
	return &pb.ScaledObjectRef{Namespace: namespace, Name: name, ScalerMetadata: map[string]string{
		"brokerURL": brokerURL, "queues": strings.Join(queues, ","), "prioritySteps": "0,1,2,3,4,5,6,7,8,9"}}
}

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// The broker's poll is shared by every ScaledObject on it. 400 objects at
// the per-object limits (400,000 lists) once made one pipeline that timed
// out, so that a small object on the same broker failed with them, and the
// scaler's heap grew by hundreds of MB. Now the lists of one broker are
// bounded (the objects beyond --max-lists-per-broker are refused with
// ResourceExhausted naming the limit and the broker, redacted), and the
// poll runs in chunks with deadlines of their own: the small object reads
// fresh through every poll, and the heap stays within a stated bound.
func TestASmallObjectStaysFreshBesideObjectsAtTheLimitOnItsBroker(t *testing.T) {
	rs := servers.StartRedisWith(t, servers.RedisOptions{Password: "s3cret-pw"})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), Password: "s3cret-pw"})
	t.Cleanup(func() { rdb.Close() })
	broker := "redis://:s3cret-pw@" + rs.Addr() + "/0"
	push(t, rdb, "video", 3)
	heap0 := heapInUse()
	p := startServe(t, "--log-level", "info")
	small := ref(broker, "queues", "video")
	wantMetric(t, p, small, 0.6)

	const bigs = 400
	accepted, refused := 0, 0
	for i := range bigs {
		// A namespace each: the per-broker bound is the one tested here.
		r := bigRef(broker, fmt.Sprintf("tenant-%03d", i), fmt.Sprintf("big%03d", i))
		_, err := p.ks.GetMetricSpec(ctxT(t), r)
		switch {
		case err == nil:
			accepted++
		case status.Code(err) == codes.ResourceExhausted:
			refused++
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, "--max-lists-per-broker") || !strings.Contains(msg, "redis://:xxxxx@"+rs.Addr()+"/0") || strings.Contains(msg, "s3cret-pw") {
				t.Fatalf("refusal %q: want the limit and the broker, redacted", msg)
			}
		default:
			t.Fatalf("GetMetricSpec of %s: %v", r.Name, err)
		}
	}
	t.Logf("%d objects at the limits accepted, %d refused", accepted, refused)

	// Every poll from now on: the small object's reading is good and new.
	errorsBefore := sourceErrors(t, p)
	in := scalerv1.NewInspectorClient(p.conn)
	var last time.Time
	fresh := 0
	ctx := ctxWithin(t, 2*time.Minute)
	for fresh < 40 {
		e, err := in.Explain(ctx, &scalerv1.ExplainRequest{Name: small.Name, Namespace: small.Namespace, ScalerMetadata: small.ScalerMetadata})
		if err != nil {
			t.Fatalf("after %d fresh readings: Explain: %v", fresh, err)
		}
		c := e.Components[0]
		if c.Error != "" || c.Held || c.Stale || e.GetDesiredReplicas() != 0.6 {
			t.Fatalf("after %d fresh readings the small object reads: error %q, held %v, stale %v, desired %v", fresh, c.Error, c.Held, c.Stale, e.GetDesiredReplicas())
		}
		if at := c.ObservedAt.AsTime(); at.After(last) {
			last = at
			fresh++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := sourceErrors(t, p) - errorsBefore; n != 0 {
		t.Fatalf("%v failed polls of the broker while the small object was read", n)
	}
	// The refusals evicted no running watch: the first object at the
	// limits still answers.
	if v, err := metricValue(t, p, bigRef(broker, "tenant-000", "big000")); err != nil || v != 0 {
		t.Fatalf("the first object at the limits: %v, %v", v, err)
	}
	// The bound: the heap the scaler holds for all this, judged after a
	// collection, stays within 64 MiB of where it started.
	const bound = 64 << 20
	if grown := int64(heapInUse()) - int64(heap0); grown > bound {
		t.Fatalf("heap in use grew by %.1f MiB, more than the %d MiB bound", float64(grown)/(1<<20), bound>>20)
	} else {
		t.Logf("heap in use grew by %.1f MiB (bound %d MiB)", float64(grown)/(1<<20), bound>>20)
	}
}

// sourceErrors is montage_scaler_source_errors_total of the celery
// component.
func sourceErrors(t *testing.T, p *scalerProc) float64 {
	t.Helper()
	total := 0.0
	for _, l := range metricLines(t, p, "montage_scaler_source_errors_total") {
		if !strings.Contains(l, `component="celery"`) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		total += v
	}
	return total
}

// 300 ScaledObjects naming 300 distinct brokers (one Redis db each) once
// took two connections each, 600 in all: a broker with maxclients 100
// refused the Celery app itself ("ERR max number of clients reached").
// Now distinct brokers are capped (--max-brokers, default 64) and each
// costs one connection, the worker heartbeats one per Redis server: the
// objects beyond the cap are refused with ResourceExhausted naming the
// limit and the broker, and the app keeps its connections.
func TestDistinctBrokersAreCappedSoTheAppKeepsItsConnections(t *testing.T) {
	const maxclients = 100
	rs := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{"--databases", "1000", "--maxclients", strconv.Itoa(maxclients)}})
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 1})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "--log-level", "info")
	first := ref(rs.URL(1), "queues", "video")
	wantMetric(t, p, first, 0)

	accepted, refused := 1, 0
	for db := 2; db <= 300; db++ {
		r := ref(rs.URL(db), "queues", "video")
		r.Namespace, r.Name = fmt.Sprintf("tenant-%03d", db), "app"
		_, err := p.ks.GetMetricSpec(ctxT(t), r)
		switch {
		case err == nil:
			accepted++
		case status.Code(err) == codes.ResourceExhausted:
			refused++
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, "--max-brokers") || !strings.Contains(msg, rs.URL(db)) {
				t.Fatalf("refusal %q: want the limit and the broker", msg)
			}
		default:
			t.Fatalf("GetMetricSpec on db %d: %v", db, err)
		}
	}
	// Let every accepted watch connect and poll.
	for range 3 {
		wantMetric(t, p, first, 0)
		time.Sleep(200 * time.Millisecond)
	}
	info, err := admin.Info(t.Context(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	clients := infoField(t, info, "connected_clients")
	t.Logf("%d objects accepted, %d refused; the broker has %d clients (the test's own included)", accepted, refused, clients)

	// The Celery app connects and works.
	app := redis.NewClient(&redis.Options{Addr: rs.Addr(), DB: 1, PoolSize: 1, MaxRetries: -1})
	t.Cleanup(func() { app.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := app.LPush(ctx, "video", "task").Err(); err != nil {
		t.Fatalf("the app's own connection: %v (the scaler holds %d of %d client slots)", err, clients, maxclients)
	}
	wantMetric(t, p, first, 0.2)
}

// infoField reads a number from INFO's output.
func infoField(t *testing.T, info, field string) int {
	t.Helper()
	for l := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", field, info)
	return 0
}
