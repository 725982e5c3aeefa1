package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/test/servers"
)

// startReplica starts a redis-server replicating master and waits until
// its link is up and it holds what master holds in db 0's list q.
func startReplica(t *testing.T, master *servers.Redis, q string) (*servers.Redis, *redis.Client) {
	t.Helper()
	replica := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(master.Port())}})
	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { mc.Close(); rc.Close() })
	want := mc.LLen(t.Context(), q).Val()
	eventually(t, "the replica in sync", func() error {
		info := rc.Info(t.Context(), "replication").Val()
		if n := rc.LLen(t.Context(), q).Val(); !strings.Contains(info, "master_link_status:up") || n != want {
			return fmt.Errorf("replica holds %d of %d; %s", n, want, info)
		}
		return nil
	})
	return replica, rc
}

// waitSnap waits until cond holds for the watch's latest snapshot,
// checking after every poll.
func waitSnap(t *testing.T, w *poll.View[celery.Backlog], what string, cond func(s poll.Snapshot[celery.Backlog]) bool) poll.Snapshot[celery.Backlog] {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := w.Changed()
		if s := w.Latest(); cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			s := w.Latest()
			t.Fatalf("%s: not reached in 60s; latest %+v at %s (err %v)", what, s.Value, s.GoodAt, s.Err)
		}
	}
}

func TestABrokerURLNamingAReplicaIsRefusedWithItsLinkUpOrDown(t *testing.T) {
	master := servers.StartRedis(t)
	sendN(t, servers.ProducerOptions{BrokerURL: master.URL(0)}, "q", 3)
	replica, rc := startReplica(t, master, "q")

	w := fastHub(t).Watch(mustBroker(t, replica.URL(0)), layout("", time.Hour, true, "q"))
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	up := fmt.Sprintf("celery: poll redis://%s/0: the broker is a replica of %s (link up", replica.Addr(), master.Addr())
	if s.Err == nil || !strings.HasPrefix(s.Err.Error(), up) || !s.GoodAt.IsZero() {
		t.Fatalf("a replica in sync: reading %+v at %s, error %v; want no reading and an error starting %q", s.Value, s.GoodAt, s.Err, up)
	}

	// The master stops: the replica's 3 tasks are now a frozen copy. Still
	// no reading, and the error says the link is down.
	master.Stop()
	eventually(t, "the replica sees its master gone", func() error {
		if info := rc.Info(t.Context(), "replication").Val(); !strings.Contains(info, "master_link_status:down") {
			return fmt.Errorf("%s", info)
		}
		return nil
	})
	down := fmt.Sprintf("the broker is a replica of %s (link to it down for ", master.Addr())
	s = waitSnap(t, w, "the link down in the error", func(s poll.Snapshot[celery.Backlog]) bool {
		return !s.GoodAt.IsZero() || (s.Err != nil && strings.Contains(s.Err.Error(), "link to it down"))
	})
	if !s.GoodAt.IsZero() || !strings.Contains(s.Err.Error(), down) || !strings.Contains(s.Err.Error(), "point brokerURL at the master") {
		t.Errorf("master stopped: reading %+v at %s, error %v; want none, and an error containing %q and the remedy", s.Value, s.GoodAt, s.Err, down)
	}
}

func TestAMasterDemotedToAReplicaKeepsItsLastGoodReadingNeverItsNewContents(t *testing.T) {
	broker := servers.StartRedis(t)
	sendN(t, servers.ProducerOptions{BrokerURL: broker.URL(0)}, "q", 10)
	empty := servers.StartRedis(t)
	w := fastHub(t).Watch(mustBroker(t, broker.URL(0)), layout("", time.Hour, true, "q"))
	defer w.Close()
	waitFor(t, w, "10 queued", func(b celery.Backlog) bool { return b.Queued == 10 })
	goodAt := w.Latest().GoodAt

	// A failover elsewhere demotes the broker the URL names: it follows an
	// empty master, and drops its tasks once synced.
	c := redis.NewClient(&redis.Options{Addr: broker.Addr()})
	t.Cleanup(func() { c.Close() })
	if err := c.ReplicaOf(t.Context(), "127.0.0.1", fmt.Sprint(empty.Port())).Err(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("celery: poll redis://%s/0: the broker is a replica of %s", broker.Addr(), empty.Addr())
	held := func(what string, s poll.Snapshot[celery.Backlog]) {
		t.Helper()
		if s.Err == nil || !strings.HasPrefix(s.Err.Error(), want) || s.Value.Queued != 10 || !s.GoodAt.Equal(goodAt) {
			t.Fatalf("%s: queued %d at %s, error %v; want the last good 10 of %s held and an error starting %q",
				what, s.Value.Queued, s.GoodAt, s.Err, goodAt, want)
		}
	}
	held("demoted", waitSnap(t, w, "demoted", func(s poll.Snapshot[celery.Backlog]) bool { return s.Err != nil || s.Value.Queued != 10 }))
	eventually(t, "the demoted broker synced", func() error {
		if n := c.LLen(t.Context(), "q").Val(); n != 0 {
			return fmt.Errorf("still %d", n)
		}
		return nil
	})
	<-w.Changed()
	held("synced, empty", w.Latest())

	// The held reading decides until staleAfter, then the source is
	// unavailable, naming the replica.
	src := source.Of(celery.Component, w, (&celery.Config{TasksPerReplica: 5}).Opinion)
	p := decide.Policy{StaleAfter: 2 * time.Minute}
	at := goodAt.Add(time.Minute)
	if d := decide.Decide(at, p, []decide.Reading{src.Reading(at)}); d.Desired == nil || *d.Desired != 2 || !d.Components[0].Held {
		t.Errorf("within staleAfter: %+v, want 2 replicas from the held reading", d)
	}
	at = goodAt.Add(2*time.Minute + time.Second)
	if d := decide.Decide(at, p, []decide.Reading{src.Reading(at)}); d.Err() == nil || !strings.Contains(d.Error, "celery: last good reading 2m1s old (staleAfter 2m0s): ") ||
		!strings.Contains(d.Error, "is a replica of") {
		t.Errorf("past staleAfter: %+v, want no decision, naming celery and the replica", d)
	}
}
