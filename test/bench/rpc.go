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
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	b := &rpcBench{sc: sc, rdb: rdb, broker: broker, proxy: proxy, calls: calls, objects: objects}
	if sections["rpc"] {
		if err := b.rpc(ctx, trials); err != nil {
			return err
		}
	}
	if !sections["soak"] {
		return nil
	}
	return b.soak(ctx, soak)
}

// rpcBench is the scaler of the RPC and soak figures, the ScaledObjects
// asked about and their broker (through the counting proxy).
type rpcBench struct {
	sc      *scaler
	rdb     *redis.Client
	broker  string
	proxy   *countingProxy
	calls   int // RPCs per latency figure
	objects int // ScaledObjects of the many-objects figures
}

// ref is the i-th ScaledObject: a queue of its own and one they share.
func (b *rpcBench) ref(i int) *pb.ScaledObjectRef {
	return &pb.ScaledObjectRef{Name: fmt.Sprintf("so-%d", i), Namespace: "bench",
		ScalerMetadata: map[string]string{"brokerURL": b.broker, "queues": fmt.Sprintf("q%d,shared", i), "maxReplicas": "8"}}
}

// warm asks for the first n ScaledObjects' spec and metric, so that their
// watches exist and have read.
func (b *rpcBench) warm(ctx context.Context, n int) error {
	for i := range n {
		r := b.ref(i)
		if _, err := b.sc.ks.GetMetricSpec(ctx, r); err != nil {
			return err
		}
		if err := b.getMetrics(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (b *rpcBench) getMetrics(ctx context.Context, r *pb.ScaledObjectRef) error {
	_, err := b.sc.ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
	return err
}

func (b *rpcBench) isActive(ctx context.Context, r *pb.ScaledObjectRef) error {
	_, err := b.sc.ks.IsActive(ctx, r)
	return err
}

// rpc prints the RPC figures: the floor, GetMetrics and IsActive with 1
// and with many ScaledObjects, the broker's round trips per poll, and
// push activation.
func (b *rpcBench) rpc(ctx context.Context, trials int) error {
	floor := measure(b.calls, func() error { _, err := b.sc.hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err })
	if floor.err != nil {
		return floor.err
	}
	fmt.Printf("%-44s p50 %8s  p99 %8s   (floor)\n", "gRPC Health/Check round trip", floor.p50, floor.p99)
	rt1, polls1, err := b.latencies(ctx, floor, 1, "1 ScaledObject")
	if err != nil {
		return err
	}
	rtN, pollsN, err := b.latencies(ctx, floor, b.objects, fmt.Sprintf("%d ScaledObjects", b.objects))
	if err != nil {
		return err
	}
	// A poll reads its layouts in rounds of at most 1,000 lists (8 lists
	// each here): one round trip more per round, whatever else grows.
	rounds := (b.objects*8 + 999) / 1000
	fmt.Printf("%-44s %.2f with 1, %.2f with %d in %d rounds of ≤ 1,000 lists (%d and %d polls; goal: one more per round) %s\n",
		"Redis round trips per poll", rt1, rtN, b.objects, rounds, polls1, pollsN, verdict(rtN <= (rt1+float64(rounds-1))*1.1+0.1))

	pushP50, pushP99, err := pushActivation(ctx, b.sc.ks, b.rdb, b.broker, trials)
	if err != nil {
		return err
	}
	fmt.Printf("%-44s p50 %8s  p99 %8s   (goal ≤ 250ms / ≤ 1s; KEDA's polling averages 15s) %s\n",
		"push activation: LPUSH → true on the stream", pushP50, pushP99, verdict(pushP50 <= 250*time.Millisecond && pushP99 <= time.Second))
	return nil
}

// latencies warms n ScaledObjects, prints GetMetrics' and IsActive's
// latencies over them beside floor, and then counts the broker's round
// trips per poll.
func (b *rpcBench) latencies(ctx context.Context, floor result, n int, objects string) (roundTrips float64, polls int, err error) {
	if err := b.warm(ctx, n); err != nil {
		return 0, 0, err
	}
	for _, rpc := range []struct {
		name string
		call func(context.Context, *pb.ScaledObjectRef) error
	}{{"GetMetrics", b.getMetrics}, {"IsActive", b.isActive}} {
		label := rpc.name + ", " + objects
		res := measure(b.calls, func() error { return rpc.call(ctx, b.ref(rand.IntN(n))) })
		if res.err != nil {
			return 0, 0, fmt.Errorf("%s: %w", label, res.err)
		}
		const goalP50, goalP99 = 1.5, 2.0
		r50, r99 := ratio(res.p50, floor.p50), ratio(res.p99, floor.p99)
		fmt.Printf("%-44s p50 %8s  p99 %8s   = %.2f× / %.2f× floor (goal ≤ %.1f× / %.1f×) %s\n",
			label, res.p50, res.p99, r50, r99, goalP50, goalP99, verdict(r50 <= goalP50 && r99 <= goalP99))
	}
	time.Sleep(time.Second)
	roundTrips, polls = roundTripsPerPoll(ctx, b.proxy, b.sc.httpAddr, 5*time.Second)
	return roundTrips, polls, nil
}

// soak keeps every ScaledObject asked about, as KEDA would every 15-30 s,
// for d, and prints the scaler's RSS and goroutines at the start and the
// end; the first reading is taken after one round, once the watches and
// their buffers exist.
func (b *rpcBench) soak(ctx context.Context, d time.Duration) error {
	if err := b.warm(ctx, b.objects); err != nil {
		return err
	}
	round := func() {
		for i := range b.objects {
			_ = b.getMetrics(ctx, b.ref(i))
		}
	}
	round()
	time.Sleep(15 * time.Second)
	start := b.sc.usage()
	fmt.Printf("%-44s %s; soak for %s with KEDA-like calls (every ScaledObject every 15 s)...\n",
		fmt.Sprintf("soak start, %d ScaledObjects", b.objects), start, d)
	deadline := time.Now().Add(d)
	samples := []usage{start}
	for time.Now().Before(deadline) {
		round()
		time.Sleep(min(15*time.Second, time.Until(deadline)))
		samples = append(samples, b.sc.usage())
	}
	end := samples[len(samples)-1]
	rssMax := slices.MaxFunc(samples, func(a, b usage) int { return int(a.rss - b.rss) })
	grMax := slices.MaxFunc(samples, func(a, b usage) int { return a.goroutines - b.goroutines })
	rssRatio := float64(end.rss) / float64(start.rss)
	grRatio := float64(end.goroutines) / float64(start.goroutines)
	fmt.Printf("%-44s %s after %s (%d samples)\n", "soak end", end, d, len(samples))
	// A leak grows: the goal bounds growth. Less at the end than at the
	// start (a connection closed, the GC returning memory) is not a miss.
	fmt.Printf("%-44s RSS %.3f× the start (max %.1f MiB), goroutines %.3f× (max %d) (goal: neither grows more than 5%%) %s\n",
		"soak: flat?", rssRatio, float64(rssMax.rss)/(1<<20), grRatio, grMax.goroutines,
		verdict(rssRatio <= 1.05 && grRatio <= 1.05))
	return nil
}
