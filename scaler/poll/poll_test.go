package poll

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func waitAttempts[T any](t *testing.T, p *Poller[T], n uint64) Snapshot[T] {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := p.Changed()
		if s := p.Latest(); s.Attempts >= n {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("poller made fewer than %d attempts", n)
		}
	}
}

func TestPollerKeepsLastGoodValueThroughFailures(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	p := Start(func(ctx context.Context) (int, error) {
		n := calls.Add(1)
		if n == 2 {
			return 0, boom
		}
		return int(n), nil
	}, Options{Interval: time.Millisecond})
	defer p.Stop()

	s := waitAttempts(t, p, 1)
	if s.Value != 1 || s.Err != nil || s.GoodAt.IsZero() {
		t.Fatalf("after one good attempt: %+v", s)
	}
	s = waitAttempts(t, p, 2)
	if s.Attempts == 2 && (s.Value != 1 || !errors.Is(s.Err, boom)) {
		t.Fatalf("after a failure the last good value must stay: %+v", s)
	}
	s = waitAttempts(t, p, 3)
	if s.Err != nil || s.Value < 3 {
		t.Fatalf("after recovery: %+v", s)
	}
}

func TestFirstWaitsForTheFirstAttempt(t *testing.T) {
	release := make(chan struct{})
	p := Start(func(ctx context.Context) (string, error) {
		<-release
		return "ok", nil
	}, Options{Interval: time.Hour})
	defer p.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.First(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("First on a done ctx = %v, want context.Canceled", err)
	}
	close(release)
	s, err := p.First(context.Background())
	if err != nil || s.Value != "ok" {
		t.Fatalf("First = %+v, %v", s, err)
	}
}

func TestPokeStartsAnAttemptAtOnce(t *testing.T) {
	var calls atomic.Int64
	p := Start(func(ctx context.Context) (int64, error) { return calls.Add(1), nil }, Options{Interval: time.Hour})
	defer p.Stop()
	waitAttempts(t, p, 1)
	p.Poke()
	if s := waitAttempts(t, p, 2); s.Value != 2 {
		t.Fatalf("after Poke: %+v", s)
	}
}

func TestAttemptTimeoutBoundsAHangingUpstream(t *testing.T) {
	p := Start(func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, Options{Interval: time.Hour, Timeout: 10 * time.Millisecond})
	defer p.Stop()
	if s := waitAttempts(t, p, 1); !errors.Is(s.Err, context.DeadlineExceeded) || !s.GoodAt.IsZero() {
		t.Fatalf("hanging upstream: %+v", s)
	}
}

func TestHubSharesOnePollerPerKeyAndStopsItWithTheLastHolder(t *testing.T) {
	var started atomic.Int64
	h := NewHub(func(key string) *Poller[string] {
		started.Add(1)
		return Start(func(ctx context.Context) (string, error) { return key, nil }, Options{Interval: time.Hour})
	})
	a, releaseA := h.Acquire("redis://a")
	b, releaseB := h.Acquire("redis://a")
	c, releaseC := h.Acquire("redis://c")
	if a != b || a == c || started.Load() != 2 || h.Len() != 2 {
		t.Fatalf("sharing: a==b %t, a==c %t, started %d, len %d", a == b, a == c, started.Load(), h.Len())
	}
	releaseA()
	releaseA() // a second release of the same handle must not count twice
	if h.Len() != 2 {
		t.Fatalf("after one of two holders released: len %d, want 2", h.Len())
	}
	releaseB()
	releaseC()
	if h.Len() != 0 {
		t.Fatalf("after all released: len %d, want 0", h.Len())
	}
	select {
	case <-a.done:
	default:
		t.Fatal("the poller of a released key still runs")
	}
}

func TestOnAttemptSeesEveryResult(t *testing.T) {
	var fails, oks atomic.Int64
	var n atomic.Int64
	p := Start(func(ctx context.Context) (int, error) {
		if n.Add(1)%2 == 0 {
			return 0, errors.New("even")
		}
		return 1, nil
	}, Options{Interval: time.Millisecond, OnAttempt: func(err error) {
		if err != nil {
			fails.Add(1)
		} else {
			oks.Add(1)
		}
	}})
	waitAttempts(t, p, 4)
	p.Stop()
	if fails.Load() < 2 || oks.Load() < 2 {
		t.Fatalf("OnAttempt saw %d failures and %d successes", fails.Load(), oks.Load())
	}
}
