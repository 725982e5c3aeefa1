package redisbroker

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/poll"
)

// Conn is the poll of one Redis broker: its client, its heartbeat
// subscription and the attribution of its unacked hashes. One goroutine
// polls it at a time.
type Conn struct {
	o      Options
	broker celery.Broker
	log    *slog.Logger
	client *redis.Client
	err    error // building the client failed
	hb     *heartbeatSub

	// Owned by the poll goroutine.
	attr map[string]*attribution // by key prefix
	// seen is the oldest sighting this replica knows of each list's head
	// (see seenHead).
	seen map[string]seenHead
	// scriptLoaded says the broker has the head script cached: it is sent
	// by hash alone.
	scriptLoaded bool
	// lens are the list lengths of the latest good poll: the heads of a
	// queue whose lists were all empty are not read (nothing waited then;
	// a task that arrived since has waited less than a poll interval).
	lens map[string]int64
}

// Reading is one poll of a broker: by Layout.ID, each layout's fresh
// Backlog, or the error that kept it from being read (celery.ErrWarmingUp
// while it waits for worker heartbeats).
type Reading = poll.Parts[celery.Backlog]

// newConn starts the poll of broker b, its worker heartbeats followed
// through its server's share of hbs.
func newConn(o Options, b celery.Broker, hbs *hbShare) *Conn {
	bc := &Conn{o: o, broker: b, log: o.Logger.With("broker", b.Redacted()),
		attr: map[string]*attribution{}, seen: map[string]seenHead{}}
	bc.client, bc.err = newClient(b, o)
	if bc.err != nil {
		return bc
	}
	for _, hk := range o.Hooks {
		bc.client.AddHook(hk)
	}
	if bc.hb, bc.err = hbs.acquire(b, o); bc.err != nil {
		_ = bc.client.Close()
		bc.client = nil
	}
	return bc
}

// Close gives back the heartbeat subscription and closes the client.
func (bc *Conn) Close() {
	if bc.hb != nil {
		bc.hb.close()
	}
	if bc.client != nil {
		_ = bc.client.Close()
	}
}

// Poll reads the broker once for layouts (by Layout.ID), in rounds (see
// plan and run): each round a pipeline with a deadline of its own,
// smallest layouts first, each with TIME and INFO replication (the
// broker's clock, by which every age is judged, and its role: a replica is
// refused as a whole, see brokerState). A round that fails fails only its
// own layouts, and a key Redis refuses only the layouts that read it: they
// have the error, while the others read fresh. The poll fails as a whole
// only when no layout could be read.
func (bc *Conn) Poll(ctx context.Context, layouts map[string]celery.Layout) (Reading, error) {
	if bc.err != nil {
		return Reading{}, bc.err
	}
	now := bc.o.Now()
	prefixes := bc.followHeartbeats(ctx, layouts)
	if len(layouts) == 0 {
		return Reading{}, nil
	}
	rounds := plan(layouts)
	brokerNow, err := bc.runRounds(ctx, rounds, now)
	if err != nil {
		return Reading{}, err
	}
	for prefix := range bc.attr {
		if !prefixes[prefix] {
			delete(bc.attr, prefix) // no layout uses this prefix any more
		}
	}
	return bc.backlogs(ctx, rounds, layouts, bc.gather(rounds, brokerNow))
}

// followHeartbeats subscribes to the worker events of every key prefix of
// layouts (they count the tasks completed, the live workers and, with
// early ack, those running) and returns those prefixes.
func (bc *Conn) followHeartbeats(ctx context.Context, layouts map[string]celery.Layout) map[string]bool {
	prefixes := map[string]bool{}
	for _, l := range layouts {
		prefixes[l.KeyPrefix] = true
	}
	var channels []string
	for prefix := range prefixes {
		channels = append(channels, heartbeatChannels(prefix, bc.broker.DB())...)
	}
	bc.hb.want(ctx, channels)
	return prefixes
}

// runRounds runs the rounds one after the other and returns the broker's
// clock, from the first round read. A round that could not dial the
// broker is every later round's error (no round's content makes a dial
// fail: the next would too); a broker that answered but cannot be read at
// all (see round.brokerErr) fails the poll.
func (bc *Conn) runRounds(ctx context.Context, rounds []*round, now time.Time) (brokerNow time.Time, err error) {
	var unreachable error
	for _, r := range rounds {
		if unreachable != nil {
			r.err = unreachable
			continue
		}
		bc.run(ctx, r, now)
		if r.brokerErr != nil {
			return time.Time{}, r.brokerErr
		}
		if dialFailed(r.err) {
			unreachable = r.err
		}
		if r.err == nil && brokerNow.IsZero() {
			brokerNow = r.now
		}
	}
	return brokerNow, nil
}

// readout is what the rounds that worked read, for the layouts' Backlogs.
type readout struct {
	brokerNow    time.Time // the broker's clock
	lens         map[string]int64
	waits        map[string]listWait
	waitErrs     map[string]error
	failedPrefix map[string]error // key prefixes whose unacked hash was not read
}

// gather collects the lengths, heads and failures of the rounds, judges
// the heads at brokerNow, and keeps the lengths for the next poll.
func (bc *Conn) gather(rounds []*round, brokerNow time.Time) readout {
	ro := readout{brokerNow: brokerNow, lens: map[string]int64{}, failedPrefix: map[string]error{}}
	var groups []*headGroup
	unread := map[string]bool{} // lists whose round failed: their sightings are kept
	for _, r := range rounds {
		for prefix := range r.prefixes {
			if err := cmp.Or(r.err, r.refusedPrefix[prefix]); err != nil {
				ro.failedPrefix[prefix] = err
			}
		}
		if r.err != nil {
			for _, k := range r.lists {
				unread[k] = true
			}
			continue
		}
		for k, c := range r.llen {
			if r.refused[k] == nil {
				ro.lens[k] = c.Val()
			}
		}
		for _, g := range r.groups {
			groups = append(groups, g)
		}
	}
	ro.waits, ro.waitErrs = bc.judgeHeads(groups, unread, brokerNow)
	for l := range ro.waitErrs {
		if _, ok := ro.waits[l]; ok {
			delete(ro.waitErrs, l) // read in another round
		}
	}
	for k, n := range bc.lens {
		if _, read := ro.lens[k]; !read && unread[k] {
			ro.lens[k] = n // known before its round failed: no head storm after a failure
		}
	}
	bc.lens = ro.lens
	return ro
}

// backlogs builds each layout's Backlog, or its error, round by round. The
// poll fails as a whole, with the first layout's error, only when none
// could be read.
func (bc *Conn) backlogs(ctx context.Context, rounds []*round, layouts map[string]celery.Layout, ro readout) (Reading, error) {
	out := poll.NewParts[celery.Backlog]()
	var firstErr error
	fresh := 0
	// Counting walks the attributed entries: once per prefix and visibility
	// timeout, however many layouts share them.
	counts := map[countKey]map[string]*queueCounts{}
	for _, r := range rounds {
		for _, id := range r.ids {
			l := layouts[id]
			if err := bc.failure(r, l, ro.failedPrefix); err != nil {
				firstErr = cmp.Or(firstErr, err)
				out.Errs[id] = err
				continue
			}
			bl, err := bc.backlog(l, ro, counts)
			if err != nil {
				out.Errs[id] = err // warming up: not read yet
				continue
			}
			out.Of[id] = bl
			fresh++
		}
	}
	if fresh == 0 && firstErr != nil {
		return Reading{}, firstErr // nothing read: the poll failed (logged and counted as such)
	}
	if firstErr != nil && ctx.Err() == nil { // a poll cut short by its stop is no evidence (poll.Poller drops it)
		bc.log.Warn("part of the poll failing; its ScaledObjects keep their last good readings", "err", firstErr, "failed", len(out.Errs), "of", len(layouts))
	}
	return out, nil
}

// backlog is layout l's Backlog: its lists' lengths and heads, the
// attribution of its prefix's unacked hash (counted once per countKey in
// counts) and its workers' heartbeats; celery.ErrWarmingUp while a layout
// without acks_late waits for their first heartbeats.
func (bc *Conn) backlog(l celery.Layout, ro readout, counts map[countKey]map[string]*queueCounts) (celery.Backlog, error) {
	a := bc.attribution(l.KeyPrefix)
	ck := countKey{l.KeyPrefix, l.VisibilityTimeout}
	qc, ok := counts[ck]
	if !ok {
		qc = a.count(ro.brokerNow, l.VisibilityTimeout)
		counts[ck] = qc
	}
	bl := a.backlog(l, qc, ro.lens, ro.waits, ro.waitErrs)
	bl.BrokerTime = ro.brokerNow
	hb := bc.hb.counts(l.KeyPrefix, bc.broker.DB(), bc.o.Clock(), bc.o.HeartbeatWarmup)
	if !l.AcksLate {
		if !hb.warm {
			return celery.Backlog{}, celery.ErrWarmingUp
		}
		bl.InFlight += hb.active
	}
	bl.HeartbeatActive, bl.HeartbeatWorkers, bl.Workers = hb.active, hb.workers, hb.loads
	bl.Completed, bl.CompletedSource = hb.completed, hb.source+"/"+l.KeyPrefix
	return bl, nil
}

// failure is why layout l of round r has no fresh reading: its round
// failed, Redis refused one of its lists, or its prefix's unacked hash
// could not be read; nil when it reads.
func (bc *Conn) failure(r *round, l celery.Layout, failedPrefix map[string]error) error {
	if r.err != nil {
		return r.err
	}
	for _, q := range l.Queues {
		if len(r.refused) == 0 {
			break
		}
		for _, k := range l.Lists(q) {
			if err := r.refused[k]; err != nil {
				return err
			}
		}
	}
	return failedPrefix[l.KeyPrefix]
}

type countKey struct {
	prefix string
	vt     time.Duration
}

func (bc *Conn) attribution(prefix string) *attribution {
	a, ok := bc.attr[prefix]
	if !ok {
		a = &attribution{}
		bc.attr[prefix] = a
	}
	return a
}

// backlog builds one layout's Backlog from the list lengths and the
// attribution of the unacked hash, scaled to its current length, and the
// waits of its lists' heads.
func (a *attribution) backlog(l celery.Layout, qc map[string]*queueCounts, llen map[string]int64, waits map[string]listWait, waitErrs map[string]error) celery.Backlog {
	bl := celery.Backlog{UnackedTotal: a.lastHLen, AttributedAt: a.doneAt}
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
		qb := celery.QueueBacklog{Name: q}
		for _, k := range l.Lists(q) {
			qb.Ready += llen[k]
		}
		if c := qc[q]; c != nil {
			qb.Unacked, qb.Stale, qb.ETADue, qb.ETAWaiting = sc(c.unacked), sc(c.stale), sc(c.etaDue), sc(c.etaWaiting)
		}
		bl.Queued += qb.Ready + qb.Stale + qb.ETADue
		bl.InFlight += qb.Unacked
		waitFrom(&qb, l.Lists(q), waits, waitErrs, &bl)
		bl.ETAWaiting += qb.ETAWaiting
		bl.Stale += qb.Stale
		bl.Queues = append(bl.Queues, qb)
	}
	slices.SortFunc(bl.Queues, func(x, y celery.QueueBacklog) int { return cmp.Compare(x.Name, y.Name) })
	return bl
}

// heartbeatChannels are the pub/sub channels of Celery's worker events on a
// Redis db, behind kombu's global_keyprefix; the heartbeat channel first.
func heartbeatChannels(prefix string, db int) []string {
	base := prefix + "/" + strconv.Itoa(db) + ".celeryev/worker."
	return []string{base + "heartbeat", base + "offline", base + "online"}
}
