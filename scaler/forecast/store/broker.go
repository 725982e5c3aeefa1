package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/forecast"
)

// broker is what one broker's history poller owns: the broker's client
// (nil, with err, when none could be made), and the recorders writing
// through it. Its members are the poll's (the open Watches), whose longest
// forecastWeeks a write of a ScaledObject trims to, so that a watch keeping
// fewer weeks never drops what another one of the same ScaledObject uses.
//
// A recorder stops before its Watch releases the poller, and the poller's
// stop stops the recorders still running before it closes the client: so
// every open bucket is written through an open client, whoever closes first.
type broker struct {
	o       HubOptions
	client  *redis.Client
	err     error
	members func() []*member

	mu        sync.Mutex
	recorders map[*recorder]bool
	stopped   bool
}

func newBroker(c *forecast.Config, o HubOptions, members func() []*member) *broker {
	client, err := dial(c, o)
	return &broker{o: o, client: client, err: err, members: members, recorders: map[*recorder]bool{}}
}

// read reads the history of every member's ScaledObject in one pipeline,
// each as deep as its longest watch.
func (b *broker) read(ctx context.Context, now time.Time) (histories, error) {
	if b.err != nil {
		return histories{}, fmt.Errorf("forecast: broker client: %w", b.err)
	}
	stores := map[string]*Store{}
	for _, m := range b.members() {
		if _, ok := stores[m.id()]; !ok {
			stores[m.id()], _ = b.store(m)
		}
	}
	return readAll(ctx, b.client, stores, now)
}

// store is m's ScaledObject's history, kept as deep as the longest
// forecastWeeks of the broker's open Watches of that ScaledObject. It calls
// members: never from the poll's start.
func (b *broker) store(m *member) (*Store, error) {
	if b.err != nil {
		return nil, b.err
	}
	weeks := m.cfg.Weeks
	for _, o := range b.members() {
		if o.id() == m.id() {
			weeks = max(weeks, o.cfg.Weeks)
		}
	}
	return New(b.client, m.namespace, m.name, weeks), nil
}

// record starts m's recorder; nil once the poller has stopped.
func (b *broker) record(m *member, poke func(), sample func(time.Time) forecast.Sample, logger *slog.Logger) *recorder {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil
	}
	r := startRecorder(b.o, func() (*Store, error) { return b.store(m) }, poke, sample, logger)
	b.recorders[r] = true
	return r
}

// forget stops r, which writes its open bucket, and lets it go.
func (b *broker) forget(r *recorder) {
	r.stop()
	b.mu.Lock()
	delete(b.recorders, r)
	b.mu.Unlock()
}

// stop is the poller's last act: the recorders still running write their
// open buckets, then the client closes.
func (b *broker) stop() {
	b.mu.Lock()
	b.stopped = true
	rs := make([]*recorder, 0, len(b.recorders))
	for r := range b.recorders {
		rs = append(rs, r)
	}
	b.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
	if b.client != nil {
		_ = b.client.Close()
	}
}
