package celery

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StampHeader is the message header a Celery app sets in its
// before_task_publish signal to the publish time, in Unix seconds
// (time.time()): the age of the oldest waiting task is then exact.
// examples/celery/publish_stamp.py is the snippet.
const StampHeader = "montage_published_at"

// Where the age of a waiting task comes from (QueueBacklog.WaitMethod).
const (
	// WaitStamp is the message's StampHeader.
	WaitStamp = "publish-stamp"
	// WaitFirstSeen is when a scaler first saw the message at the head of
	// its list, kept in the broker: every scaler replica reads the same
	// time, and a restart keeps it.
	WaitFirstSeen = "first-seen"
	// WaitFirstSeenLocal is when this scaler replica first saw the message
	// at the head of its list, kept in its memory: shown, never acted on
	// (another replica, or this one after a restart, would say another
	// age).
	WaitFirstSeenLocal = "first-seen-local"
)

// firstSeenPrefix + a list's key holds "<delivery tag> <unix ms>": the
// message at the head of that list and when a scaler first saw it there,
// by the broker's clock.
const firstSeenPrefix = "montage-scaler:first-seen:"

// firstSeenTTL bounds how long a first-seen key outlives its list's use;
// it is renewed while the same message stays at the head.
const firstSeenTTL = 24 * time.Hour

// headScript reads the head (the consuming end: kombu LPUSHes and BRPOPs)
// of each list in KEYS[1..n] and returns, per list, {} when it is empty or
// {tag, stamp, eta, seen, storeError}: the message's delivery tag, its
// publish stamp and ETA headers ("" when absent), and for an unstamped
// message the unix ms, by the broker's clock (TIME), at which a scaler
// first saw it there ("" unknown). KEYS[n+i] is list i's first-seen key.
// ARGV: the key's TTL (ms), "1" to record a first sighting (else only read
// one), the stamp header's name. Only the few fields are returned, not the
// messages.
var headScript = redis.NewScript(`
local n = #KEYS / 2
local ttl, store, stampName = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3]
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local out = {}
for i = 1, n do
  local m = redis.call('LINDEX', KEYS[i], -1)
  if not m then
    out[i] = {}
  else
    local tag, stamp, eta, seen, storeErr = '', '', '', '', ''
    local ok, msg = pcall(cjson.decode, m)
    if ok and type(msg) == 'table' then
      local h = msg['headers']
      if type(h) == 'table' then
        local s = h[stampName]
        if type(s) == 'number' then stamp = string.format('%.6f', s) elseif type(s) == 'string' then stamp = s end
        if type(h['eta']) == 'string' then eta = h['eta'] end
        if type(h['id']) == 'string' then tag = h['id'] end
      end
      local p = msg['properties']
      if type(p) == 'table' and type(p['delivery_tag']) == 'string' then tag = p['delivery_tag'] end
    end
    if stamp == '' then
      if tag == '' then tag = redis.sha1hex(m) end
      local v = redis.call('GET', KEYS[n + i])
      if v and string.sub(v, 1, #tag + 1) == tag .. ' ' then
        seen = string.sub(v, #tag + 2)
        if store and redis.call('PTTL', KEYS[n + i]) < ttl / 2 then
          redis.pcall('PEXPIRE', KEYS[n + i], ttl)
        end
      elseif store then
        local r = redis.pcall('SET', KEYS[n + i], tag .. ' ' .. now, 'PX', ttl)
        if type(r) == 'table' and r['err'] then storeErr = r['err'] else seen = now end
      end
    end
    out[i] = {tag, stamp, eta, seen, storeErr}
  end
end
return out
`)

// head is the oldest message of one list, as headScript read it.
type head struct {
	tag      string
	stamp    time.Time // zero: no stamp
	eta      time.Time // zero: no ETA
	seen     time.Time // first seen, kept in the broker; zero: unknown
	storeErr string    // why a first sighting could not be recorded
}

// headGroup is one EVALSHA of headScript over some lists.
type headGroup struct {
	lists []string
	store bool
	cmd   *redis.Cmd
}

func (g *headGroup) queue(ctx context.Context, pipe redis.Pipeliner, eval bool) {
	keys := make([]string, 0, 2*len(g.lists))
	keys = append(keys, g.lists...)
	for _, l := range g.lists {
		keys = append(keys, firstSeenPrefix+l)
	}
	store := "0"
	if g.store {
		store = "1"
	}
	args := []any{firstSeenTTL.Milliseconds(), store, StampHeader}
	if eval {
		g.cmd = headScript.Eval(ctx, pipe, keys, args...)
	} else {
		g.cmd = headScript.EvalSha(ctx, pipe, keys, args...)
	}
}

// noScript says the server has not got the script cached (first use, a
// restart, SCRIPT FLUSH): it is sent again in full.
func noScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// heads parses the group's reply into heads by list.
func (g *headGroup) heads(into map[string]head) error {
	v, err := g.cmd.Slice()
	if err != nil {
		return err
	}
	if len(v) != len(g.lists) {
		return fmt.Errorf("%d replies for %d lists", len(v), len(g.lists))
	}
	for i, raw := range v {
		f, _ := raw.([]any)
		if len(f) == 0 {
			continue
		}
		if len(f) != 5 {
			return fmt.Errorf("list %q: %d fields, want 5", g.lists[i], len(f))
		}
		s := make([]string, 5)
		for j := range f {
			s[j], _ = f[j].(string)
		}
		h := head{tag: s[0], storeErr: s[4]}
		if s[1] != "" {
			if sec, err := strconv.ParseFloat(s[1], 64); err == nil && sec > 0 && !math.IsInf(sec, 0) {
				h.stamp = time.Unix(0, int64(sec*1e9))
			}
		}
		if s[2] != "" {
			h.eta, _ = parseETA(s[2]) // an unreadable ETA counts as none
		}
		if s[3] != "" {
			if ms, err := strconv.ParseInt(s[3], 10, 64); err == nil {
				h.seen = time.UnixMilli(ms)
			}
		}
		into[g.lists[i]] = h
	}
	return nil
}

// seenHead is a list's head as this replica first saw it, by the broker's
// clock.
type seenHead struct {
	tag string
	at  time.Time
}

// queueHeads adds the head script of each group to pipe. Until the broker
// is known to have the script cached, the first group sends it in full
// (EVAL caches it) and the rest by hash: the pipeline runs in order.
func (bc *brokerConn) queueHeads(ctx context.Context, pipe redis.Pipeliner, groups []*headGroup) {
	for i, g := range groups {
		g.queue(ctx, pipe, i == 0 && !bc.scriptLoaded)
	}
}

// judgeHeads judges the heads the groups read at now, the broker's time:
// per list, its oldest task's wait, or the error that kept it from being
// read. It keeps this replica's first sightings up to date.
func (bc *brokerConn) judgeHeads(groups map[string]*headGroup, now time.Time) (map[string]listWait, map[string]error) {
	heads := map[string]head{}
	errs := map[string]error{}
	loaded := false
	for _, g := range groups {
		if err := g.heads(heads); err != nil {
			for _, l := range g.lists {
				errs[l] = err
			}
			continue
		}
		loaded = true
	}
	bc.scriptLoaded = bc.scriptLoaded || loaded
	out := make(map[string]listWait, len(heads))
	for l, h := range heads {
		local := time.Time{}
		if h.stamp.IsZero() && h.seen.IsZero() {
			s, ok := bc.seen[l]
			if !ok || s.tag != h.tag {
				s = seenHead{tag: h.tag, at: now}
				bc.seen[l] = s
			}
			local = s.at
		}
		out[l] = waitOf(h, local, now)
	}
	for l := range bc.seen {
		if h, ok := heads[l]; !ok || !h.stamp.IsZero() || !h.seen.IsZero() {
			delete(bc.seen, l)
		}
	}
	return out, errs
}

// listWait is how long the head of one list has waited at now.
type listWait struct {
	wait    time.Duration
	method  string
	waiting bool   // some task waits (a head whose ETA, if any, has come)
	note    string // why a first sighting is this replica's only
}

// waitOf judges the head of a list at now, the broker's time; local is
// this replica's first sighting, used when the broker has none.
func waitOf(h head, local time.Time, now time.Time) listWait {
	if !h.eta.IsZero() && h.eta.After(now) {
		return listWait{} // not due: it does not wait yet
	}
	w := listWait{waiting: true}
	if h.storeErr != "" {
		w.note = "the first sighting could not be kept in the broker: " + h.storeErr
	}
	from := h.stamp
	switch {
	case !h.stamp.IsZero():
		w.method = WaitStamp
	case !h.seen.IsZero():
		from, w.method = h.seen, WaitFirstSeen
	default:
		from, w.method = local, WaitFirstSeenLocal
	}
	if !h.eta.IsZero() && h.eta.After(from) {
		from = h.eta // an ETA task waits from its ETA on
	}
	w.wait = max(now.Sub(from), 0)
	return w
}

// waitFrom sets the queue's oldest wait from the waits of its lists (the
// longest), or leaves it unknown when a list could not be read; problems
// go to the Backlog's WaitError, and its oldest wait is the queues'.
func (qb *QueueBacklog) waitFrom(lists []string, waits map[string]listWait, errs map[string]error, bl *Backlog) {
	var best listWait
	for _, l := range lists {
		if err := errs[l]; err != nil {
			bl.addWaitError(fmt.Sprintf("queue %q: %v", qb.Name, err))
			return
		}
		w := waits[l]
		if w.note != "" {
			bl.addWaitError(fmt.Sprintf("queue %q: %s", qb.Name, w.note))
		}
		if w.waiting && (!best.waiting || w.wait > best.wait) {
			best = w
		}
	}
	sec := best.wait.Seconds()
	qb.OldestWaitSeconds, qb.WaitMethod = &sec, best.method
	if bl.OldestWaitSeconds == nil || sec > *bl.OldestWaitSeconds {
		bl.OldestWaitSeconds, bl.WaitMethod = &sec, best.method
	}
}

func (bl *Backlog) addWaitError(msg string) {
	if !strings.Contains(bl.WaitError, msg) {
		bl.WaitError = strings.TrimPrefix(bl.WaitError+"; "+msg, "; ")
	}
}

// ActionableWait is the longest wait every scaler replica reads the same
// (WaitStamp or WaitFirstSeen), over the queues; 0 when none.
func (bl Backlog) ActionableWait() time.Duration {
	var out float64
	for _, q := range bl.Queues {
		if q.OldestWaitSeconds != nil && (q.WaitMethod == WaitStamp || q.WaitMethod == WaitFirstSeen) {
			out = max(out, *q.OldestWaitSeconds)
		}
	}
	return time.Duration(out * float64(time.Second))
}
