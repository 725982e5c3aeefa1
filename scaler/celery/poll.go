package celery

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/poll"
)

// brokerConn is the poll of one broker: its client, its heartbeat
// subscription and the attribution of its unacked hashes.
type brokerConn struct {
	o       HubOptions
	broker  Broker
	log     *slog.Logger
	client  *redis.Client
	err     error // building the client failed
	hb      *heartbeatSub
	layouts func() []Layout // the layouts of the broker's current watches

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
	// held are the layouts' last good Backlogs, for a poll that fails for
	// some of them only.
	held map[string]heldBacklog
	// warnings counts the problems with queue waits (nil: not counted).
	warnings *prometheus.CounterVec
}

// reading is one poll of a broker: a Backlog per layout (by Layout.id).
type reading = poll.Parts[Backlog]

// newBrokerConn starts the poll of broker b, its worker heartbeats
// followed through its server's share of hbs.
func newBrokerConn(o HubOptions, b Broker, layouts func() []Layout, hbs *hbShare) *brokerConn {
	bc := &brokerConn{o: o, broker: b, log: o.Logger.With("broker", b.Redacted()), layouts: layouts,
		attr: map[string]*attribution{}, seen: map[string]seenHead{}, held: map[string]heldBacklog{}}
	bc.client, bc.err = b.newClient(o)
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

func (bc *brokerConn) close() {
	if bc.hb != nil {
		bc.hb.close()
	}
	if bc.client != nil {
		_ = bc.client.Close()
	}
}

// poll reads the broker once, in rounds (see plan and run): each round a
// pipeline with a deadline of its own, smallest layouts first, each with
// TIME and INFO replication (the broker's clock, by which every age is
// judged, and its role: a replica is refused as a whole, see
// brokerState). A round that fails fails only its own layouts, and a key
// Redis refuses only the layouts that read it: they keep their last good
// Backlogs, with the error, while the others read fresh. The poll fails as
// a whole only when no layout could be read.
func (bc *brokerConn) poll(ctx context.Context) (reading, error) {
	if bc.err != nil {
		return reading{}, bc.err
	}
	layouts := map[string]Layout{}
	for _, l := range bc.layouts() {
		layouts[l.id()] = l
	}
	now := bc.o.Now()
	// Worker heartbeats are followed for every key prefix: they count the
	// tasks completed, the live workers and, with early ack, those running.
	prefixes := map[string]bool{}
	for _, l := range layouts {
		prefixes[l.KeyPrefix] = true
	}
	var channels []string
	for prefix := range prefixes {
		channels = append(channels, heartbeatChannels(prefix, bc.broker.db)...)
	}
	bc.hb.want(ctx, channels)
	if len(layouts) == 0 {
		return reading{}, nil
	}

	rounds := plan(layouts)
	var unreachable error
	var brokerNow time.Time // the broker's clock, from the first round read
	for _, r := range rounds {
		if unreachable != nil {
			r.err = unreachable // no round's content makes a dial fail: the next would too
			continue
		}
		bc.run(ctx, r, now)
		if r.brokerErr != nil {
			return reading{}, r.brokerErr // a replica, or TIME or INFO refused: no round can be used
		}
		if dialFailed(r.err) {
			unreachable = r.err
		}
		if r.err == nil && brokerNow.IsZero() {
			brokerNow = r.now
		}
	}
	for prefix := range bc.attr {
		if !prefixes[prefix] {
			delete(bc.attr, prefix) // no layout uses this prefix any more
		}
	}

	// The lengths, heads and attributions of the rounds that worked.
	lens := map[string]int64{}
	var groups []*headGroup
	unread := map[string]bool{} // lists whose round failed: their sightings are kept
	failedPrefix := map[string]error{}
	for _, r := range rounds {
		for prefix := range r.prefixes {
			if err := cmp.Or(r.err, r.refusedPrefix[prefix]); err != nil {
				failedPrefix[prefix] = err
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
				lens[k] = c.Val()
			}
		}
		for _, g := range r.groups {
			groups = append(groups, g)
		}
	}
	waits, waitErrs := bc.judgeHeads(groups, unread, brokerNow)
	for l := range waitErrs {
		if _, ok := waits[l]; ok {
			delete(waitErrs, l) // read in another round
		}
	}
	for k, n := range bc.lens {
		if _, read := lens[k]; !read && unread[k] {
			lens[k] = n // known before its round failed: no head storm after a failure
		}
	}
	bc.lens = lens

	out := poll.NewParts[Backlog]()
	var firstErr error
	fresh := 0
	// Counting walks the attributed entries: once per prefix and visibility
	// timeout, however many layouts share them.
	counts := map[countKey]map[string]*queueCounts{}
	for _, r := range rounds {
		for _, id := range r.ids {
			l := layouts[id]
			if err := bc.failure(r, l, failedPrefix); err != nil {
				firstErr = cmp.Or(firstErr, err)
				out.Errs[id] = err
				if h, ok := bc.held[id]; ok {
					out.Of[id], out.At[id] = h.bl, h.at
				}
				continue
			}
			a := bc.attribution(l.KeyPrefix)
			ck := countKey{l.KeyPrefix, l.VisibilityTimeout}
			qc, ok := counts[ck]
			if !ok {
				qc = a.count(brokerNow, l.VisibilityTimeout)
				counts[ck] = qc
			}
			bl := a.backlog(l, qc, lens, waits, waitErrs)
			bl.BrokerTime = brokerNow
			hb := bc.hb.counts(l.KeyPrefix, bc.broker.db, bc.o.Clock(), bc.o.HeartbeatWarmup)
			if !l.AcksLate {
				if !hb.warm {
					out.Errs[id] = errWarmingUp
					continue
				}
				bl.InFlight += hb.active
			}
			bl.HeartbeatActive, bl.HeartbeatWorkers = hb.active, hb.workers
			bl.Completed, bl.CompletedSource = hb.completed, hb.source+"/"+l.KeyPrefix
			out.Of[id] = bl
			fresh++
		}
	}
	readAt := bc.o.Now()
	for id, bl := range out.Of {
		if _, held := out.At[id]; !held {
			bc.held[id] = heldBacklog{bl: bl, at: readAt}
		}
	}
	for id := range bc.held {
		if _, ok := layouts[id]; !ok {
			delete(bc.held, id) // no watch reads it any more
		}
	}
	if fresh == 0 && firstErr != nil {
		return reading{}, firstErr // nothing read: the poll failed (logged and counted as such)
	}
	if firstErr != nil {
		bc.log.Warn("part of the poll failing; its ScaledObjects keep their last good readings", "err", firstErr, "failed", len(out.Errs), "of", len(layouts))
	}
	return out, nil
}

// failure is why layout l of round r has no fresh reading: its round
// failed, Redis refused one of its lists, or its prefix's unacked hash
// could not be read; nil when it reads.
func (bc *brokerConn) failure(r *round, l Layout, failedPrefix map[string]error) error {
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

// heldBacklog is a layout's last good Backlog and when it was read.
type heldBacklog struct {
	bl Backlog
	at time.Time
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
// attribution of the unacked hash, scaled to its current length, and the
// waits of its lists' heads.
func (a *attribution) backlog(l Layout, qc map[string]*queueCounts, llen map[string]int64, waits map[string]listWait, waitErrs map[string]error) Backlog {
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
		qb.waitFrom(l.Lists(q), waits, waitErrs, &bl)
		bl.ETAWaiting += qb.ETAWaiting
		bl.Stale += qb.Stale
		bl.Queues = append(bl.Queues, qb)
	}
	slices.SortFunc(bl.Queues, func(x, y QueueBacklog) int { return cmp.Compare(x.Name, y.Name) })
	return bl
}

// heartbeatChannels are the pub/sub channels of Celery's worker events on a
// Redis db, behind kombu's global_keyprefix; the heartbeat channel first.
func heartbeatChannels(prefix string, db int) []string {
	base := prefix + "/" + strconv.Itoa(db) + ".celeryev/worker."
	return []string{base + "heartbeat", base + "offline", base + "online"}
}
