// Package store keeps the forecast's history in the broker's Redis and
// records into it: a Store reads and writes one ScaledObject's history, and
// a Hub runs one history poller per broker, which owns the broker's client
// and the recorders writing through it (see package forecast for what the
// history holds and how it is read into a forecast).
package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/poll"
)

// KeyPrefix is the scaler's own prefix in the broker, apart from kombu's keys.
const KeyPrefix = "montage-scaler:forecast:"

// writeScript merges one bucket into the history and trims it, atomically:
// a field per bucket and component, "<unix>:<component>", set to the max of
// what is there and what is written, so that replicas writing the same
// bucket agree in any order; an index sorted set scored by bucket finds what
// fell out of the retention; both keys expire a week after the retention
// so an abandoned ScaledObject's history goes away.
//
// KEYS: hash, index. ARGV: bucket, cutoff, ttl seconds, then component,
// value pairs.
var writeScript = redis.NewScript(`
local b = ARGV[1]
for i = 4, #ARGV, 2 do
  local f = b .. ':' .. ARGV[i]
  local cur = tonumber(redis.call('HGET', KEYS[1], f))
  if (not cur) or tonumber(ARGV[i+1]) > cur then
    redis.call('HSET', KEYS[1], f, ARGV[i+1])
  end
  redis.call('ZADD', KEYS[2], tonumber(b), f)
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, 4096)
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return #old
`)

// Client is what a Store needs of a Redis client (*redis.Client has it).
type Client interface {
	redis.Scripter
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
}

// Store is one ScaledObject's history in Redis.
type Store struct {
	c         Client
	key, idx  string
	retention time.Duration
}

// New returns the store of namespace/name keeping weeks of history.
// The hash tag keeps both keys in one Redis Cluster slot.
func New(c Client, namespace, name string, weeks int) *Store {
	k := KeyPrefix + "{" + namespace + "/" + name + "}"
	return &Store{c: c, key: k, idx: k + ":index", retention: time.Duration(weeks) * forecast.Week}
}

// Key is the history's hash key.
func (s *Store) Key() string { return s.key }

// Write merges d into bucket (max per component) and drops buckets older
// than the retention before now. One round trip.
func (s *Store) Write(ctx context.Context, bucket time.Time, d forecast.Demand, now time.Time) error {
	if len(d) == 0 {
		return nil
	}
	args := []any{forecast.BucketOf(bucket).Unix(), now.Add(-s.retention).Unix(), int64((s.retention + forecast.Week) / time.Second)}
	names := make([]string, 0, len(d))
	for k := range d {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := d[k]
		if !(v >= 0) || math.IsInf(v, 1) {
			// FormatFloat would write "+Inf" or "NaN", and every later
			// read of the history would fail on it.
			return fmt.Errorf("forecast: write history %s: %s demand %g is not a replica count: nothing written", s.key, k, v)
		}
		// No decision asks for more than the ceiling, so no demand is
		// recorded above it (a read refuses one).
		args = append(args, k, strconv.FormatFloat(min(v, decide.Ceiling), 'f', 3, 64))
	}
	if err := writeScript.Run(ctx, s.c, []string{s.key, s.idx}, args...).Err(); err != nil {
		return fmt.Errorf("forecast: write history %s: %w", s.key, err)
	}
	return nil
}

// Read returns the history within the retention before now. One round trip.
func (s *Store) Read(ctx context.Context, now time.Time) (*forecast.History, error) {
	m, err := s.c.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("forecast: read history %s: %w", s.key, err)
	}
	return s.parse(m, now)
}

// readAll reads every store's history in one pipeline: a failed round
// trip fails them all, a malformed history only its own entry.
func readAll(ctx context.Context, c *redis.Client, stores map[string]*Store, now time.Time) (histories, error) {
	out := poll.NewParts[*forecast.History]()
	if len(stores) == 0 {
		return out, nil
	}
	pipe := c.Pipeline()
	cmds := make(map[string]*redis.MapStringStringCmd, len(stores))
	for id, s := range stores {
		cmds[id] = pipe.HGetAll(ctx, s.key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return histories{}, fmt.Errorf("forecast: read histories: %w", err)
	}
	for id, s := range stores {
		h, err := s.parse(cmds[id].Val(), now)
		if err != nil {
			out.Errs[id] = err
			continue
		}
		out.Of[id] = h
	}
	return out, nil
}

// parse turns the hash's fields into the history within the retention.
func (s *Store) parse(m map[string]string, now time.Time) (*forecast.History, error) {
	cutoff := now.Add(-s.retention).Unix()
	h := forecast.NewHistory()
	for f, v := range m {
		bs, comp, ok := strings.Cut(f, ":")
		b, err1 := strconv.ParseInt(bs, 10, 64)
		x, err2 := strconv.ParseFloat(v, 64)
		if !ok || err1 != nil || err2 != nil || decide.CheckReplicas(x) != nil {
			return nil, fmt.Errorf("forecast: read history %s: field %q = %q is not <unix>:<component> = replicas from 0 to %d", s.key, meta.Clip(f, 100), meta.Clip(v, 100), decide.Ceiling)
		}
		if b < cutoff {
			continue
		}
		h.Observe(time.Unix(b, 0), forecast.Demand{comp: x})
	}
	return h, nil
}
