package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// within bounds a wait of the test: a bug fails it in seconds, not at go
// test's timeout (the pollers' intervals are an hour: only the test's own
// Pokes and the first attempt start one).
func within(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

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
	// An hour between attempts: each one is started by Poke, so the test
	// sees every snapshot, the failed one included.
	p := Start(func(ctx context.Context) (int, error) {
		n := calls.Add(1)
		if n == 2 {
			return 0, boom
		}
		return int(n), nil
	}, Options{Interval: time.Hour})
	defer p.Stop()

	s := waitAttempts(t, p, 1)
	if s.Value != 1 || s.Err != nil || s.GoodAt.IsZero() {
		t.Fatalf("after one good attempt: %+v", s)
	}
	good := s.GoodAt
	p.Poke()
	s = waitAttempts(t, p, 2)
	if s.Attempts != 2 || s.Value != 1 || !errors.Is(s.Err, boom) || !s.GoodAt.Equal(good) {
		t.Fatalf("after a failure the last good value and its time must stay: %+v", s)
	}
	p.Poke()
	s = waitAttempts(t, p, 3)
	if s.Err != nil || s.Value != 3 {
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
	s, err := p.First(within(t))
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

func TestStopRunsOnStopOnce(t *testing.T) {
	var stops atomic.Int64
	p := Start(func(ctx context.Context) (int, error) { return 1, nil }, Options{Interval: time.Hour, OnStop: func() { stops.Add(1) }})
	waitAttempts(t, p, 1)
	p.Stop()
	p.Stop()
	if stops.Load() != 1 {
		t.Fatalf("OnStop ran %d times, want 1", stops.Load())
	}
}

// A failure is logged when it happens (saying whether a good reading is
// kept), and the recovery that ends a run of failures once.
func TestFailuresAreLoggedWhenTheyHappenAndTheRecoveryOnce(t *testing.T) {
	var calls atomic.Int64
	var buf servers.LogBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "lastGoodAt" || a.Key == "failingFor" {
			return slog.Attr{}
		}
		return a
	}}))
	// attempts: fail, fail, good, fail, good, good
	p := Start(func(ctx context.Context) (int, error) {
		switch n := calls.Add(1); n {
		case 1, 2, 4:
			return 0, fmt.Errorf("dial tcp 127.0.0.1:6379: connection refused (%d)", n)
		default:
			return int(n), nil
		}
	}, Options{Interval: time.Hour, Logger: log.With("component", "celery")})
	defer p.Stop()
	for n := uint64(1); n <= 6; n++ {
		waitAttempts(t, p, n)
		if n < 6 {
			p.Poke()
		}
	}
	want := `level=WARN msg="read failing; no good reading yet" component=celery err="dial tcp 127.0.0.1:6379: connection refused (1)" failures=1 retryIn=1h0m0s
level=WARN msg="read failing; no good reading yet" component=celery err="dial tcp 127.0.0.1:6379: connection refused (2)" failures=2 retryIn=1h0m0s
level=INFO msg="read recovered" component=celery failures=2 err="dial tcp 127.0.0.1:6379: connection refused (2)"
level=WARN msg="read failing; keeping the last good reading" component=celery err="dial tcp 127.0.0.1:6379: connection refused (4)" failures=1 retryIn=1h0m0s
level=INFO msg="read recovered" component=celery failures=1 err="dial tcp 127.0.0.1:6379: connection refused (4)"
`
	if got := buf.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

// A source that keeps failing is asked again after a pause that doubles
// from the interval up to MaxBackoff (the log's retryIn says each), and
// the first success brings the interval back. Attempts are started by
// Poke, so the test reads the schedule without waiting for it.
func TestFailuresBackOffUpToMaxBackoffAndASuccessEndsIt(t *testing.T) {
	var calls atomic.Int64
	var buf servers.LogBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key != "retryIn" && a.Key != slog.MessageKey {
			return slog.Attr{}
		}
		return a
	}}))
	// attempts: five failures, a success, a failure
	p := Start(func(ctx context.Context) (int, error) {
		if n := calls.Add(1); n <= 5 || n == 7 {
			return 0, fmt.Errorf("dial tcp 127.0.0.1:6379: connection refused (%d)", n)
		}
		return 1, nil
	}, Options{Interval: time.Hour, MaxBackoff: 5 * time.Hour, Logger: log})
	defer p.Stop()
	for n := uint64(1); n <= 7; n++ {
		waitAttempts(t, p, n)
		if n < 7 {
			p.Poke()
		}
	}
	want := `msg="read failing; no good reading yet" retryIn=1h0m0s
msg="read failing; no good reading yet" retryIn=2h0m0s
msg="read failing; no good reading yet" retryIn=4h0m0s
msg="read failing; no good reading yet" retryIn=5h0m0s
msg="read failing; no good reading yet" retryIn=5h0m0s
msg="read recovered"
msg="read failing; keeping the last good reading" retryIn=1h0m0s
`
	if got := buf.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}
