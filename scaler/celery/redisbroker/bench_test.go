package redisbroker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/test/servers"
)

// countHook counts round trips: one per command sent alone, one per pipeline.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

var _ redis.Hook = (*countHook)(nil)

// fillUnacked writes n kombu-shaped entries (about 1 KB each, like real task
// messages) to the unacked hash and its index, spread over four queues.
func fillUnacked(b *testing.B, c *redis.Client, n int) {
	b.Helper()
	ctx := b.Context()
	body := fmt.Sprintf("%01000d", 0)
	now := float64(time.Now().Unix())
	for start := 0; start < n; start += 2000 {
		pipe := c.Pipeline()
		for i := start; i < min(start+2000, n); i++ {
			tag := fmt.Sprintf("tag-%07d", i)
			v := fmt.Sprintf(`[{"body": %q, "headers": {"task": "render", "id": %q, "eta": null}, "properties": {"delivery_tag": %q}}, "", "q%d"]`, body, tag, tag, i%4)
			pipe.HSet(ctx, "unacked", tag, v)
			pipe.ZAdd(ctx, "unacked_index", redis.Z{Score: now - float64(i%7200), Member: tag})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
}

// fillQueues puts one kombu-shaped task, stamped, at the head of each
// queue's bare list, as if each had a task waiting.
func fillQueues(b *testing.B, c *redis.Client, queues ...string) {
	b.Helper()
	pipe := c.Pipeline()
	for _, q := range queues {
		pipe.LPush(b.Context(), q, fmt.Sprintf(`{"body": "W10=", "headers": {"task": "render", "id": "id-%s", "eta": null, %q: %d}, "properties": {"delivery_tag": "tag-%s"}}`,
			q, celery.StampHeader, time.Now().Unix(), q))
	}
	if _, err := pipe.Exec(b.Context()); err != nil {
		b.Fatalf("fill queues: %v", err)
	}
}

// BenchmarkPoll measures one poll of a broker whose unacked hash holds
// 100,000 entries (a pass over it always under way: one HSCAN step per poll),
// with 1 and 500 layouts watching it, their queues empty, then each with a
// task waiting (one head script per queue). It reports Redis round trips per
// poll.
func BenchmarkPoll(b *testing.B) {
	r := servers.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	b.Cleanup(func() { c.Close() })
	fillUnacked(b, c, 100_000)
	broker, err := celery.ParseBrokerURL(r.URL(0), "")
	if err != nil {
		b.Fatal(err)
	}
	for _, run := range []struct {
		layouts int
		waiting bool
	}{{1, false}, {500, false}, {1, true}, {500, true}} {
		layouts := run.layouts
		name := fmt.Sprintf("layouts=%d", layouts)
		if run.waiting {
			name += "/waiting"
			var qs []string
			for i := range layouts {
				qs = append(qs, fmt.Sprintf("q%d", i%4), fmt.Sprintf("other%d", i))
			}
			fillQueues(b, c, qs...)
		}
		b.Run(name, func(b *testing.B) {
			hook := &countHook{}
			o := Options{Hooks: []redis.Hook{hook}}.withDefaults()
			ls := make([]celery.Layout, layouts)
			for i := range ls {
				ls[i] = celery.Layout{Queues: []string{fmt.Sprintf("q%d", i%4), fmt.Sprintf("other%d", i)}, AcksLate: true}.Normalize()
			}
			// No poller: the benchmark drives the polls itself.
			bc := newConn(o, broker, newHBShare())
			b.Cleanup(bc.Close)
			if _, err := bc.Poll(b.Context(), byID(ls)); err != nil {
				b.Fatal(err)
			}
			hook.n.Store(0)
			var last Reading
			b.ResetTimer()
			for b.Loop() {
				if last, err = bc.Poll(b.Context(), byID(ls)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(hook.n.Load())/float64(b.N), "roundtrips/poll")
			for _, bl := range last.Of {
				b.ReportMetric(float64(bl.UnackedTotal), "unacked")
				break
			}
		})
	}
}
