package broker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
	"github.com/montage/montage-scaler/test/servers"
)

// Every broker URL form of Celery's syntax against a real server: the
// tasks are sent by a real Celery producer through the very URL the scaler
// is given, so both read the broker the same way.

// readOnce watches queue on the broker raw names and returns the first
// reading (or its error).
func readOnce(t *testing.T, raw, master, queue string) (celery.Backlog, error) {
	t.Helper()
	b, err := celery.ParseBrokerURL(raw, master)
	if err != nil {
		t.Fatalf("ParseBrokerURL(%q): %v", raw, err)
	}
	w := fastHub(t).Watch(b, layout("", time.Hour, true, queue))
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil {
		t.Fatalf("First: %v", err)
	}
	return s.Value, s.Err
}

// sendN sends n block tasks to queue through the producer options.
func sendN(t *testing.T, p servers.ProducerOptions, queue string, n int) {
	t.Helper()
	tasks := make([]servers.Task, n)
	for i := range tasks {
		tasks[i] = servers.Block(fmt.Sprintf("%s-%d-%d", queue, n, i), queue)
	}
	servers.SendTasks(t, p, tasks...)
}

// writePEM writes b under dir and returns the path.
func writePEM(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRedissBrokerVerifiesAsSslCertReqsSays(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "broker-ca"), tlstest.NewCA(t, "another-ca")
	srv := ca.Server(t, "redis")
	caFile := writePEM(t, dir, "ca.pem", ca.PEM)
	otherFile := writePEM(t, dir, "other.pem", other.PEM)
	r := servers.StartRedisWith(t, servers.RedisOptions{TLS: &servers.RedisTLS{
		CertFile: writePEM(t, dir, "redis.crt", srv.CertPEM), KeyFile: writePEM(t, dir, "redis.key", srv.KeyPEM), CAFile: caFile}})
	base := "rediss://" + r.TLSAddr() + "/0?"
	for _, tc := range []struct {
		name, query, err string
	}{
		{"required, with the CA that signed the server's certificate", "ssl_cert_reqs=required&ssl_ca_certs=" + caFile, ""},
		{"CERT_REQUIRED spelled as Python's constant", "ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=" + caFile, ""},
		{"optional verifies like required (Python's client mode)", "ssl_cert_reqs=optional&ssl_ca_certs=" + caFile, ""},
		{"none skips verification, no CA needed", "ssl_cert_reqs=none", ""},
		{"required with another CA is refused", "ssl_cert_reqs=required&ssl_ca_certs=" + otherFile, "certificate signed by unknown authority"},
		{"optional with another CA is refused too", "ssl_cert_reqs=optional&ssl_ca_certs=" + otherFile, "certificate signed by unknown authority"},
		{"required without ssl_ca_certs: the system roots do not know the test's CA", "ssl_cert_reqs=required", "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queue := fmt.Sprintf("q%d", time.Now().UnixNano())
			if tc.err == "" {
				sendN(t, servers.ProducerOptions{BrokerURL: base + tc.query}, queue, 3)
			}
			b, err := readOnce(t, base+tc.query, "", queue)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("reading %s: %v", tc.query, err)
			case tc.err == "" && b.Queued != 3:
				t.Fatalf("Queued = %d, want the 3 tasks Celery sent through the same URL", b.Queued)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("reading %s: %v, want an error containing %q", tc.query, err, tc.err)
			}
		})
	}
}

func TestRedissBrokerPresentsAClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "broker-ca"), tlstest.NewCA(t, "another-ca")
	srv, client, stranger := ca.Server(t, "redis"), ca.Client(t, "montage-scaler"), other.Client(t, "stranger")
	caFile := writePEM(t, dir, "ca.pem", ca.PEM)
	r := servers.StartRedisWith(t, servers.RedisOptions{TLS: &servers.RedisTLS{
		CertFile: writePEM(t, dir, "redis.crt", srv.CertPEM), KeyFile: writePEM(t, dir, "redis.key", srv.KeyPEM),
		CAFile: caFile, AuthClients: "yes"}})
	base := "rediss://" + r.TLSAddr() + "/0?ssl_cert_reqs=required&ssl_ca_certs=" + caFile
	good := base + "&ssl_certfile=" + writePEM(t, dir, "client.crt", client.CertPEM) + "&ssl_keyfile=" + writePEM(t, dir, "client.key", client.KeyPEM)
	bad := base + "&ssl_certfile=" + writePEM(t, dir, "stranger.crt", stranger.CertPEM) + "&ssl_keyfile=" + writePEM(t, dir, "stranger.key", stranger.KeyPEM)

	sendN(t, servers.ProducerOptions{BrokerURL: good}, "video", 2)
	if b, err := readOnce(t, good, "", "video"); err != nil || b.Queued != 2 {
		t.Fatalf("with a client certificate the CA signed: Queued %d, %v; want 2, nil", b.Queued, err)
	}
	for name, raw := range map[string]string{"no client certificate": base, "a certificate another CA signed": bad} {
		if _, err := readOnce(t, raw, "", "video"); err == nil {
			t.Errorf("%s: the broker answered, want a refused handshake", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestUnixSocketBroker(t *testing.T) {
	r := servers.StartRedisWith(t, servers.RedisOptions{Socket: true})
	raw := "redis+socket://" + r.SocketPath() + "?virtual_host=3"
	sendN(t, servers.ProducerOptions{BrokerURL: raw}, "video", 4)
	b, err := readOnce(t, raw, "", "video")
	if err != nil || b.Queued != 4 {
		t.Fatalf("over %s: Queued %d, %v; want 4, nil", raw, b.Queued, err)
	}
	// The same db over TCP holds them: virtual_host is the db number.
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: 3})
	t.Cleanup(func() { c.Close() })
	if n, err := c.LLen(t.Context(), "video").Result(); err != nil || n != 4 {
		t.Fatalf("LLEN video in db 3 over TCP = %d, %v; want 4", n, err)
	}
}

func TestACLUsersWithPasswords(t *testing.T) {
	// The default user is off: every client must name an ACL user. The
	// scaler's own user only reads (LLEN, HLEN, HSCAN and ZMSCORE are all
	// in @read) and asks the broker's clock and role (TIME, INFO), which is
	// enough with acksLate (no heartbeat subscription).
	r := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{
		"--user", "default", "off",
		"--user", "celery", "on", ">celery-pw-1", "~*", "&*", "+@all",
		"--user", "scaler", "on", ">scaler-pw-2", "~*", "+@read", "+time", "+info",
		"--user", "readonly", "on", ">readonly-pw-4", "~*", "+@read",
	}})
	sendN(t, servers.ProducerOptions{BrokerURL: "redis://celery:celery-pw-1@" + r.Addr() + "/0"}, "video", 3)
	for _, tc := range []struct{ name, raw, err string }{
		{"the app's user", "redis://celery:celery-pw-1@" + r.Addr() + "/0", ""},
		{"a read-only user with TIME and INFO", "redis://scaler:scaler-pw-2@" + r.Addr() + "/0", ""},
		{"a read-only user without them, told what to grant", "redis://readonly:readonly-pw-4@" + r.Addr() + "/0",
			"celery: poll redis://readonly:xxxxx@" + r.Addr() + "/0: TIME refused: NOPERM"},
		{"a wrong password", "redis://scaler:wrong-pw-3@" + r.Addr() + "/0", "WRONGPASS"},
		{"no user (the default user is off)", "redis://" + r.Addr() + "/0", "NOAUTH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readOnce(t, tc.raw, "", "video")
			if tc.err == "" {
				if err != nil || b.Queued != 3 {
					t.Fatalf("Queued %d, %v; want 3, nil", b.Queued, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if strings.Contains(tc.err, "NOPERM") && !strings.Contains(err.Error(), "needs +time and +info") {
				t.Errorf("error %q does not say what to grant", err)
			}
			for _, pw := range []string{"wrong-pw-3", "scaler-pw-2", "celery-pw-1", "readonly-pw-4"} {
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q shows a password", err)
				}
			}
		})
	}
}

// staleAfter is the staleness limit the sentinel failover must fit in: a
// quarter of serve's default, room for the sentinels' 1 s down-after, their
// election and go-redis's reconnection on a loaded machine.
const staleAfter = 30 * time.Second

func TestSentinelBrokerFollowsAFailoverWithoutAZero(t *testing.T) {
	const master = "montage"
	primary := servers.StartRedis(t)
	replica := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(primary.Port())}})
	s1 := servers.StartSentinel(t, servers.SentinelOptions{Master: master, MasterAddr: primary.Addr(), Quorum: 2})
	s2 := servers.StartSentinel(t, servers.SentinelOptions{Master: master, MasterAddr: primary.Addr(), Quorum: 2})
	waitSentinels(t, master, replica, s1, s2)

	raw := fmt.Sprintf("sentinel://%s;sentinel://%s/0", s1.Addr(), s2.Addr())
	prod := servers.ProducerOptions{BrokerURL: raw, MasterName: master}
	sendN(t, prod, "video", 12)
	b, err := celery.ParseBrokerURL(raw, master)
	if err != nil {
		t.Fatal(err)
	}
	w := fastHub(t).Watch(b, layout("", time.Hour, true, "video"))
	defer w.Close()
	waitFor(t, w, "12 queued through the sentinels", func(b celery.Backlog) bool { return b.Queued == 12 })
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { rc.Close() })
	eventually(t, "the replica holds the 12 tasks", func() error {
		if n, err := rc.LLen(t.Context(), "video").Result(); err != nil || n != 12 {
			return fmt.Errorf("LLEN video on the replica = %d, %v", n, err)
		}
		return nil
	})

	// Every reading from here on is checked: none may be below 12.
	killed := time.Now()
	primary.Stop()
	var lowest int64 = 12
	var backAt time.Time
	deadline := time.After(2 * staleAfter)
	for backAt.IsZero() {
		ch := w.Changed()
		s := w.Latest()
		if !s.GoodAt.IsZero() {
			lowest = min(lowest, s.Value.Queued)
			if s.Err == nil && s.GoodAt.After(killed) {
				backAt = s.GoodAt
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no good reading %s after the master was killed; latest %+v", 2*staleAfter, s)
		}
	}
	failover := backAt.Sub(killed)
	t.Logf("sentinel failover: the scaler read the promoted replica %s after the master was killed (staleAfter %s); lowest reading meanwhile %d", failover.Round(10*time.Millisecond), staleAfter, lowest)
	if lowest != 12 {
		t.Errorf("a reading of %d queued during the failover, want never below 12 (no invented 0)", lowest)
	}
	// How soon depends on the sentinels' vote, not on the scaler: a figure,
	// not an assertion (the loop above fails at twice staleAfter).
	sc := redis.NewSentinelClient(&redis.Options{Addr: s1.Addr()})
	t.Cleanup(func() { sc.Close() })
	// The scaler may have read the new master through the other sentinel
	// before this one learned it: wait for it too.
	eventually(t, "the first sentinel names the promoted replica", func() error {
		if addr, err := sc.GetMasterAddrByName(t.Context(), master).Result(); err != nil || addr[0]+":"+addr[1] != replica.Addr() {
			return fmt.Errorf("sentinel's master is %v, %v; want the promoted replica %s", addr, err, replica.Addr())
		}
		return nil
	})
	// New tasks land on the new master, and the scaler counts them.
	sendN(t, prod, "video", 5)
	waitFor(t, w, "17 queued on the new master", func(b celery.Backlog) bool { return b.Queued == 17 })
}

// waitSentinels waits until both sentinels see the replica and each other,
// so that a failover can be voted.
func waitSentinels(t *testing.T, master string, replica *servers.Redis, ss ...*servers.Sentinel) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer rc.Close()
	eventually(t, "the replica is in sync", func() error {
		info, err := rc.Info(t.Context(), "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica INFO: %v %q", err, info)
		}
		return nil
	})
	for _, s := range ss {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		defer sc.Close()
		eventually(t, "sentinel "+s.Addr()+" knows the replica and the other sentinel", func() error {
			ctx := t.Context()
			reps, err := sc.Replicas(ctx, master).Result()
			if err != nil || len(reps) != 1 || strings.Contains(reps[0]["flags"], "down") || strings.Contains(reps[0]["flags"], "disconnected") {
				return fmt.Errorf("replicas %v, %v", reps, err)
			}
			others, err := sc.Sentinels(ctx, master).Result()
			if err != nil || len(others) != len(ss)-1 {
				return fmt.Errorf("other sentinels %v, %v", others, err)
			}
			return nil
		})
	}
}

// eventually retries cond until it returns nil, failing with its last error
// after a generous deadline.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within 60s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
