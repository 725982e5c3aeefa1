package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// rpcAndSoak runs the RPC figures against one scaler and then, on the same
// scaler with its 500 ScaledObjects, the soak.
func rpcAndSoak(ctx context.Context, bin, broker, redisAddr string, proxy *countingProxy, calls, objects, trials int, soak time.Duration, sections map[string]bool) error {
	sc, err := startScaler(ctx, bin, os.Stderr, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer sc.stop()
	ks, hc, httpAddr := sc.ks, sc.hc, sc.httpAddr
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	refFor := func(i int) *pb.ScaledObjectRef {
		return &pb.ScaledObjectRef{Name: fmt.Sprintf("so-%d", i), Namespace: "bench",
			ScalerMetadata: map[string]string{"brokerURL": broker, "queues": fmt.Sprintf("q%d,shared", i), "maxReplicas": "8"}}
	}
	warm := func(n int) error {
		for i := range n {
			r := refFor(i)
			if _, err := ks.GetMetricSpec(ctx, r); err != nil {
				return err
			}
			if _, err := ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"}); err != nil {
				return err
			}
		}
		return nil
	}
	getMetrics := func(r *pb.ScaledObjectRef) error {
		_, err := ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
		return err
	}
	if sections["rpc"] {
		floor := measure(calls, func() error { _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err })
		if floor.err != nil {
			return floor.err
		}
		fmt.Printf("%-44s p50 %8s  p99 %8s   (floor)\n", "gRPC Health/Check round trip", floor.p50, floor.p99)
		report := func(label string, goalP50, goalP99 float64, fn func(*pb.ScaledObjectRef) error, n int) error {
			res := measure(calls, func() error { return fn(refFor(rand.IntN(n))) })
			if res.err != nil {
				return fmt.Errorf("%s: %w", label, res.err)
			}
			r50, r99 := ratio(res.p50, floor.p50), ratio(res.p99, floor.p99)
			fmt.Printf("%-44s p50 %8s  p99 %8s   = %.2f× / %.2f× floor (goal ≤ %.1f× / %.1f×) %s\n",
				label, res.p50, res.p99, r50, r99, goalP50, goalP99, verdict(r50 <= goalP50 && r99 <= goalP99))
			return nil
		}
		isActive := func(r *pb.ScaledObjectRef) error { _, err := ks.IsActive(ctx, r); return err }

		if err := warm(1); err != nil {
			return err
		}
		if err := report("GetMetrics, 1 ScaledObject", 1.5, 2, getMetrics, 1); err != nil {
			return err
		}
		if err := report("IsActive, 1 ScaledObject", 1.5, 2, isActive, 1); err != nil {
			return err
		}
		time.Sleep(time.Second)
		rt1, polls1 := roundTripsPerPoll(ctx, proxy, httpAddr, 5*time.Second)

		if err := warm(objects); err != nil {
			return err
		}
		if err := report(fmt.Sprintf("GetMetrics, %d ScaledObjects", objects), 1.5, 2, getMetrics, objects); err != nil {
			return err
		}
		if err := report(fmt.Sprintf("IsActive, %d ScaledObjects", objects), 1.5, 2, isActive, objects); err != nil {
			return err
		}
		time.Sleep(time.Second)
		rtN, pollsN := roundTripsPerPoll(ctx, proxy, httpAddr, 5*time.Second)
		// A poll reads its layouts in rounds of at most 1,000 lists (8 lists
		// each here): one round trip more per round, whatever else grows.
		rounds := (objects*8 + 999) / 1000
		fmt.Printf("%-44s %.2f with 1, %.2f with %d in %d rounds of ≤ 1,000 lists (%d and %d polls; goal: one more per round) %s\n",
			"Redis round trips per poll", rt1, rtN, objects, rounds, polls1, pollsN, verdict(rtN <= (rt1+float64(rounds-1))*1.1+0.1))

		pushP50, pushP99, err := pushActivation(ctx, ks, rdb, broker, trials)
		if err != nil {
			return err
		}
		fmt.Printf("%-44s p50 %8s  p99 %8s   (goal ≤ 250ms / ≤ 1s; KEDA's polling averages 15s) %s\n",
			"push activation: LPUSH → true on the stream", pushP50, pushP99, verdict(pushP50 <= 250*time.Millisecond && pushP99 <= time.Second))
	}
	if !sections["soak"] {
		return nil
	}
	if err := warm(objects); err != nil {
		return err
	}
	// Keep every ScaledObject asked about, as KEDA would every 15-30 s;
	// the first reading is taken after one round, once the watches and
	// their buffers exist.
	round := func() {
		for i := range objects {
			_ = getMetrics(refFor(i))
		}
	}
	round()
	time.Sleep(15 * time.Second)
	start := sc.usage()
	fmt.Printf("%-44s %s; soak for %s with KEDA-like calls (every ScaledObject every 15 s)...\n",
		fmt.Sprintf("soak start, %d ScaledObjects", objects), start, soak)
	deadline := time.Now().Add(soak)
	samples := []usage{start}
	for time.Now().Before(deadline) {
		round()
		time.Sleep(min(15*time.Second, time.Until(deadline)))
		samples = append(samples, sc.usage())
	}
	end := samples[len(samples)-1]
	rssMax := slices.MaxFunc(samples, func(a, b usage) int { return int(a.rss - b.rss) })
	grMax := slices.MaxFunc(samples, func(a, b usage) int { return a.goroutines - b.goroutines })
	rssRatio := float64(end.rss) / float64(start.rss)
	grRatio := float64(end.goroutines) / float64(start.goroutines)
	fmt.Printf("%-44s %s after %s (%d samples)\n", "soak end", end, soak, len(samples))
	// A leak grows: the goal bounds growth. Less at the end than at the
	// start (a connection closed, the GC returning memory) is not a miss.
	fmt.Printf("%-44s RSS %.3f× the start (max %.1f MiB), goroutines %.3f× (max %d) (goal: neither grows more than 5%%) %s\n",
		"soak: flat?", rssRatio, float64(rssMax.rss)/(1<<20), grRatio, grMax.goroutines,
		verdict(rssRatio <= 1.05 && grRatio <= 1.05))
	return nil
}
