package store

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/montage/montage-scaler/scaler/forecast"
)

// recorder samples the reactive components and writes each bucket's
// demand once, when the bucket is over (or when stopped).
type recorder struct {
	o      HubOptions
	store  func() (*Store, error)
	poke   func()
	sample func(time.Time) forecast.Sample
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	b forecast.Bucketer
	// last is the bucket of the latest sample (unix seconds), for tests.
	last     atomic.Int64
	stopOnce sync.Once
}

func (r *recorder) sampledAt() time.Time { return time.Unix(r.last.Load(), 0).UTC() }

func startRecorder(o HubOptions, store func() (*Store, error), poke func(), sample func(time.Time) forecast.Sample, logger *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{o: o, store: store, poke: poke, sample: sample, logger: logger, cancel: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

func (r *recorder) loop(ctx context.Context) {
	defer close(r.done)
	ticker := time.NewTicker(r.o.Sample)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			// A last sample, so that a replica stopping mid-bucket
			// leaves what it saw.
			r.take()
			if b, d, ok := r.b.Close(); ok {
				r.write(b, d)
			}
			return
		case <-ticker.C:
			r.take()
		}
	}
}

// take adds a sample to the open bucket, writing the previous bucket first
// when this one is new.
func (r *recorder) take() {
	now := r.o.Now()
	if b, d, ok := r.b.Add(now, r.sample(now)); ok {
		r.write(b, d)
	}
	r.last.Store(forecast.BucketOf(now).Unix())
}

func (r *recorder) write(bucket time.Time, d forecast.Demand) {
	store, err := r.store()
	if err != nil {
		r.logger.Warn("forecast history write skipped: no broker client", "bucket", bucket, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*r.o.ReadTimeout)
	defer cancel()
	err = store.Write(ctx, bucket, d, r.o.Now())
	if r.o.OnUpstream != nil {
		r.o.OnUpstream(err)
	}
	if err != nil {
		// The bucket is lost on this replica; another replica may have it.
		r.logger.Warn("forecast history write failed", "bucket", bucket, "err", err)
		return
	}
	if _, ok := d[forecast.KindDemand]; ok {
		e := r.b.Last
		r.logger.Debug("forecast bucket written", "bucket", bucket, "demand", d, "method", e.Method,
			"arrived", e.Arrived, "completed", e.Completed, "meanInFlight", e.MeanInFlight, "serviceSeconds", e.ServiceSeconds)
	}
	r.poke()
}

// stop ends the loop (it writes the open bucket first); calling it again
// does nothing.
func (r *recorder) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		<-r.done
	})
}
