package celery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/poll"
)

// ErrClosed is the error of a Watch made on a closed Hub.
var ErrClosed = errors.New("celery: hub closed")

// errWarmingUp marks a reading that waits for the first worker heartbeats.
var errWarmingUp = errors.New("celery: waiting for worker heartbeats")

// HubOptions tune a Hub. Zero fields take the defaults noted.
type HubOptions struct {
	PollInterval time.Duration    // between polls; default 250ms
	PollTimeout  time.Duration    // bounds one poll; default 2s
	Now          func() time.Time // default time.Now; ETA and visibility timeout are judged by it
	// Clock measures intervals (heartbeat freshness and warm-up, spacing of
	// passes over the unacked hash); default time.Now. It stays the real
	// clock when Now is pinned (check --at).
	Clock       func() time.Time
	Logger      *slog.Logger  // default discards
	DialTimeout time.Duration // default 2s
	ReadTimeout time.Duration // default 2s (also the write timeout)

	// AttributionInterval is the least time between the starts of two
	// passes over the unacked hash; default 5s.
	AttributionInterval time.Duration
	// ScanCount is the HSCAN COUNT of one step of a pass (one step per
	// poll); default 500.
	ScanCount int
	// HeartbeatWarmup is how long after subscribing to worker heartbeats a
	// layout with AcksLate=false waits before its first reading (workers
	// send one every 2s by default); default 3s.
	HeartbeatWarmup time.Duration
	// Hooks are added to every Redis client (tests count round trips).
	Hooks []redis.Hook
	// OnPoll, if set, is called after every poll of every broker with its
	// error (nil on success): the hook for the scaler's read/error counters.
	OnPoll func(err error)
}

func (o HubOptions) withDefaults() HubOptions {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.AttributionInterval <= 0 {
		o.AttributionInterval = 5 * time.Second
	}
	if o.ScanCount <= 0 {
		o.ScanCount = 500
	}
	if o.HeartbeatWarmup <= 0 {
		o.HeartbeatWarmup = 3 * time.Second
	}
	return o
}

// Hub owns one poller and one Redis client per broker, shared by every Watch
// on that broker.
type Hub struct {
	o HubOptions

	mu      sync.Mutex
	brokers map[string]*brokerConn
	closed  bool
}

// NewHub returns a Hub; Close it when done.
func NewHub(o HubOptions) *Hub {
	return &Hub{o: o.withDefaults(), brokers: map[string]*brokerConn{}}
}

// Watch starts watching layout l on broker b (or joins the poller already
// running for b). Close the Watch when done.
func (h *Hub) Watch(b Broker, l Layout) *Watch {
	l = normalize(l)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return &Watch{layout: l}
	}
	key := b.Key()
	bc, ok := h.brokers[key]
	if !ok {
		bc = newBrokerConn(h.o, b)
		h.brokers[key] = bc
	}
	bc.refs++
	id := bc.addLayout(l)
	if ok {
		bc.poller.Poke()
	}
	return &Watch{hub: h, key: key, bc: bc, id: id, layout: l}
}

// Close stops every poller and closes every client. Watches made before keep
// their last snapshot.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	all := h.brokers
	h.brokers = map[string]*brokerConn{}
	h.mu.Unlock()
	for _, bc := range all {
		bc.stop()
	}
}

func (h *Hub) release(w *Watch) {
	h.mu.Lock()
	w.bc.removeLayout(w.id)
	w.bc.refs--
	last := w.bc.refs == 0 && h.brokers[w.key] == w.bc
	if last {
		delete(h.brokers, w.key)
	}
	h.mu.Unlock()
	if last {
		w.bc.stop()
	}
}

func normalize(l Layout) Layout {
	if len(l.Queues) == 0 {
		l.Queues = []string{DefaultQueue}
	}
	l.Queues = slices.Clone(l.Queues)
	if l.PrioritySteps == nil {
		l.PrioritySteps = DefaultPrioritySteps()
	}
	if l.Separator == "" {
		l.Separator = DefaultSeparator
	}
	if l.VisibilityTimeout <= 0 {
		l.VisibilityTimeout = DefaultVisibilityTimeout
	}
	return l
}

// Watch is one ScaledObject's view of a broker.
type Watch struct {
	hub    *Hub
	key    string
	bc     *brokerConn // nil when made on a closed Hub
	id     string
	layout Layout
	once   sync.Once
}

// Latest returns the newest Backlog for this watch's layout. It never blocks
// and never touches Redis. A failed poll keeps the last good Value and sets
// Err.
func (w *Watch) Latest() poll.Snapshot[Backlog] {
	if w.bc == nil {
		return poll.Snapshot[Backlog]{Err: ErrClosed}
	}
	return w.project(w.bc.poller.Latest())
}

func (w *Watch) project(s poll.Snapshot[reading]) poll.Snapshot[Backlog] {
	out := poll.Snapshot[Backlog]{Err: s.Err, TriedAt: s.TriedAt, Attempts: s.Attempts}
	if bl, ok := s.Value.backlogs[w.id]; ok {
		out.Value, out.GoodAt = bl, s.GoodAt
		return out
	}
	if err, ok := s.Value.errs[w.id]; ok && s.Err == nil {
		out.Err = err
		return out
	}
	if s.Err == nil {
		// Registered after the latest poll: nothing read for it yet.
		out.TriedAt, out.Attempts = time.Time{}, 0
	}
	return out
}

// Changed returns a channel closed when the next poll finishes.
func (w *Watch) Changed() <-chan struct{} {
	if w.bc == nil {
		return nil
	}
	return w.bc.poller.Changed()
}

// First waits for the first reading of this watch's layout (or the first
// failed poll) and returns it; it returns ctx's error when ctx ends first.
func (w *Watch) First(ctx context.Context) (poll.Snapshot[Backlog], error) {
	if w.bc == nil {
		return w.Latest(), ErrClosed
	}
	for {
		ch := w.Changed()
		s := w.Latest()
		if !s.GoodAt.IsZero() || (s.Attempts > 0 && s.Err != nil && !errors.Is(s.Err, errWarmingUp)) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, fmt.Errorf("celery: first reading of %s: %w", w.bc.broker.Redacted(), ctx.Err())
		}
	}
}

// Close ends the watch; the last Watch on a broker stops its poller and
// closes its client. Calling Close again does nothing.
func (w *Watch) Close() {
	if w.bc == nil {
		return
	}
	w.once.Do(func() { w.hub.release(w) })
}

// brokerConn is the shared state of one broker.
type brokerConn struct {
	o      HubOptions
	broker Broker
	client *redis.Client
	err    error // building the client failed
	poller *poll.Poller[reading]
	hb     *heartbeats
	refs   int // guarded by Hub.mu

	mu      sync.Mutex
	layouts map[string]*layoutReg

	// Owned by the poll goroutine.
	attr  map[string]*attribution // by key prefix
	stats map[string]int64        // by key prefix: HLEN seen by the latest poll
}

type layoutReg struct {
	layout Layout
	refs   int
}

// reading is one poll of a broker: a Backlog per registered layout.
type reading struct {
	backlogs map[string]Backlog
	errs     map[string]error
}

func newBrokerConn(o HubOptions, b Broker) *brokerConn {
	bc := &brokerConn{o: o, broker: b, layouts: map[string]*layoutReg{}, attr: map[string]*attribution{}, stats: map[string]int64{}}
	bc.client, bc.err = b.newClient(o)
	if bc.client != nil {
		for _, hk := range o.Hooks {
			bc.client.AddHook(hk)
		}
		bc.hb = newHeartbeats(bc.client, o.Clock, o.Logger.With("broker", b.Redacted()))
	}
	bc.poller = poll.Start(bc.poll, poll.Options{Interval: o.PollInterval, Timeout: o.PollTimeout, Now: o.Now, OnAttempt: o.OnPoll})
	return bc
}

func (bc *brokerConn) addLayout(l Layout) string {
	id := l.id()
	bc.mu.Lock()
	defer bc.mu.Unlock()
	r, ok := bc.layouts[id]
	if !ok {
		r = &layoutReg{layout: l}
		bc.layouts[id] = r
	}
	r.refs++
	return id
}

func (bc *brokerConn) removeLayout(id string) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if r, ok := bc.layouts[id]; ok {
		if r.refs--; r.refs == 0 {
			delete(bc.layouts, id)
		}
	}
}

func (bc *brokerConn) stop() {
	bc.poller.Stop()
	if bc.hb != nil {
		bc.hb.close()
	}
	if bc.client != nil {
		_ = bc.client.Close()
	}
}

type prefixPlan struct {
	lists     []string
	heartbeat bool
	hlen      *redis.IntCmd
	scan      *redis.ScanCmd
	scores    *redis.FloatSliceCmd
	step      []scanned
}

// poll reads the broker once: one pipeline of LLEN for every list of every
// layout, HLEN of each unacked hash and, when a pass over the hash is under
// way, one HSCAN step; a second round trip fetches the delivery times of the
// entries that step returned.
func (bc *brokerConn) poll(ctx context.Context) (reading, error) {
	if bc.err != nil {
		return reading{}, bc.err
	}
	bc.mu.Lock()
	layouts := make(map[string]Layout, len(bc.layouts))
	for id, r := range bc.layouts {
		layouts[id] = r.layout
	}
	bc.mu.Unlock()
	now := bc.o.Now()

	plans := map[string]*prefixPlan{}
	seen := map[string]bool{}
	for _, l := range layouts {
		p := plans[l.KeyPrefix]
		if p == nil {
			p = &prefixPlan{}
			plans[l.KeyPrefix] = p
		}
		p.heartbeat = p.heartbeat || !l.AcksLate
		for _, q := range l.Queues {
			for _, k := range l.Lists(q) {
				if !seen[k] {
					seen[k] = true
					p.lists = append(p.lists, k)
				}
			}
		}
	}
	var channels []string
	for prefix, p := range plans {
		if p.heartbeat {
			channels = append(channels, heartbeatChannels(prefix, bc.broker.db)...)
		}
	}
	bc.hb.want(ctx, channels)

	pipe := bc.client.Pipeline()
	llen := make(map[string]*redis.IntCmd, len(seen))
	for prefix, p := range plans {
		for _, k := range p.lists {
			llen[k] = pipe.LLen(ctx, k)
		}
		p.hlen = pipe.HLen(ctx, prefix+"unacked")
		a := bc.attribution(prefix)
		if a.stepDue(bc.o.Clock(), bc.o.AttributionInterval) {
			p.scan = pipe.HScan(ctx, prefix+"unacked", a.cursor, "", int64(bc.o.ScanCount))
		}
	}
	if len(plans) == 0 {
		return reading{}, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return reading{}, fmt.Errorf("celery: poll %s: %w", bc.broker.Redacted(), err)
	}

	pipe = bc.client.Pipeline()
	n := 0
	for prefix, p := range plans {
		if p.scan == nil {
			continue
		}
		kv, cursor := p.scan.Val()
		p.step = parseScan(kv, bc.o.Logger)
		tags := make([]string, len(p.step))
		for i, s := range p.step {
			tags[i] = s.tag
		}
		if len(tags) > 0 {
			p.scores = pipe.ZMScore(ctx, prefix+"unacked_index", tags...)
			n++
		}
		bc.attribution(prefix).pendingCursor = cursor
	}
	if n > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return reading{}, fmt.Errorf("celery: poll %s: read unacked_index: %w", bc.broker.Redacted(), err)
		}
	}
	for prefix, p := range plans {
		a := bc.attribution(prefix)
		if p.scan != nil {
			var scores []float64
			if p.scores != nil {
				scores = p.scores.Val()
			}
			a.addStep(p.step, scores, now)
		}
		a.lastHLen = p.hlen.Val()
	}
	for prefix := range bc.attr {
		if plans[prefix] == nil {
			delete(bc.attr, prefix) // no layout uses this prefix any more
		}
	}

	lens := make(map[string]int64, len(llen))
	for k, cmd := range llen {
		lens[k] = cmd.Val()
	}
	out := reading{backlogs: make(map[string]Backlog, len(layouts)), errs: map[string]error{}}
	// Counting walks the attributed entries: once per prefix and visibility
	// timeout, however many layouts share them.
	counts := map[countKey]map[string]*queueCounts{}
	for id, l := range layouts {
		a := bc.attribution(l.KeyPrefix)
		ck := countKey{l.KeyPrefix, l.VisibilityTimeout}
		qc, ok := counts[ck]
		if !ok {
			qc = a.count(now, l.VisibilityTimeout)
			counts[ck] = qc
		}
		bl := a.backlog(l, qc, lens)
		if !l.AcksLate {
			active, workers, warm := bc.hb.sum(l.KeyPrefix, bc.broker.db, bc.o.Clock(), bc.o.HeartbeatWarmup)
			if !warm {
				out.errs[id] = errWarmingUp
				continue
			}
			bl.HeartbeatActive, bl.HeartbeatWorkers = active, workers
			bl.InFlight += active
		}
		out.backlogs[id] = bl
	}
	return out, nil
}

type countKey struct {
	prefix string
	vt     time.Duration
}

func (bc *brokerConn) attribution(prefix string) *attribution {
	a, ok := bc.attr[prefix]
	if !ok {
		a = &attribution{}
		bc.attr[prefix] = a
	}
	return a
}

// backlog builds one layout's Backlog from the list lengths and the
// attribution of the unacked hash, scaled to its current length.
func (a *attribution) backlog(l Layout, qc map[string]*queueCounts, llen map[string]int64) Backlog {
	bl := Backlog{UnackedTotal: a.lastHLen, AttributedAt: a.doneAt}
	sampled, partial := a.source()
	bl.UnackedSampled = int64(len(sampled))
	bl.UnackedPartial = partial
	scale := 1.0
	if len(sampled) > 0 {
		scale = float64(a.lastHLen) / float64(len(sampled))
	}
	bl.UnackedScaled = partial || int64(len(sampled)) != a.lastHLen
	if len(sampled) == 0 && a.lastHLen > 0 {
		bl.UnackedUnattributed = a.lastHLen
	}
	sc := func(n int64) int64 { return int64(math.Round(float64(n) * scale)) }
	for _, q := range l.Queues {
		qb := QueueBacklog{Name: q}
		for _, k := range l.Lists(q) {
			qb.Ready += llen[k]
		}
		if c := qc[q]; c != nil {
			qb.Unacked, qb.Stale, qb.ETADue, qb.ETAWaiting = sc(c.unacked), sc(c.stale), sc(c.etaDue), sc(c.etaWaiting)
		}
		bl.Queued += qb.Ready + qb.Stale + qb.ETADue
		bl.InFlight += qb.Unacked
		bl.ETAWaiting += qb.ETAWaiting
		bl.Stale += qb.Stale
		bl.Queues = append(bl.Queues, qb)
	}
	slices.SortFunc(bl.Queues, func(x, y QueueBacklog) int { return cmp.Compare(x.Name, y.Name) })
	return bl
}

// heartbeatChannels are the pub/sub channels of Celery's worker events on a
// Redis db, behind kombu's global_keyprefix.
func heartbeatChannels(prefix string, db int) []string {
	base := prefix + "/" + strconv.Itoa(db) + ".celeryev/worker."
	return []string{base + "heartbeat", base + "offline"}
}
