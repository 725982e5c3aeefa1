// Command bench measures montage-scaler's RPC path against the real binary
// and a private redis-server, printing each figure beside a floor measured in
// the same run (the gRPC Health/Check round trip on the same server):
//
//   - GetMetrics and IsActive from a warm snapshot, 1 and 500 ScaledObjects
//     (goal: p50 ≤ 1.5× floor, p99 ≤ 2× floor);
//   - push activation: LPUSH into an empty queue to `true` on StreamIsActive
//     (goal: p50 ≤ 250 ms, p99 ≤ 1 s);
//   - Redis round trips per poll with 500 ScaledObjects on one broker
//     (goal: constant), counted by a loopback proxy that sees every turn of
//     the conversation;
//   - RSS with 500 ScaledObjects and after --soak of polling (goal: flat).
//
// Nothing is asserted: the figures are printed for people to judge.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("scaler", "bin/montage-scaler", "montage-scaler binary")
	calls := flag.Int("calls", 5000, "RPCs per latency figure")
	objects := flag.Int("objects", 500, "ScaledObjects for the many-objects figures")
	trials := flag.Int("push-trials", 40, "push activation trials")
	soak := flag.Duration("soak", 10*time.Minute, "polling time before the second RSS reading")
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir, err := os.MkdirTemp("", "montage-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	redisAddr, stopRedis, err := startRedis(ctx, dir)
	if err != nil {
		return err
	}
	defer stopRedis()
	proxy, err := newCountingProxy(redisAddr)
	if err != nil {
		return err
	}
	defer proxy.close()

	grpcAddr, httpAddr := freeAddr(), freeAddr()
	cmd := exec.Command(*bin, "serve", "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (make build): %w", *bin, err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ks := pb.NewExternalScalerClient(conn)
	hc := healthpb.NewHealthClient(conn)
	for i := 0; ; i++ {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
			break
		} else if i > 100 {
			return fmt.Errorf("scaler not serving: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()

	broker := "redis://" + proxy.addr() + "/0"
	refFor := func(i int) *pb.ScaledObjectRef {
		return &pb.ScaledObjectRef{Name: fmt.Sprintf("so-%d", i), Namespace: "bench",
			ScalerMetadata: map[string]string{"brokerURL": broker, "queues": fmt.Sprintf("q%d,shared", i), "maxReplicas": "8"}}
	}

	fmt.Printf("montage-scaler bench: %d cores, %d calls per figure\n\n", numCPU(), *calls)
	floor := measure(*calls, func() error { _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err })
	if floor.err != nil {
		return floor.err
	}
	fmt.Printf("%-44s p50 %8s  p99 %8s   (floor)\n", "gRPC Health/Check round trip", floor.p50, floor.p99)

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
	report := func(label string, goalP50, goalP99 float64, fn func(*pb.ScaledObjectRef) error, n int) error {
		res := measure(*calls, func() error { return fn(refFor(rand.IntN(n))) })
		if res.err != nil {
			return fmt.Errorf("%s: %w", label, res.err)
		}
		r50, r99 := ratio(res.p50, floor.p50), ratio(res.p99, floor.p99)
		fmt.Printf("%-44s p50 %8s  p99 %8s   = %.2f× / %.2f× floor (goal ≤ %.1f× / %.1f×) %s\n",
			label, res.p50, res.p99, r50, r99, goalP50, goalP99, verdict(r50 <= goalP50 && r99 <= goalP99))
		return nil
	}
	getMetrics := func(r *pb.ScaledObjectRef) error {
		_, err := ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
		return err
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

	if err := warm(*objects); err != nil {
		return err
	}
	if err := report(fmt.Sprintf("GetMetrics, %d ScaledObjects", *objects), 1.5, 2, getMetrics, *objects); err != nil {
		return err
	}
	if err := report(fmt.Sprintf("IsActive, %d ScaledObjects", *objects), 1.5, 2, isActive, *objects); err != nil {
		return err
	}
	time.Sleep(time.Second)
	rtN, pollsN := roundTripsPerPoll(ctx, proxy, httpAddr, 5*time.Second)
	fmt.Printf("%-44s %.2f with 1, %.2f with %d (%d and %d polls; goal: constant) %s\n",
		"Redis round trips per poll", rt1, rtN, *objects, polls1, pollsN, verdict(rtN <= rt1*1.1+0.1))

	pushP50, pushP99, err := pushActivation(ctx, ks, rdb, broker, *trials)
	if err != nil {
		return err
	}
	fmt.Printf("%-44s p50 %8s  p99 %8s   (goal ≤ 250ms / ≤ 1s; KEDA's polling averages 15s) %s\n",
		"push activation: LPUSH → true on the stream", pushP50, pushP99, verdict(pushP50 <= 250*time.Millisecond && pushP99 <= time.Second))

	rss0, err := rss(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %d MiB; polling for %s while KEDA-like calls continue...\n", fmt.Sprintf("RSS with %d ScaledObjects", *objects), rss0>>20, *soak)
	// Keep every ScaledObject asked about, as KEDA would every 15-30 s.
	deadline := time.Now().Add(*soak)
	samples := []int64{rss0}
	for time.Now().Before(deadline) {
		for i := range *objects {
			_ = getMetrics(refFor(i))
		}
		time.Sleep(min(15*time.Second, time.Until(deadline)))
		if v, err := rss(cmd.Process.Pid); err == nil {
			samples = append(samples, v)
		}
	}
	rss1 := samples[len(samples)-1]
	fmt.Printf("%-44s %d MiB after %s (max %d MiB; %.2f× the start; goal: flat) %s\n", "RSS after polling", rss1>>20, *soak,
		slices.Max(samples)>>20, float64(rss1)/float64(rss0), verdict(float64(rss1) <= float64(rss0)*1.2))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "[meets goal]"
	}
	return "[MISSES goal]"
}

type result struct {
	p50, p99 time.Duration
	err      error
}

func measure(n int, fn func() error) result {
	for range min(n/10, 200) { // warm up connections and caches
		if err := fn(); err != nil {
			return result{err: err}
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		if err := fn(); err != nil {
			return result{err: err}
		}
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return result{p50: d[n/2], p99: d[n*99/100]}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func pushActivation(ctx context.Context, ks pb.ExternalScalerClient, rdb *redis.Client, broker string, trials int) (time.Duration, time.Duration, error) {
	r := &pb.ScaledObjectRef{Name: "push", Namespace: "bench", ScalerMetadata: map[string]string{"brokerURL": broker, "queues": "push"}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ks.StreamIsActive(sctx, r)
	if err != nil {
		return 0, 0, err
	}
	next := func(want bool) error {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if msg.Result != want {
			return fmt.Errorf("stream sent %t, want %t", msg.Result, want)
		}
		return nil
	}
	if err := next(false); err != nil {
		return 0, 0, err
	}
	var d []time.Duration
	for range trials {
		// Land at a random phase of the poll cycle, as real tasks do.
		time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		t0 := time.Now()
		if err := rdb.LPush(ctx, "push", "{}").Err(); err != nil {
			return 0, 0, err
		}
		if err := next(true); err != nil {
			return 0, 0, err
		}
		d = append(d, time.Since(t0))
		if err := rdb.Del(ctx, "push").Err(); err != nil {
			return 0, 0, err
		}
		if err := next(false); err != nil {
			return 0, 0, err
		}
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], nil
}

// roundTripsPerPoll divides the proxy's request/response turns by the polls
// the scaler counted over the same window.
func roundTripsPerPoll(ctx context.Context, p *countingProxy, httpAddr string, window time.Duration) (float64, int) {
	polls0 := pollCount(httpAddr)
	turns0 := p.turns.Load()
	time.Sleep(window)
	polls := pollCount(httpAddr) - polls0
	turns := p.turns.Load() - turns0
	if polls <= 0 {
		return 0, 0
	}
	return float64(turns) / float64(polls), int(polls)
}

// pollCount reads montage_scaler_source_reads_total{component="celery"}.
func pollCount(httpAddr string) float64 {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, `montage_scaler_source_reads_total{component="celery"}`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startRedis(ctx context.Context, dir string) (string, func(), error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not installed: %w", err)
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
		if i > 100 {
			_ = cmd.Process.Kill()
			return "", nil, errors.New("redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// countingProxy forwards loopback TCP to Redis and counts turns: each time
// the server answers after the client spoke is one round trip.
type countingProxy struct {
	l      net.Listener
	target string
	turns  atomic.Int64
	wg     sync.WaitGroup
}

func newCountingProxy(target string) (*countingProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *countingProxy) addr() string { return p.l.Addr().String() }

func (p *countingProxy) close() { p.l.Close(); p.wg.Wait() }

func (p *countingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		var clientSpoke atomic.Bool
		go func() { copyNoting(s, c, func() { clientSpoke.Store(true) }); s.Close() }()
		go func() {
			copyNoting(c, s, func() {
				if clientSpoke.CompareAndSwap(true, false) {
					p.turns.Add(1)
				}
			})
			c.Close()
		}()
	}
}

func copyNoting(dst io.Writer, src io.Reader, note func()) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			note()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
