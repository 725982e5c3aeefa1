package celery

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/poll"
)

// brokerConn is the poll of one broker: its client, its heartbeat
// subscription and the attribution of its unacked hashes.
type brokerConn struct {
	id      string // unique in the process: what Backlog.CompletedSource names
	o       HubOptions
	broker  Broker
	client  *redis.Client
	err     error // building the client failed
	hb      *heartbeats
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
	// warnings counts the problems with queue waits (nil: not counted).
	warnings *prometheus.CounterVec
}

// reading is one poll of a broker: a Backlog per layout (by Layout.id).
type reading = poll.Parts[Backlog]

// newBrokerConn starts the poll of broker b; id must be unique among the
// hub's pollers, past and present (see Backlog.CompletedSource).
func newBrokerConn(id string, o HubOptions, b Broker, layouts func() []Layout) *brokerConn {
	bc := &brokerConn{id: id, o: o, broker: b, layouts: layouts, attr: map[string]*attribution{}, seen: map[string]seenHead{}}
	bc.client, bc.err = b.newClient(o)
	if bc.client != nil {
		for _, hk := range o.Hooks {
			bc.client.AddHook(hk)
		}
		bc.hb = newHeartbeats(bc.client, o.Clock, o.Logger.With("broker", b.Redacted()))
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

type prefixPlan struct {
	lists  []string
	hlen   *redis.IntCmd
	scan   *redis.ScanCmd
	scores *redis.FloatSliceCmd
	step   []scanned
}

// poll reads the broker once: one pipeline of TIME and INFO replication
// (the broker's clock, by which every age is judged, and its role: a
// replica is refused, see brokerState), LLEN for every list of every
// layout, one EVALSHA per queue reading the heads of its lists (the oldest
// waiting tasks), HLEN of each unacked hash and, when a pass over the hash
// is under way, one HSCAN step; a second round trip fetches the delivery
// times of the entries that step returned (and sends the head script again
// if the broker lost it).
func (bc *brokerConn) poll(ctx context.Context) (reading, error) {
	if bc.err != nil {
		return reading{}, bc.err
	}
	layouts := map[string]Layout{}
	for _, l := range bc.layouts() {
		layouts[l.id()] = l
	}
	now := bc.o.Now()

	plans := map[string]*prefixPlan{}
	seen := map[string]bool{}
	groups := map[string]*headGroup{} // by the queue's lists
	for _, l := range layouts {
		p := plans[l.KeyPrefix]
		if p == nil {
			p = &prefixPlan{}
			plans[l.KeyPrefix] = p
		}
		for _, q := range l.Queues {
			lists := l.Lists(q)
			for _, k := range lists {
				if !seen[k] {
					seen[k] = true
					p.lists = append(p.lists, k)
				}
			}
			gk := strings.Join(lists, "\x00")
			if g := groups[gk]; g != nil {
				g.store = g.store || l.ShareFirstSeen
			} else {
				groups[gk] = &headGroup{lists: lists, store: l.ShareFirstSeen}
			}
		}
	}
	// Worker heartbeats are followed for every key prefix: they count the
	// tasks completed, the live workers and, with early ack, those running.
	var channels []string
	for prefix := range plans {
		channels = append(channels, heartbeatChannels(prefix, bc.broker.db)...)
	}
	bc.hb.want(ctx, channels)

	pipe := bc.client.Pipeline()
	state := queueBrokerState(ctx, pipe)
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
	for k, g := range groups {
		if !slices.ContainsFunc(g.lists, func(l string) bool { n, known := bc.lens[l]; return !known || n > 0 }) {
			delete(groups, k) // empty at the last poll: nothing has waited long
		}
	}
	bc.queueHeads(ctx, pipe, slices.Collect(maps.Values(groups)))
	cmds, err := pipe.Exec(ctx)
	if err := state.refused(bc.broker); err != nil {
		return reading{}, err
	}
	if err != nil && !headsOnly(err, llen, plans, groups) {
		return reading{}, bc.pipeErr(ctx, cmds, err)
	}
	brokerNow, err := state.clock(bc.broker)
	if err != nil {
		return reading{}, err
	}

	pipe = bc.client.Pipeline()
	n := 0
	var resend []*headGroup
	for _, g := range groups {
		if noScript(g.cmd.Err()) {
			resend = append(resend, g)
		}
	}
	if len(resend) > 0 {
		bc.scriptLoaded = false
		bc.queueHeads(ctx, pipe, resend)
		n++
	}
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
		if cmds, err := pipe.Exec(ctx); err != nil && !headsOnly(err, nil, plans, groups) {
			return reading{}, bc.pipeErr(ctx, cmds, err)
		}
	}
	waits, waitErrs := bc.judgeHeads(groups, brokerNow)
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
	bc.lens = lens
	out := poll.NewParts[Backlog]()
	// Counting walks the attributed entries: once per prefix and visibility
	// timeout, however many layouts share them.
	counts := map[countKey]map[string]*queueCounts{}
	for id, l := range layouts {
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
		bl.Completed, bl.CompletedSource = hb.completed, bc.id+"/"+l.KeyPrefix
		out.Of[id] = bl
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
