package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
)

// firstSeenPrefix + a list's key holds "<delivery tag> <unix ms>": the
// message at the head of that list and when a scaler first saw it there,
// by the broker's clock.
const firstSeenPrefix = "montage-scaler:first-seen:"

// firstSeenTTL bounds how long a first-seen key outlives its list's use;
// it is renewed while the same message stays at the head. These are the
// only keys the scaler writes with a TTL, so a volatile-* maxmemory-policy
// evicts them first: a lost key is noticed and written back (see
// Conn.judgeHeads).
const firstSeenTTL = 24 * time.Hour

// stampAheadTolerance is how far a publish stamp may be ahead of the
// broker's clock before the producer's clock is said to run ahead (the
// task reached the broker after it was stamped, so any lead is skew; this
// leaves room for clocks kept by NTP).
const stampAheadTolerance = time.Second

// headScript reads the head (the consuming end: kombu LPUSHes and BRPOPs)
// of each list in KEYS[1..n] and returns, per list, {} when it is empty or
// {tag, stamp, eta, seen, storeError, found}: the message's delivery tag,
// its publish stamp and ETA headers ("" when absent), and for an unstamped
// message the unix ms, by the broker's clock (TIME), at which a scaler
// first saw it there ("" unknown), and what the first-seen key held for it
// before this call ("" nothing: a first sighting, or a lost key).
// KEYS[n+i] is list i's first-seen key. ARGV: the key's TTL (ms), "1" to
// record a first sighting (else only read one), the stamp header's name,
// then per list the oldest sighting this scaler knows of its head, "<tag>
// <unix ms>" or "": a key that holds a later time for that tag (it was
// lost and written anew) or none gets the older one. Only the few fields
// are returned, not the messages.
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
    local tag, stamp, eta, seen, storeErr, found = '', '', '', '', '', ''
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
      local key, pre = KEYS[n + i], tag .. ' '
      local v = redis.call('GET', key)
      if v and string.sub(v, 1, #pre) == pre then found = string.sub(v, #pre + 1) end
      seen = found
      if store then
        local keep, mine = found, ARGV[3 + i]
        if string.sub(mine, 1, #pre) == pre then
          mine = string.sub(mine, #pre + 1)
          if keep == '' or tonumber(mine) < tonumber(keep) then keep = mine end
        end
        if keep == '' then keep = now end
        if keep ~= found then
          local r = redis.pcall('SET', key, pre .. keep, 'PX', ttl)
          if type(r) == 'table' and r['err'] then storeErr = r['err'] else seen = keep end
        elseif redis.call('PTTL', key) < ttl / 2 then
          redis.pcall('PEXPIRE', key, ttl)
        end
      end
    end
    out[i] = {tag, stamp, eta, seen, storeErr, found}
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
	// found is what the broker held for this message before the script
	// ran; zero: nothing.
	found time.Time
}

// headGroup is one EVALSHA of headScript over some lists.
type headGroup struct {
	lists []string
	store bool
	cmd   *redis.Cmd
}

// queue adds the group's script to pipe; mine is, per list, the oldest
// sighting this scaler knows of its head ("<tag> <unix ms>" or "").
func (g *headGroup) queue(ctx context.Context, pipe redis.Pipeliner, mine func(list string) string, eval bool) {
	keys := make([]string, 0, 2*len(g.lists))
	keys = append(keys, g.lists...)
	for _, l := range g.lists {
		keys = append(keys, firstSeenPrefix+l)
	}
	store := "0"
	if g.store {
		store = "1"
	}
	args := []any{firstSeenTTL.Milliseconds(), store, celery.StampHeader}
	for _, l := range g.lists {
		args = append(args, mine(l))
	}
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

// scriptError is a failed head script's error as the wait shows it:
// Redis's reason, never the script. Redis's unknown-command error quotes
// the command's first arguments ("ERR unknown command 'eval', with args
// beginning with: '<the script>' …", when a managed Redis renamed the
// scripting commands away): they are cut, and a message that still holds
// Lua (a proxy's wording) is cut to its error code.
func scriptError(err error) error {
	msg, _, cut := strings.Cut(err.Error(), ", with args beginning with:")
	for _, lua := range []string{"KEYS", "ARGV", "redis.", "local "} {
		if strings.Contains(msg, lua) {
			code, _, _ := strings.Cut(msg, " ")
			return fmt.Errorf("%s (the broker's message quotes the script; not shown)", code)
		}
	}
	if !cut {
		return err
	}
	return errors.New(strings.TrimSpace(msg))
}

// heads parses the group's reply into heads by list.
func (g *headGroup) heads(into map[string]head) error {
	v, err := g.cmd.Slice()
	if err != nil {
		return scriptError(err)
	}
	if len(v) != len(g.lists) {
		return fmt.Errorf("%d replies for %d lists", len(v), len(g.lists))
	}
	for i, raw := range v {
		f, _ := raw.([]any)
		if len(f) == 0 {
			continue
		}
		if len(f) != 6 {
			return fmt.Errorf("list %q: %d fields, want 6", g.lists[i], len(f))
		}
		s := make([]string, 6)
		for j := range f {
			s[j], _ = f[j].(string)
		}
		h := head{tag: s[0], storeErr: s[4], seen: unixMilli(s[3]), found: unixMilli(s[5])}
		if s[1] != "" {
			// Seconds, whole and fractional apart: sec*1e9 passes int64 after
			// 2262, and a stamp in milliseconds by mistake would wrap to 1677
			// (every task centuries old); kept as it is, it reads far ahead
			// of the broker's clock, which is said (stampAhead).
			if sec, err := strconv.ParseFloat(s[1], 64); err == nil && sec > 0 && sec < 1e15 {
				whole := math.Floor(sec)
				h.stamp = time.Unix(int64(whole), int64((sec-whole)*1e9))
			}
		}
		if s[2] != "" {
			h.eta, _ = parseETA(s[2]) // an unreadable ETA counts as none
		}
		into[g.lists[i]] = h
	}
	return nil
}

// unixMilli reads a first-seen time; zero when s is not one.
func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// seenHead is the oldest sighting this replica knows of a list's head, by
// the broker's clock: its own first sighting or a first-seen key it read,
// whichever is older. It outlives the key: a key lost from the broker
// (evicted, deleted) is written back from it.
type seenHead struct {
	tag string
	at  time.Time
	// brokerAt is what the broker's key held for this message at the last
	// poll (zero: nothing); a later poll that finds the key gone or later
	// says it was lost.
	brokerAt time.Time
	// lost says the key was lost while this message stayed at the head.
	lost bool
	// stampAhead says the message's stamp was found ahead of the broker's
	// clock (logged once per message).
	stampAhead bool
}

// mine is the argument of headScript for list l.
func (bc *Conn) mine(l string) string {
	s, ok := bc.seen[l]
	if !ok || s.at.IsZero() {
		return ""
	}
	return s.tag + " " + strconv.FormatInt(s.at.UnixMilli(), 10)
}

// queueHeads adds the head script of each group to pipe. Until the broker
// is known to have the script cached, the first group sends it in full
// (EVAL caches it) and the rest by hash: the pipeline runs in order.
func (bc *Conn) queueHeads(ctx context.Context, pipe redis.Pipeliner, groups []*headGroup) {
	for i, g := range groups {
		g.queue(ctx, pipe, bc.mine, i == 0 && !bc.scriptLoaded)
	}
}

// judgeHeads judges the heads the groups read at now, the broker's time:
// per list, its oldest task's wait, or the error that kept it from being
// read. It keeps this replica's sightings up to date (those of unread
// lists, whose round of the poll failed, stay as they were), and logs and
// counts what the waits' notes say once per message.
func (bc *Conn) judgeHeads(groups []*headGroup, unread map[string]bool, now time.Time) (map[string]listWait, map[string]error) {
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
		if !h.stamp.IsZero() {
			w := waitOf(h, time.Time{}, now)
			if prev := bc.seen[l]; w.stampAhead > 0 && (prev.tag != h.tag || !prev.stampAhead) {
				bc.warn(celery.WarnStampAhead, "publish stamp ahead of the broker's clock: the producer's clock runs ahead; the wait reads 0",
					"list", l, "aheadSeconds", math.Round(w.stampAhead.Seconds()))
			}
			bc.seen[l] = seenHead{tag: h.tag, stampAhead: w.stampAhead > 0}
			out[l] = w
			continue
		}
		s, ok := bc.seen[l]
		if !ok || s.tag != h.tag || s.at.IsZero() {
			s = seenHead{tag: h.tag, at: now.Truncate(time.Millisecond)}
		}
		if !s.brokerAt.IsZero() && (h.found.IsZero() || h.found.After(s.brokerAt)) {
			s.lost = true
			bc.warn(celery.WarnFirstSeenLost, "first-seen key lost (evicted under a volatile-* maxmemory-policy, or deleted): "+
				"the older sighting is kept; set the broker's maxmemory-policy to noeviction",
				"list", l, "key", firstSeenPrefix+l, "kept", s.at.UTC().Format(time.RFC3339Nano))
		}
		s.brokerAt = h.seen
		if !h.seen.IsZero() && h.seen.Before(s.at) {
			s.at = h.seen
		}
		bc.seen[l] = s
		w := waitOf(h, s.at, now)
		w.lost = s.lost
		out[l] = w
	}
	for l := range bc.seen {
		if _, ok := heads[l]; !ok && errs[l] == nil && !unread[l] {
			delete(bc.seen, l) // empty, or not read: its list was empty
		}
	}
	return out, errs
}

// warn logs a problem with the broker's queue waits at WARN (the logger's
// handler holds back repeats) and counts it.
func (bc *Conn) warn(kind, msg string, args ...any) {
	bc.o.Logger.Warn(msg, append([]any{"broker", bc.broker.Redacted(), "kind", kind}, args...)...)
	if bc.o.OnWarning != nil {
		bc.o.OnWarning(kind)
	}
}
