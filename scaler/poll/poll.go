// Package poll keeps one background poller per upstream and shares its latest
// result with every watcher, so N ScaledObjects on one source cost one fetch and
// no RPC ever waits on the source. Poller is the loop; Hub shares one Poller
// per key and counts its holders; View is one holder's view.
package poll

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Snapshot is what a poller knows after its latest attempt.
type Snapshot[T any] struct {
	// Value is the last good value (the zero T when there has been none).
	Value T
	// GoodAt is when Value was read; zero means no attempt has succeeded yet.
	GoodAt time.Time
	// Err is the error of the latest attempt, nil when it succeeded.
	Err error
	// TriedAt is when the latest attempt finished; zero means none has.
	TriedAt time.Time
	// Attempts counts finished attempts.
	Attempts uint64
}

// Func reads the upstream once. It must honour ctx's deadline.
type Func[T any] func(ctx context.Context) (T, error)

// Options tune a Poller.
type Options struct {
	// Interval between the end of one attempt and the start of the next.
	Interval time.Duration
	// Timeout bounds one attempt; 0 means Interval, at least one second.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnAttempt, if set, is called after every finished attempt with its
	// error (nil on success): the hook for error counters.
	OnAttempt func(err error)
	// OnStop, if set, runs once the poller has stopped (to close the
	// upstream's client).
	OnStop func()
	// Logger, if set, receives the poller's failures as they start and
	// end (see Poller); give it the upstream's attributes, redacted.
	Logger *slog.Logger
	// MaxBackoff, when above Interval, spaces the attempts after failures:
	// Interval after the first, then twice the last pause, up to
	// MaxBackoff, until an attempt succeeds (a Poke still starts one at
	// once). A source that is down is then asked at most once per
	// MaxBackoff, and its recovery is seen within MaxBackoff plus one
	// attempt.
	MaxBackoff time.Duration
}

// Poller calls a Func in its own goroutine every Interval and keeps the latest
// Snapshot. A failed attempt keeps the last good value.
//
// With Options.Logger, every failed attempt is a WARN line that says
// whether a last good reading is kept ("read failing; keeping the last good
// reading", with its time) or not ("read failing; no good reading yet"),
// with the error, the failures in a row and when the next attempt starts;
// the first good attempt after failures is an INFO line "read recovered"
// with the last error.
// A fault is thus logged when it starts, not only once its reading is
// stale; repeats of one fault are held back by the logger's handler (see
// package logthrottle).
type Poller[T any] struct {
	fn        Func[T]
	now       func() time.Time
	onAttempt func(error)
	onStop    func()
	log       *slog.Logger
	tick      chan struct{}

	// Owned by the loop goroutine.
	failures   int
	failingAt  time.Time
	lastErr    error
	pause      time.Duration // before the next attempt
	maxBackoff time.Duration

	mu       sync.Mutex
	snap     Snapshot[T]
	changed  chan struct{}
	interval time.Duration
	timeout  time.Duration

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// Start starts a Poller whose first attempt begins at once. Stop it with Stop.
func Start[T any](fn Func[T], opts Options) *Poller[T] {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = max(opts.Interval, time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Poller[T]{
		fn:         fn,
		now:        opts.Now,
		onAttempt:  opts.OnAttempt,
		onStop:     opts.OnStop,
		log:        opts.Logger,
		tick:       make(chan struct{}, 1),
		changed:    make(chan struct{}),
		interval:   opts.Interval,
		timeout:    opts.Timeout,
		cancel:     cancel,
		done:       make(chan struct{}),
		maxBackoff: opts.MaxBackoff,
	}
	go p.loop(ctx)
	return p
}

func (p *Poller[T]) loop(ctx context.Context) {
	defer close(p.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.tick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		p.attempt(ctx)
		if ctx.Err() != nil {
			return
		}
		timer.Reset(p.pause)
	}
}

func (p *Poller[T]) attempt(ctx context.Context) {
	p.mu.Lock()
	timeout := p.timeout
	p.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, timeout)
	v, err := p.fn(actx)
	cancel()
	if ctx.Err() != nil {
		return // stopping: the result of a cancelled attempt is not evidence
	}
	now := p.now()
	p.mu.Lock()
	goodAt, interval := p.snap.GoodAt, p.interval
	p.mu.Unlock()
	if err == nil {
		goodAt = now
	}
	next := interval
	if err != nil && p.failures > 0 && p.maxBackoff > interval {
		next = min(max(2*p.pause, interval), p.maxBackoff)
	}
	p.pause = next
	// Counted and logged before it is published: whoever sees the reading
	// (an RPC, a test) finds its counter and its log line already there.
	if p.onAttempt != nil {
		p.onAttempt(err)
	}
	p.logAttempt(err, now, goodAt, next)
	p.mu.Lock()
	p.snap.TriedAt = now
	p.snap.Attempts++
	p.snap.Err = err
	if err == nil {
		p.snap.Value = v
		p.snap.GoodAt = now
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// logAttempt logs a failure as it happens and the recovery that ends a
// run of them.
func (p *Poller[T]) logAttempt(err error, now, goodAt time.Time, next time.Duration) {
	if err == nil {
		if p.failures > 0 && p.log != nil {
			// The error it recovered from makes a flapping source's
			// recoveries as identical, and as throttled, as its failures.
			p.log.Info("read recovered", "failures", p.failures, "failingFor", now.Sub(p.failingAt).Round(time.Second), "err", p.lastErr)
		}
		p.failures, p.lastErr = 0, nil
		return
	}
	if p.failures == 0 {
		p.failingAt = now
	}
	p.failures++
	p.lastErr = err
	if p.log == nil {
		return
	}
	if goodAt.IsZero() {
		p.log.Warn("read failing; no good reading yet", "err", err, "failures", p.failures, "retryIn", next)
		return
	}
	p.log.Warn("read failing; keeping the last good reading", "err", err, "failures", p.failures,
		"lastGoodAt", goodAt.UTC().Format(time.RFC3339), "retryIn", next)
}

// Latest returns the current snapshot without waiting.
func (p *Poller[T]) Latest() Snapshot[T] {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap
}

// Changed returns a channel closed when the next attempt finishes.
func (p *Poller[T]) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// First waits until at least one attempt has finished or ctx is done, and
// returns the snapshot then.
func (p *Poller[T]) First(ctx context.Context) (Snapshot[T], error) {
	for {
		p.mu.Lock()
		snap, ch := p.snap, p.changed
		p.mu.Unlock()
		if snap.Attempts > 0 {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return snap, ctx.Err()
		}
	}
}

// Poke asks for an attempt now instead of at the end of the interval.
func (p *Poller[T]) Poke() {
	select {
	case p.tick <- struct{}{}:
	default:
	}
}

// SetInterval changes the pause before the next attempt (a feed may ask for a
// slower refresh). It is safe to call from the Func itself.
func (p *Poller[T]) SetInterval(d time.Duration) {
	p.mu.Lock()
	p.interval = d
	p.mu.Unlock()
}

// Stop ends the poller, waits for its goroutine and runs OnStop. Calling
// Stop again does nothing.
func (p *Poller[T]) Stop() {
	p.cancel()
	<-p.done
	p.stopOnce.Do(func() {
		if p.onStop != nil {
			p.onStop()
		}
	})
}
