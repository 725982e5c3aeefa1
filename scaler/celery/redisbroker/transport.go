package redisbroker

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// Options tune the polls of Redis brokers. Zero fields take the defaults
// noted.
type Options struct {
	PollTimeout time.Duration    // bounds one round of a poll (see RoundLists); default 2s
	Now         func() time.Time // default time.Now; stamps the readings, while ages are judged by the broker's clock (TIME)
	// Clock measures intervals (heartbeat freshness and warm-up, spacing of
	// passes over the unacked hash); default time.Now. It stays the real
	// clock when Now is pinned (check --at).
	Clock       func() time.Time
	Logger      *slog.Logger  // default discards
	DialTimeout time.Duration // default 2s
	ReadTimeout time.Duration // default 2s (also the write timeout)
	// Policy is the address policy of brokerURL (--allow-host); nil:
	// netpolicy.Upstreams(nil), loopback and private open, link-local and
	// cloud metadata refused before dialling.
	Policy *netpolicy.Policy

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
	// OnWarning, if set, counts a problem with a queue wait, by kind
	// (celery.WarnFirstSeenLost, celery.WarnStampAhead), once per message;
	// the problem is logged at WARN whether or not it is set.
	OnWarning func(kind string)
}

func (o Options) withDefaults() Options {
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

// Transport opens the polls of Redis brokers. Their worker heartbeat
// subscriptions are shared, one per Redis server, among the polls it
// opened.
type Transport struct {
	o   Options
	hbs *hbShare
}

// New returns a Transport.
func New(o Options) *Transport {
	return &Transport{o: o.withDefaults(), hbs: newHBShare()}
}

// Open starts the poll of broker b, which must be a Redis broker
// (celery.TransportRedis). It does no I/O: a client that cannot be made is
// every poll's error. Close the Conn when done.
func (t *Transport) Open(b celery.Broker) *Conn {
	return newConn(t.o, b, t.hbs)
}

// PollLimit bounds one whole poll: each round has PollTimeout, and this
// only guards against a poll that would outlast every round's.
func (t *Transport) PollLimit() time.Duration { return maxRounds * t.o.PollTimeout }

// maxRounds bounds the rounds of one poll that its own limit allows for:
// --max-lists-per-broker's default (10,000 lists) packs into 10 to 20.
const maxRounds = 32
