package redisbroker

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
)

// hbShare keeps one heartbeat subscription per Redis server: Redis pub/sub
// is not per db (Celery's event channels name the db instead), so the
// brokers of one server — its dbs — share one pub/sub connection, however
// many they are.
type hbShare struct {
	mu      sync.Mutex
	servers map[string]*hbServer // by celery.Broker.ServerKey
	n       int                  // numbers the subscriptions made, for their ids
}

// hbServer is one server's subscription and the channels each of its
// holders (a broker's poll) wants. mu guards holders and is never held
// across I/O: acquire, on the way of a new watch's first RPC, takes it.
// io orders the (un)subscriptions, which may wait on the server.
type hbServer struct {
	id      string // unique in the process: what Backlog.CompletedSource names
	client  *redis.Client
	hb      *heartbeats
	io      sync.Mutex
	mu      sync.Mutex
	holders map[*heartbeatSub][]string
	// dirty says a holder left: the next want drops its channels (a close
	// does no I/O, so that closing many brokers of a hung server is quick).
	dirty bool
}

// heartbeatSub is one broker's share of its server's subscription.
type heartbeatSub struct {
	share *hbShare
	key   string
	srv   *hbServer
}

func newHBShare() *hbShare { return &hbShare{servers: map[string]*hbServer{}} }

// acquire returns b's share of its server's subscription, made with a
// client of its own (b's options) for the server's first broker. It does
// no I/O (go-redis dials when first used).
func (s *hbShare) acquire(b celery.Broker, o Options) (*heartbeatSub, error) {
	key := b.ServerKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.servers[key]
	if srv == nil {
		c, err := newClient(b, o)
		if err != nil {
			return nil, err
		}
		s.n++
		srv = &hbServer{id: "heartbeats-" + strconv.Itoa(s.n), client: c, holders: map[*heartbeatSub][]string{},
			hb: newHeartbeats(c, o.Clock, o.Logger.With("broker", b.Redacted()))}
		s.servers[key] = srv
	}
	sub := &heartbeatSub{share: s, key: key, srv: srv}
	srv.mu.Lock()
	srv.holders[sub] = nil
	srv.mu.Unlock()
	return sub, nil
}

// want makes this broker's share of the subscription exactly channels.
// Called at every poll: the subscription is only touched when the share
// changed (or a subscribe failed and is to be tried again).
func (h *heartbeatSub) want(ctx context.Context, channels []string) {
	srv := h.srv
	channels = slices.Clone(channels)
	slices.Sort(channels)
	srv.mu.Lock()
	same := slices.Equal(srv.holders[h], channels) && !srv.dirty
	srv.holders[h], srv.dirty = channels, false
	srv.mu.Unlock()
	if same && !srv.hb.missing(channels) {
		return
	}
	srv.sync(ctx)
}

// sync subscribes to what the holders want together.
func (srv *hbServer) sync(ctx context.Context) {
	srv.io.Lock()
	defer srv.io.Unlock()
	srv.mu.Lock()
	var all []string
	for _, cs := range srv.holders {
		all = append(all, cs...)
	}
	srv.mu.Unlock()
	slices.Sort(all)
	srv.hb.want(ctx, slices.Compact(all))
}

// counts reads the heartbeats of a key prefix on a db (see
// heartbeats.counts); source names the counter behind completed.
func (h *heartbeatSub) counts(prefix string, db int, now time.Time, warmup time.Duration) heartbeatCounts {
	c := h.srv.hb.counts(prefix, db, now, warmup)
	c.source = h.srv.id + "/" + strconv.Itoa(db)
	return c
}

// close gives the share back; the server's last closes the subscription
// and its client. Another's channels are dropped by the next poll of the
// server's other brokers.
func (h *heartbeatSub) close() {
	s, srv := h.share, h.srv
	s.mu.Lock()
	srv.mu.Lock()
	delete(srv.holders, h)
	last := len(srv.holders) == 0
	srv.dirty = !last
	srv.mu.Unlock()
	if last {
		delete(s.servers, h.key)
	}
	s.mu.Unlock()
	if !last {
		return // the next poll of the server's other brokers drops this one's channels
	}
	srv.io.Lock()
	defer srv.io.Unlock()
	srv.hb.close()
	_ = srv.client.Close()
}
