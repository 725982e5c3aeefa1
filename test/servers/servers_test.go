package servers

import (
	"context"
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
