package servers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisStartsStopsAndRestartsOnTheSamePort(t *testing.T) {
	r := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 2})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	r.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatalf("ping after Stop succeeded")
	}
	r.Restart(t)
	if got, err := c.Exists(ctx, "k").Result(); err != nil || got != 0 {
		t.Fatalf("after restart: exists = %d, %v; want 0, nil (no persistence)", got, err)
	}
	if want := "redis://" + r.Addr() + "/3"; r.URL(3) != want {
		t.Fatalf("URL(3) = %q, want %q", r.URL(3), want)
	}
}

func TestRedisWithPasswordRefusesAnonymousClients(t *testing.T) {
	r := StartRedisWith(t, RedisOptions{Password: "s3cret-pw"})
	anon := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { anon.Close() })
	if err := anon.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("anonymous ping: %v, want NOAUTH", err)
	}
	auth := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: "s3cret-pw"})
	t.Cleanup(func() { auth.Close() })
	if err := auth.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping with password: %v", err)
	}
}

func TestCeleryWorkerRunsABlockTaskUntilReleased(t *testing.T) {
	r := StartRedis(t)
	url := r.URL(1)
	w := StartCeleryWorker(t, WorkerOptions{BrokerURL: url, Queues: []string{"q1"}, AcksLate: true})
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 1})
	t.Cleanup(func() { c.Close() })
	ids := SendTasks(t, ProducerOptions{BrokerURL: url}, Block("k1", "q1"))
	if len(ids) != 1 {
		t.Fatalf("ids = %v", ids)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	got, err := c.BLPop(ctx, 0, StartedKey).Result()
	if err != nil || got[1] != "k1" {
		t.Fatalf("started: %v, %v; want k1", got, err)
	}
	if n, err := c.HLen(ctx, "unacked").Result(); err != nil || n != 1 {
		t.Fatalf("unacked while running (acks_late) = %d, %v; want 1", n, err)
	}
	if err := c.RPush(ctx, ReleaseKeyPrefix+"k1", "go").Err(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, 60*time.Second, func() bool { n, _ := c.HLen(ctx, "unacked").Result(); return n == 0 }) {
		t.Fatalf("unacked not emptied after release; worker log:\n%s", w.Log())
	}
}

// A render on a threads worker named after a pod is recorded where it ran,
// and a warm shutdown (SIGTERM) lets it finish before the worker exits: what
// the e2e suite's worker bridge relies on when a pod is deleted.
func TestARenderFinishesThroughAWarmShutdown(t *testing.T) {
	RequireCelery(t)
	r := StartRedis(t)
	w, err := LaunchCeleryWorker(t.TempDir(), WorkerOptions{BrokerURL: r.URL(0), Queues: []string{"video"},
		AcksLate: true, Concurrency: 5, Pool: "threads", Name: "celery", Host: "montage-abc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Kill)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if !waitFor(ctx, 60*time.Second, w.Ready) {
		t.Fatalf("worker not ready:\n%s", w.Log())
	}
	SendTasks(t, ProducerOptions{BrokerURL: r.URL(0)}, Render("r1", "video", 3*time.Second, 150))
	if !waitFor(ctx, 30*time.Second, func() bool { n, _ := c.LLen(ctx, RendersKey).Result(); return n == 1 }) {
		t.Fatalf("the render did not start:\n%s", w.Log())
	}
	w.Terminate()
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("the worker did not exit after SIGTERM:\n%s", w.Log())
	}
	raw, err := c.LRange(ctx, RendersKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range raw {
		var ev RenderEvent
		if err := json.Unmarshal([]byte(r), &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Key+" "+ev.Event+" "+ev.Host+" "+strconv.Itoa(ev.CPUMillis))
	}
	want := []string{"r1 start celery@montage-abc 150", "r1 end celery@montage-abc 150"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("records %q, want %q; log:\n%s", got, want, w.Log())
	}
}

// pongServer holds a loopback port and answers +PONG to anything: what a
// readiness probe would take for a Redis.
func pongServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.WriteString(c, "+PONG\r\n") }()
		}
	}()
	return ln
}

// A redis-server whose port another process took is told from its own
// log, not taken for the process answering on that port.
func TestARedisWhosePortWasTakenSaysSoAndIsNotTakenForTheOther(t *testing.T) {
	taken := pongServer(t).Addr().(*net.TCPAddr).Port
	r := &Redis{dir: t.TempDir(), port: taken}
	r.args = []string{"--port", strconv.Itoa(taken), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "notice"}
	t.Cleanup(r.Stop)
	if _, err := os.Stat(RedisBinary); err != nil {
		t.Skip(err)
	}
	if err := r.start(); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("start on a taken port = %v, want ErrPortTaken", err)
	}
}

// A Prometheus restarted on its port after another process took it fails
// the restart instead of taking the other for itself.
func TestAPrometheusRestartedOnATakenPortFails(t *testing.T) {
	p := StartPrometheus(t, nil, time.Second)
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || strings.HasSuffix(p.URL, ":0") {
		t.Fatalf("URL %q, want the port Prometheus bound", p.URL)
	}
	p.Kill()
	ln, err := net.Listen("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Skipf("the port went to another process before the test could hold it: %v", err)
	}
	defer ln.Close()
	go func() { // answers 200 to /-/ready, as the other Prometheus would
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	}()
	if err := p.run(t, time.Minute); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("restart on a taken port = %v, want ErrPortTaken", err)
	}
}
