package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"

	"github.com/montage/montage-scaler/test/servers"
)

// abuse measures the scaler's RSS, heap and goroutines before and after
// the RPC abuse of issue 15 on a scaler of its own (--idle-after 5s, so
// that the abuse's watches are dropped while the bench waits): 200
// requests with 1 MB of distinct metadata (the fault probe's 32 → 573 MB),
// 200 with 10,000 keys, 2,000 StreamIsActive opened and closed at once,
// 200 streams open at the same time.
func abuse(ctx context.Context, bin, broker string) error {
	s, err := startScaler(ctx, bin, os.Stderr, "--log-level", "warn", "--idle-after", "5s")
	if err != nil {
		return err
	}
	defer s.stop()
	ref := func(name string, kv ...string) *pb.ScaledObjectRef {
		md := map[string]string{"brokerURL": broker, "queues": "abuse"}
		for i := 0; i+1 < len(kv); i += 2 {
			md[kv[i]] = kv[i+1]
		}
		return &pb.ScaledObjectRef{Namespace: "bench", Name: name, ScalerMetadata: md}
	}
	if _, err := s.ks.IsActive(ctx, ref("warm")); err != nil {
		return err
	}
	time.Sleep(7 * time.Second) // the warm-up watch is dropped
	before := s.usage()
	fmt.Printf("%-44s %s\n", "abuse: before", before)

	refused := 0
	call := func(r *pb.ScaledObjectRef) {
		if _, err := s.ks.GetMetricSpec(ctx, r); err != nil {
			refused++
		}
	}
	for i := range 200 {
		call(ref("mb", "queues", fmt.Sprintf("%d,%s", i, strings.Repeat("q,", 1<<19))))
	}
	peak := s.usage()
	fmt.Printf("%-44s %s (%d of 200 refused)\n", "abuse: after 200 × 1 MB distinct metadata", peak, refused)
	refused = 0
	for i := range 200 {
		r := ref("keys")
		for k := range 10000 {
			r.ScalerMetadata[fmt.Sprintf("k%d-%05d", i, k)] = "v"
		}
		call(r)
	}
	fmt.Printf("%-44s %s (%d of 200 refused)\n", "abuse: after 200 × 10,000 keys", s.usage(), refused)
	for i := range 2000 {
		sctx, cancel := context.WithCancel(ctx)
		if st, err := s.ks.StreamIsActive(sctx, ref("quick")); err == nil && i%2 == 0 {
			_, _ = st.Recv()
		}
		cancel()
	}
	var wg sync.WaitGroup
	sctx, cancel := context.WithCancel(ctx)
	for i := range 200 {
		wg.Go(func() {
			if st, err := s.ks.StreamIsActive(sctx, ref(fmt.Sprintf("stream-%d", i))); err == nil {
				_, _ = st.Recv()
			}
		})
	}
	wg.Wait()
	fmt.Printf("%-44s %s\n", "abuse: 2,000 quick + 200 open streams", s.usage())
	streamsEnd := time.Now()
	cancel()
	// The watches are dropped after 5 s idle; an idle Go process collects
	// its garbage at the latest every 2 minutes and then returns memory to
	// the OS: RSS is read at 30 s and past that.
	var after usage
	for _, wait := range []time.Duration{30 * time.Second, 150 * time.Second} {
		time.Sleep(wait - time.Since(streamsEnd))
		after = s.usage()
		fmt.Printf("%-44s %s (RSS %.2f× the baseline, goroutines %+d)\n", fmt.Sprintf("abuse: %s after", wait), after,
			float64(after.rss)/float64(before.rss), after.goroutines-before.goroutines)
	}
	// Back to the baseline: the goroutines exactly, the heap in use within
	// 4 MiB (as the in-process test asserts); RSS is shown, not judged, as
	// the Go runtime returns freed memory to the OS lazily.
	fmt.Printf("%-44s goroutines %d → %d, heap in use %.1f → %.1f MiB (goal: goroutines back, heap within 4 MiB), RSS %.1f → %.1f MiB (the probe's figures before the limits: RSS 32 → 573 MB) %s\n",
		"abuse: back to the baseline?", before.goroutines, after.goroutines, float64(before.heap)/(1<<20), float64(after.heap)/(1<<20),
		float64(before.rss)/(1<<20), float64(after.rss)/(1<<20),
		verdict(after.goroutines <= before.goroutines && after.heap <= before.heap+4<<20))
	return nil
}

// flap measures the log volume of a scaler at --log-level debug while its
// broker goes down and up every 3 s for the given time, with objects
// ScaledObjects asked about by KEDA-like calls (GetMetrics and IsActive
// each every 5 s).
func flap(ctx context.Context, bin, dir string, objects int, d time.Duration) error {
	rs, err := servers.RunRedis(dir)
	if err != nil {
		return err
	}
	defer rs.Stop()
	var mu sync.Mutex
	var bytes, lines int
	byMsg := map[string]int{}
	logs := &lineWriter{w: io.Discard, each: func(l string) {
		var rec struct {
			Msg   string `json:"msg"`
			Level string `json:"level"`
		}
		_ = json.Unmarshal([]byte(l), &rec)
		mu.Lock()
		bytes += len(l) + 1
		lines++
		byMsg[rec.Level+" "+rec.Msg] += len(l) + 1
		mu.Unlock()
	}}
	s, err := startScaler(ctx, bin, logs, "--log-level", "debug", "--redis-timeout", "300ms")
	if err != nil {
		return err
	}
	defer s.stop()
	broker := rs.URL(0)
	refs := make([]*pb.ScaledObjectRef, objects)
	for i := range refs {
		refs[i] = &pb.ScaledObjectRef{Namespace: "bench", Name: fmt.Sprintf("flap-%d", i),
			ScalerMetadata: map[string]string{"brokerURL": broker, "queues": fmt.Sprintf("q%d", i)}}
		if _, err := s.ks.GetMetricSpec(ctx, refs[i]); err != nil {
			return err
		}
	}
	cctx, stopCalls := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range refs {
		wg.Go(func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				_, _ = s.ks.GetMetrics(cctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
				_, _ = s.ks.IsActive(cctx, r)
				select {
				case <-cctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	time.Sleep(5 * time.Second) // steady state before the flap
	mu.Lock()
	bytes0, lines0 := bytes, lines
	byMsg = map[string]int{}
	mu.Unlock()
	start := time.Now()
	for up := false; time.Since(start) < d; up = !up {
		if up {
			// On its port again: the scaler's metadata names it.
			if err := rs.StopAndStart(); err != nil {
				stopCalls()
				wg.Wait()
				return fmt.Errorf("flap: redis-server again on %s: %w", rs.Addr(), err)
			}
		} else {
			rs.Stop()
		}
		time.Sleep(3 * time.Second)
	}
	elapsed := time.Since(start)
	mu.Lock()
	b, l := bytes-bytes0, lines-lines0
	top := make([]string, 0, len(byMsg))
	for m := range byMsg {
		top = append(top, m)
	}
	slices.SortFunc(top, func(x, y string) int { return byMsg[y] - byMsg[x] })
	var parts []string
	for _, m := range top[:min(len(top), 6)] {
		parts = append(parts, fmt.Sprintf("%q %d B", m, byMsg[m]))
	}
	mu.Unlock()
	stopCalls()
	wg.Wait()
	perMin := float64(b) / elapsed.Minutes()
	rpc := byMsg["DEBUG finished call"]
	fmt.Printf("%-44s %.0f bytes/min, %.0f lines/min over %s with %d ScaledObjects (Redis down/up every 3s)\n",
		"log volume at debug during a broker flap", perMin, float64(l)/elapsed.Minutes(), elapsed.Round(time.Second), objects)
	fmt.Printf("%-44s %.0f bytes/min without the finished-call lines (one per RPC, %.0f bytes/min: they follow KEDA's calls, not the fault)\n",
		"  of which the fault's", float64(b-rpc)/elapsed.Minutes(), float64(rpc)/elapsed.Minutes())
	fmt.Printf("%-44s %s\n", "  largest by level and message", strings.Join(parts, ", "))
	return nil
}
