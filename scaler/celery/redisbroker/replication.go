package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
)

// brokerState is what the broker says of itself, read in the poll's first
// pipeline at no extra round trip: its clock (TIME), by which every age in
// a Backlog is judged, and its replication role (INFO replication), since a
// replica is refused.
//
// Why a replica is refused rather than read until its data is staleAfter
// old: how far a replica lags cannot be told from INFO. An idle master
// speaks to its replicas only every repl-ping-replica-period (10 s), so a
// replica in sync and one a few seconds behind look alike; a paused master
// keeps the link "up" for repl-timeout (60 s) while the replica's data
// ages; and once the link is down, master_link_down_since_seconds counts
// from when the replica gave up, not from the last write it received. A
// replica also refuses the writes that keep first sightings shared. And
// Celery's producers and workers cannot use one: the URL Celery uses names
// the master, and sentinel:// URLs follow it through a failover.
type brokerState struct {
	time *redis.TimeCmd
	info *redis.StringCmd
}

// queueBrokerState adds TIME and INFO replication to the poll's pipeline.
func queueBrokerState(ctx context.Context, pipe redis.Pipeliner) brokerState {
	return brokerState{time: pipe.Time(ctx), info: pipe.Info(ctx, "replication")}
}

// refused says why the poll of broker b cannot be used although the broker
// answered: it is a replica, or it refused TIME or INFO (an ACL user
// without them). A broker that did not answer is left to the caller.
func (s brokerState) refused(b celery.Broker) error {
	if s.info.Err() == nil {
		if r := parseReplication(s.info.Val()); r.replica {
			return &ReplicaError{Broker: b.Redacted(), Replication: r}
		}
	}
	for _, c := range []redis.Cmder{s.time, s.info} {
		var rerr redis.Error
		if err := c.Err(); errors.As(err, &rerr) {
			return fmt.Errorf("celery: poll %s: %s refused: %w (the scaler judges ages by the broker's clock, TIME, "+
				"and refuses a replica, INFO replication: a broker user restricted by ACL needs +time and +info)",
				b.Redacted(), strings.ToUpper(c.Name()), err)
		}
	}
	return nil
}

// clock is the broker's time at the poll; an error when TIME got no
// usable answer.
func (s brokerState) clock(b celery.Broker) (time.Time, error) {
	t, err := s.time.Result()
	if err == nil && t.IsZero() {
		err = errors.New("no time in the reply")
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("celery: poll %s: TIME: %w", b.Redacted(), err)
	}
	return t, nil
}

// Replication is a broker's replication state, from INFO replication.
type Replication struct {
	// Master is the replica's master, host:port as the replica names it.
	Master string
	// LinkUp is master_link_status: up.
	LinkUp bool
	// LastIO is how long ago the replica last heard from its master while
	// the link is up; DownFor how long the link has been down (its
	// start is when the replica gave up on the master, not the last data it
	// received). Negative: unknown (a replica that never synced).
	LastIO, DownFor time.Duration

	replica bool
}

// parseReplication reads INFO replication's "field:value" lines. Redis
// still spells a replica's role "slave".
func parseReplication(info string) Replication {
	f := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	seconds := func(k string) time.Duration {
		n, err := strconv.Atoi(f[k])
		if err != nil || n < 0 {
			return -1
		}
		return time.Duration(n) * time.Second
	}
	r := Replication{replica: f["role"] == "slave" || f["role"] == "replica", LinkUp: f["master_link_status"] == "up"}
	if r.replica {
		r.Master = net.JoinHostPort(f["master_host"], f["master_port"])
		r.LastIO, r.DownFor = seconds("master_last_io_seconds_ago"), seconds("master_link_down_since_seconds")
		if r.LinkUp {
			r.DownFor = -1
		} else {
			r.LastIO = -1
		}
	}
	return r
}

// ReplicaError is the poll's error when the broker URL names a replica: no
// reading is taken from it, so the last good reading (from a master) is
// held until staleAfter and then the source is unavailable.
type ReplicaError struct {
	Broker string // the broker URL, redacted
	Replication
}

func (e *ReplicaError) Error() string {
	link := "link to it down"
	switch {
	case e.LinkUp && e.LastIO >= 0:
		link = fmt.Sprintf("link up, last heard from %s ago", e.LastIO)
	case e.LinkUp:
		link = "link up"
	case e.DownFor >= 0:
		link = fmt.Sprintf("link to it down for %s", e.DownFor)
	}
	return fmt.Sprintf("celery: poll %s: the broker is a replica of %s (%s): refused, as a replica's counts lag "+
		"its master's by a time the scaler cannot bound; point brokerURL at the master Celery uses, or at its sentinels (sentinel://)",
		e.Broker, e.Master, link)
}
