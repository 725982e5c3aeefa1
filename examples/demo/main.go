// Command demo shows montage-scaler deciding live: it starts a Redis (a real
// redis-server when one is on PATH, else an embedded Redis-compatible
// server), runs `montage-scaler serve` against it, enqueues Celery-format
// tasks exactly as kombu lays them out, lets a simulated worker take and
// finish them (through kombu's unacked hash), and prints what KEDA would be
// told every half second.
package main

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/addrfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	bin := flag.String("scaler", "bin/montage-scaler", "path to the montage-scaler binary")
	embedded := flag.Bool("embedded", false, "use the embedded Redis even when redis-server is on PATH")
	flag.Parse()

	dir, err := os.MkdirTemp("", "montage-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rb, err := startRedis(ctx, dir, *embedded, out)
	if err != nil {
		return err
	}
	defer rb.stop()
	sc, err := startScaler(ctx, *bin, dir)
	if err != nil {
		return err
	}
	defer sc.stop()
	fmt.Fprintf(out, "montage-scaler serving gRPC on %s (HTTP %s)\n", sc.addrs.GRPC, sc.addrs.HTTP)

	conn, err := grpc.NewClient(sc.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	d := &demo{out: out, ks: pb.NewExternalScalerClient(conn), insp: scalerv1.NewInspectorClient(conn), ref: demoObject(rb.url)}
	fmt.Fprintf(out, "ScaledObject demo/montage: queues celery,video, 5 tasks per replica, 1..8 replicas\n\n")
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	if err := d.watch(streamCtx); err != nil {
		return err
	}
	d.rdb = redis.NewClient(rb.opts)
	defer d.rdb.Close()
	if done, err := d.play(ctx); !done || err != nil {
		return err
	}
	fmt.Fprintln(out, "\ndone: the decision followed the backlog, running tasks kept the trigger active, and it fell back to minReplicas 1 when idle.")
	if err := d.explain(ctx, *bin, dir, sc.addrs.GRPC); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s", nextSteps)
	return nil
}

// scalerProc is the demo's montage-scaler serve: where it listens, and how
// to stop it.
type scalerProc struct {
	addrs addrfile.Addrs
	stop  func()
}

// startScaler starts `montage-scaler serve` on ports of its own choosing,
// which it names in its --addr-file once it serves.
func startScaler(ctx context.Context, bin, dir string) (*scalerProc, error) {
	addrPath := filepath.Join(dir, "scaler-addrs.json")
	cmd := exec.Command(bin, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrPath,
		"--log-format", "text", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run `make build` first): %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	addrs, err := addrfile.Wait(wctx, addrPath, exited)
	cancel()
	if err != nil {
		stop()
		return nil, fmt.Errorf("montage-scaler serve: %w", err)
	}
	return &scalerProc{addrs: addrs, stop: stop}, nil
}

// demoObject is the ScaledObject the demo asks about, as KEDA would.
func demoObject(brokerURL string) *pb.ScaledObjectRef {
	return &pb.ScaledObjectRef{Name: "montage", Namespace: "demo", ScalerMetadata: map[string]string{
		"brokerURL":       brokerURL,
		"queues":          "celery,video",
		"tasksPerReplica": "5",
		"minReplicas":     "1",
		"maxReplicas":     "8",
	}}
}

func ceil(v float64) float64 {
	n := float64(int64(v))
	if v > n {
		return n + 1
	}
	return n
}

// broker is the demo's Redis: the URL the scaler is given, the options of
// the demo's own client, and how to stop it.
type broker struct {
	url  string
	opts *redis.Options
	stop func()
}

func startRedis(ctx context.Context, dir string, embedded bool, out io.Writer) (broker, error) {
	if path, err := exec.LookPath("redis-server"); err == nil && !embedded {
		// A unix socket in the demo's own directory and no TCP port: none
		// to find free, none to lose to another process.
		sock := filepath.Join(dir, "redis.sock")
		cmd := exec.Command(path, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
			"--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			return broker{}, err
		}
		opts := &redis.Options{Network: "unix", Addr: sock}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
			if i > 100 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return broker{}, errors.New("redis-server did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintf(out, "redis-server (%s) on unix socket %s\n", path, sock)
		return broker{url: "redis+socket://" + sock, opts: opts, stop: func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }}, nil
	}
	m, err := miniredis.Run() // binds 127.0.0.1:0 itself and says which port
	if err != nil {
		return broker{}, err
	}
	fmt.Fprintf(out, "no redis-server on PATH: embedded Redis-compatible server on %s\n", m.Addr())
	return broker{url: "redis://" + m.Addr() + "/0", opts: &redis.Options{Addr: m.Addr()}, stop: m.Close}, nil
}

// message builds a Celery protocol-2 message as kombu's Redis transport stores it.
func message(queue string, n, priority int) (string, string) {
	id := fmt.Sprintf("demo-%s-%d-%d", queue, n, time.Now().UnixNano())
	body, _ := json.Marshal([]any{[]any{fmt.Sprintf("video-%d.mp4", n)}, map[string]any{}, map[string]any{"callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil}})
	msg := map[string]any{
		"body":             base64.StdEncoding.EncodeToString(body),
		"content-encoding": "utf-8",
		"content-type":     "application/json",
		"headers": map[string]any{
			"lang": "py", "task": "montage.transcode", "id": id, "root_id": id, "parent_id": nil,
			"eta": nil, "expires": nil, "retries": 0, "argsrepr": fmt.Sprintf("('video-%d.mp4',)", n), "kwargsrepr": "{}",
		},
		"properties": map[string]any{
			"correlation_id": id, "delivery_mode": 2, "priority": priority, "body_encoding": "base64", "delivery_tag": id,
			"delivery_info": map[string]any{"exchange": "", "routing_key": queue},
		},
	}
	b, _ := json.Marshal(msg)
	return id, string(b)
}

// enqueue LPUSHes n tasks as kombu does: priority 0 goes to the plain list,
// others to the sub-queue list of their step.
func enqueue(ctx context.Context, rdb *redis.Client, queue string, n, priority int) error {
	key := queue
	if priority > 0 {
		key = queue + "\x06\x16" + strconv.Itoa(priority)
	}
	pipe := rdb.Pipeline()
	for i := range n {
		_, m := message(queue, i, priority)
		pipe.LPush(ctx, key, m)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// worker takes tasks the way a Celery worker with acks_late does: the message
// leaves the list and waits in the unacked hash until the task ends.
type worker struct {
	rdb     *redis.Client
	queues  []string
	running []string
}

func (w *worker) take(ctx context.Context, n int) error {
	for range n {
		var taken string
		for _, q := range w.queues {
			v, err := w.rdb.RPop(ctx, q).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return err
			}
			taken = v
			var m struct {
				Properties struct {
					DeliveryTag  string `json:"delivery_tag"`
					DeliveryInfo struct {
						Exchange   string `json:"exchange"`
						RoutingKey string `json:"routing_key"`
					} `json:"delivery_info"`
				} `json:"properties"`
			}
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return err
			}
			entry, _ := json.Marshal([]any{json.RawMessage(v), m.Properties.DeliveryInfo.Exchange, m.Properties.DeliveryInfo.RoutingKey})
			tag := m.Properties.DeliveryTag
			pipe := w.rdb.TxPipeline()
			pipe.HSet(ctx, "unacked", tag, string(entry))
			pipe.ZAdd(ctx, "unacked_index", redis.Z{Score: float64(time.Now().UnixNano()) / 1e9, Member: tag})
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
			w.running = append(w.running, tag)
			break
		}
		if taken == "" {
			return nil
		}
	}
	return nil
}

func (w *worker) finish(ctx context.Context, n int) {
	n = min(n, len(w.running))
	for _, tag := range w.running[:n] {
		w.rdb.HDel(ctx, "unacked", tag)
		w.rdb.ZRem(ctx, "unacked_index", tag)
	}
	w.running = w.running[n:]
}
