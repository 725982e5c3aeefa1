package server_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// usage is the process's goroutines and live heap after a full GC.
type usage struct {
	goroutines int
	heap       uint64
	rss        uint64
}

func measureUsage() usage {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, rss: vmRSS()}
}

func vmRSS() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, heap %.1f MiB, RSS %.1f MiB", u.goroutines, float64(u.heap)/(1<<20), float64(u.rss)/(1<<20))
}

// RPC abuse — 10,000 keys, a 1 MB value, metadata that is not UTF-8, 2,000
// StreamIsActive opened and closed at once, 200 streams at the same time —
// is refused or served, and afterwards the server's goroutines and heap
// come back to what they were (the watches the streams made are dropped
// as idle, as in serve).
func TestRPCAbuseLeavesGoroutinesAndMemoryAtTheirBaseline(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() { defer close(runDone); f.reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	// Warm the client connection and the server's first watch path.
	warm := ref("warm")
	f.source(t, warm, "celery").Set(opinion(1, false), t0, nil)
	if _, err := f.ks.IsActive(t.Context(), warm); err != nil {
		t.Fatal(err)
	}
	dropIdle := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for f.reg.Len() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d watches still there", f.reg.Len())
			}
			// Past IdleAfter (1s) again: a stream that ended since counts
			// as a use.
			f.clock.Add(2 * time.Second)
			time.Sleep(10 * time.Millisecond)
		}
	}
	dropIdle()
	base := measureUsage()

	invalid := func(r *pb.ScaledObjectRef, want string) {
		t.Helper()
		_, err := f.ks.IsActive(t.Context(), r)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), want) {
			t.Fatalf("IsActive = %v, want InvalidArgument %q", err, want)
		}
	}
	// 10,000 keys, 200 times over with distinct keys.
	for i := range 200 {
		r := ref("keys")
		for k := range 10000 {
			r.ScalerMetadata[fmt.Sprintf("k%d-%05d", i, k)] = "v"
		}
		invalid(r, "more than the 100 allowed")
	}
	// 1 MB values, 200 distinct ones (the fault probe's 573 MB).
	for i := range 200 {
		invalid(ref("big", "queues", strconv.Itoa(i)+strings.Repeat("q,", 1<<19)), `metadata "queues": a value of`)
	}
	// Metadata that is not UTF-8, through the raw codec.
	for i := range 100 {
		req := wireRef("w", "media", "brokerURL", "redis://fake.invalid:6379/0", "queues", fmt.Sprintf("v%d\xff", i))
		var resp []byte
		err := f.conn.Invoke(t.Context(), pb.ExternalScaler_IsActive_FullMethodName, &req, &resp, grpc.ForceCodecV2(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("not UTF-8: %v", err)
		}
	}
	// 2,000 StreamIsActive opened and closed at once.
	quick := ref("quick")
	f.source(t, quick, "celery").Set(opinion(2, true), t0, nil)
	for i := range 2000 {
		sctx, scancel := context.WithCancel(t.Context())
		stream, err := f.ks.StreamIsActive(sctx, quick)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		scancel()
	}
	// 200 streams open at the same time, each on its own ScaledObject.
	var wg sync.WaitGroup
	scancel := make([]context.CancelFunc, 200)
	errs := make(chan error, 200)
	for i := range 200 {
		sctx, c := context.WithCancel(t.Context())
		scancel[i] = c
		r := ref(fmt.Sprintf("stream-%d", i))
		wg.Go(func() {
			stream, err := f.ks.StreamIsActive(sctx, r)
			if err == nil {
				_, err = stream.Recv() // the state once the first reading is in
			}
			errs <- err
		})
	}
	for i := range 200 {
		f.source(t, ref(fmt.Sprintf("stream-%d", i)), "celery").Set(opinion(3, true), t0, nil)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	peak := measureUsage()
	for _, c := range scancel {
		c()
	}
	dropIdle()

	// Back to the baseline: goroutines end with their streams and watches
	// (waited for: a cancelled stream's handler returns on its own
	// goroutine), and the heap holds nothing of the abuse.
	var after usage
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = measureUsage()
		if after.goroutines <= base.goroutines || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("baseline: %s\nduring the 200 streams: %s\nafter: %s", base, peak, after)
	if after.goroutines > base.goroutines {
		t.Errorf("%d goroutines after the abuse, %d before", after.goroutines, base.goroutines)
	}
	if after.heap > base.heap+4<<20 {
		t.Errorf("heap %.1f MiB after the abuse, %.1f MiB before (allowed: +4 MiB)", float64(after.heap)/(1<<20), float64(base.heap)/(1<<20))
	}
	if specs, rejected := f.reg.Cached(); specs != 0 || rejected != 0 {
		t.Errorf("%d specs and %d refused metadata still cached", specs, rejected)
	}
}
