package redisbroker

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
)

// RoundLists bounds the lists one round of a broker's poll reads. A
// broker's poll reads its layouts in rounds, smallest layouts first, each
// round a pipeline with a deadline of its own (Options.PollTimeout): a
// layout at the per-object limit (celery.MaxLists) fills a round by itself, so
// objects at the limit never share a round, or its deadline, with a small
// one.
const RoundLists = celery.MaxLists

// round is one pipeline of a broker's poll: some layouts, their lists
// (each once), the head scripts of their queues and, for each key prefix
// no earlier round has, the step over its unacked hash.
type round struct {
	ids      []string                 // the layouts, smallest first
	lists    []string                 // their lists, each once
	groups   map[string]*headGroup    // by the queue's lists
	prefixes map[string]*prefixPlan   // the unacked hashes it reads, by key prefix
	llen     map[string]*redis.IntCmd // by list

	// state is the broker's clock and role, read in the round's first
	// pipeline; now is that clock.
	state brokerState
	now   time.Time
	// brokerErr says the broker answered but cannot be read at all (a
	// replica, or TIME or INFO refused): the poll fails as a whole.
	brokerErr error
	// err fails the whole round (no answer, a dead connection); its
	// layouts keep their last good readings.
	err error
	// refused are the keys Redis refused (WRONGTYPE), by list; a prefix's
	// refusal is in refusedPrefix. Only the layouts reading them fail.
	refused       map[string]error
	refusedPrefix map[string]error
}

type prefixPlan struct {
	hlen   *redis.IntCmd
	scan   *redis.ScanCmd
	scores *redis.FloatSliceCmd
	step   []scanned
}

// plan packs layouts into rounds of at most RoundLists lists, smallest
// first (by lists, then id, so the packing is stable from poll to poll); a
// layout is never split. A key prefix's unacked hash is read by the first
// round with a layout of that prefix.
func plan(layouts map[string]celery.Layout) []*round {
	type sized struct {
		id   string
		cost int
	}
	ids := make([]sized, 0, len(layouts))
	for id, l := range layouts {
		ids = append(ids, sized{id, len(l.Queues) * len(l.Lists(""))})
	}
	slices.SortFunc(ids, func(a, b sized) int { return cmp.Or(cmp.Compare(a.cost, b.cost), cmp.Compare(a.id, b.id)) })
	var rounds []*round
	var cur *round
	n := 0
	owned := map[string]bool{}
	for _, s := range ids {
		id, l := s.id, layouts[s.id]
		if cur == nil || n+s.cost > RoundLists {
			cur = &round{groups: map[string]*headGroup{}, prefixes: map[string]*prefixPlan{}, llen: map[string]*redis.IntCmd{},
				refused: map[string]error{}, refusedPrefix: map[string]error{}}
			rounds = append(rounds, cur)
			n = 0
		}
		cur.ids = append(cur.ids, id)
		n += s.cost
		if !owned[l.KeyPrefix] {
			owned[l.KeyPrefix] = true
			cur.prefixes[l.KeyPrefix] = &prefixPlan{}
		}
		for _, q := range l.Queues {
			lists := l.Lists(q)
			for _, k := range lists {
				if _, ok := cur.llen[k]; !ok {
					cur.llen[k] = nil
					cur.lists = append(cur.lists, k)
				}
			}
			gk := strings.Join(lists, "\x00")
			if g := cur.groups[gk]; g != nil {
				g.store = g.store || l.ShareFirstSeen
			} else {
				cur.groups[gk] = &headGroup{lists: lists, store: l.ShareFirstSeen}
			}
		}
	}
	return rounds
}

// run reads one round, within PollTimeout of its own: one pipeline of
// TIME and INFO replication (see brokerState), LLEN for each list, one EVALSHA per queue whose lists were not all empty
// at the last poll (the heads: the oldest waiting tasks), HLEN of each
// unacked hash of the round and, when a pass over a hash is under way, one
// HSCAN step; a second round trip fetches the delivery times of the
// entries that step returned (and sends the head script again if the
// broker lost it). The outcome is in r: a failed round keeps the
// attribution as it was.
func (bc *Conn) run(ctx context.Context, r *round, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, bc.o.PollTimeout)
	defer cancel()
	if !bc.read(ctx, r) {
		return
	}
	bc.step(ctx, r, now)
}

// read sends round r's first pipeline and judges its answer: false when
// the round, or the poll, cannot go on (r.err, r.brokerErr).
func (bc *Conn) read(ctx context.Context, r *round) bool {
	pipe := bc.client.Pipeline()
	r.state = queueBrokerState(ctx, pipe)
	for _, k := range r.lists {
		r.llen[k] = pipe.LLen(ctx, k)
	}
	for prefix, p := range r.prefixes {
		p.hlen = pipe.HLen(ctx, prefix+"unacked")
		a := bc.attribution(prefix)
		if a.stepDue(bc.o.Clock(), bc.o.AttributionInterval) {
			p.scan = pipe.HScan(ctx, prefix+"unacked", a.cursor, "", int64(bc.o.ScanCount))
		}
	}
	for k, g := range r.groups {
		if !slices.ContainsFunc(g.lists, func(l string) bool { n, known := bc.lens[l]; return !known || n > 0 }) {
			delete(r.groups, k) // empty at the last poll: nothing has waited long
		}
	}
	bc.queueHeads(ctx, pipe, slices.Collect(maps.Values(r.groups)))
	cmds, err := pipe.Exec(ctx)
	if r.brokerErr = r.state.refused(bc.broker); r.brokerErr != nil {
		return false
	}
	if err != nil && !bc.judge(ctx, r, cmds, err) {
		return false
	}
	r.now, r.err = r.state.clock(bc.broker)
	return r.err == nil
}

// step sends round r's second round trip, when it has one (the head
// script again, the delivery times of an HSCAN step's entries), and moves
// the attribution of each unacked hash r read on.
func (bc *Conn) step(ctx context.Context, r *round, now time.Time) {
	pipe := bc.client.Pipeline()
	n := 0
	var resend []*headGroup
	for _, g := range r.groups {
		if noScript(g.cmd.Err()) {
			resend = append(resend, g)
		}
	}
	if len(resend) > 0 {
		bc.scriptLoaded = false
		bc.queueHeads(ctx, pipe, resend)
		n++
	}
	cursors := map[string]uint64{}
	for prefix, p := range r.prefixes {
		if p.scan == nil || r.refusedPrefix[prefix] != nil {
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
		cursors[prefix] = cursor
	}
	if n > 0 {
		if cmds, err := pipe.Exec(ctx); err != nil && !bc.judge(ctx, r, cmds, err) {
			return
		}
	}
	bc.attribute(r, cursors, now)
}

// attribute adds the HSCAN steps of round r (cursors: where each leaves
// its pass) to the attribution of their unacked hashes, with each hash's
// length.
func (bc *Conn) attribute(r *round, cursors map[string]uint64, now time.Time) {
	for prefix, p := range r.prefixes {
		if r.refusedPrefix[prefix] != nil {
			continue
		}
		a := bc.attribution(prefix)
		if p.scan != nil {
			var scores []float64
			if p.scores != nil {
				scores = p.scores.Val()
			}
			a.pendingCursor = cursors[prefix]
			a.addStep(p.step, scores, now)
		}
		a.lastHLen = p.hlen.Val()
	}
}

// judge sorts out a failed pipeline of round r. A key Redis refused
// (WRONGTYPE) fails only the layouts that read it, and a head script's
// error only the queue's wait (the counts stand): judge records those and
// reports true, the round goes on. Anything else (no answer, a dead
// connection, a refusal of the connection itself such as a wrong password,
// which no command carries) fails the round as a whole: r.err, and false.
func (bc *Conn) judge(ctx context.Context, r *round, cmds []redis.Cmder, err error) bool {
	var rerr redis.Error
	replyOnly, carried := errors.As(err, &rerr), false
	check := func(c redis.Cmder) error {
		cerr := c.Err()
		if cerr == nil || cerr == redis.Nil {
			return nil
		}
		carried = true
		if !errors.As(cerr, &rerr) {
			replyOnly = false
			return nil
		}
		return bc.cmdErr(c)
	}
	for k, c := range r.llen {
		if c == nil {
			continue
		}
		if e := check(c); e != nil {
			r.refused[k] = e
		}
	}
	for prefix, p := range r.prefixes {
		cs := []redis.Cmder{p.hlen}
		if p.scan != nil {
			cs = append(cs, p.scan)
		}
		if p.scores != nil {
			cs = append(cs, p.scores)
		}
		for _, c := range cs {
			if e := check(c); e != nil && r.refusedPrefix[prefix] == nil {
				r.refusedPrefix[prefix] = e
			}
		}
	}
	for _, g := range r.groups {
		if g.cmd != nil {
			_ = check(g.cmd) // a script's reply error is the queue's wait error
		}
	}
	if !replyOnly || !carried {
		r.err = bc.pipeErr(ctx, cmds, err)
		return false
	}
	return true
}
