// Command bench measures montage-scaler's RPC path against the real binary
// and a private redis-server, printing each figure beside a floor measured in
// the same run (the gRPC Health/Check round trip on the same server):
//
//   - GetMetrics and IsActive from a warm snapshot, 1 and 500 ScaledObjects
//     (goal: p50 ≤ 1.5× floor, p99 ≤ 2× floor);
//   - push activation: LPUSH into an empty queue to `true` on StreamIsActive
//     (goal: p50 ≤ 250 ms, p99 ≤ 1 s);
//   - Redis round trips per poll with 500 ScaledObjects on one broker
//     (goal: one more per round of 1,000 lists), counted by a loopback
//     proxy that sees every turn of the conversation;
//   - RSS and goroutines with 500 ScaledObjects at the start and the end of
//     --soak of polling and KEDA-like calls (goal: flat within 5 %);
//   - RPC abuse on a scaler of its own: RSS, heap and goroutines before,
//     during and 30 s and 150 s after (goal: goroutines back to the
//     baseline, RSS within 25 % of it);
//   - log volume at --log-level debug during a --flap of the broker (down
//     and up every 3 s), in bytes per minute, with the largest messages;
//   - upstreams: goroutines, open files, the broker's clients, RSS and heap
//     with --brokers ScaledObjects naming distinct brokers (one Redis db
//     each), then with --bigs at the per-object limits beside a small one
//     on one broker, and how many the process-wide limits refused.
//
// --only picks sections.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/test/servers"
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
	soak := flag.Duration("soak", 10*time.Minute, "polling time between the first and the last RSS and goroutine readings")
	flapFor := flag.Duration("flap", time.Minute, "how long the broker flaps while the log volume is measured")
	brokers := flag.Int("brokers", 2000, "ScaledObjects with distinct brokers, for the upstreams figures")
	bigs := flag.Int("bigs", 600, "ScaledObjects at the per-object limits on one broker, for the upstreams figures")
	only := flag.String("only", "rpc,abuse,flap,soak,upstreams", "sections to run: rpc (latency, round trips, push), abuse, flap, soak, upstreams")
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sections := map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		sections[strings.TrimSpace(s)] = true
	}

	dir, err := os.MkdirTemp("", "montage-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rs, err := servers.RunRedis(dir)
	if err != nil {
		return err
	}
	defer rs.Stop()
	redisAddr := rs.Addr()
	proxy, err := newCountingProxy(redisAddr)
	if err != nil {
		return err
	}
	defer proxy.close()
	broker := "redis://" + proxy.addr() + "/0"
	fmt.Printf("montage-scaler bench: %d cores, %d calls per figure\n\n", numCPU(), *calls)

	if sections["rpc"] || sections["soak"] {
		if err := rpcAndSoak(ctx, *bin, broker, redisAddr, proxy, *calls, *objects, *trials, *soak, sections); err != nil {
			return err
		}
	}
	if sections["abuse"] {
		if err := abuse(ctx, *bin, broker); err != nil {
			return err
		}
	}
	if sections["flap"] {
		if err := flap(ctx, *bin, dir, 20, *flapFor); err != nil {
			return err
		}
	}
	if sections["upstreams"] {
		if err := upstreams(ctx, *bin, dir, *brokers, *bigs); err != nil {
			return err
		}
	}
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
