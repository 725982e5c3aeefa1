package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/test/servers"
)

// A brokerURL that names a replica (here in sync with a master holding 12
// tasks) is refused, and the refusal reaches every place an operator looks:
// GetMetrics and IsActive answer Unavailable naming celery, Explain's
// component error names the replica and its master, the log says the read
// fails, and the source's error counter grows. The component's own metric is
// registered beside the others.
func TestABrokerURLNamingAReplicaIsUnavailableAndSaysWhy(t *testing.T) {
	master := servers.StartRedis(t)
	mdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { mdb.Close() })
	push(t, mdb, "celery", 12)
	replica := servers.StartRedisWith(t, servers.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(master.Port())}})
	rdb := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { rdb.Close() })
	eventually(t, "the replica in sync", func() error {
		if n := rdb.LLen(t.Context(), "celery").Val(); n != 12 {
			return fmt.Errorf("replica holds %d", n)
		}
		return nil
	})

	p := startServe(t)
	r := ref(replica.URL(0))
	why := fmt.Sprintf("the broker is a replica of %s (link up", master.Addr())
	eventually(t, "GetMetrics refuses the replica", func() error {
		v, err := metricValue(t, p, r)
		if err == nil {
			t.Fatalf("GetMetrics answered %v from a replica", v)
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "celery") || !strings.Contains(err.Error(), why) {
			return fmt.Errorf("GetMetrics error = %v, want Unavailable naming celery and %q", err, why)
		}
		return nil
	})
	if _, err := p.ks.IsActive(ctxT(t), r); status.Code(err) != codes.Unavailable {
		t.Errorf("IsActive = %v, want Unavailable", err)
	}
	e, err := scalerv1.NewInspectorClient(p.conn).Explain(ctxT(t), &scalerv1.ExplainRequest{Name: r.Name, Namespace: r.Namespace, ScalerMetadata: r.ScalerMetadata})
	if err != nil {
		t.Fatal(err)
	}
	if c := e.GetComponents()[0]; c.GetName() != "celery" || !strings.Contains(c.GetError(), why) || c.DesiredReplicas != nil {
		t.Errorf("Explain's celery component = %v, want no opinion and an error naming %q", c, why)
	}
	// The poller publishes a reading before it counts and logs it: the
	// log line and the counter may come a moment after the RPC's answer.
	eventually(t, "the log says the celery read fails because of the replica", func() error {
		if logs := p.logs.String(); !strings.Contains(logs, `"msg":"read failing; no good reading yet","component":"celery"`) || !strings.Contains(logs, why) {
			return fmt.Errorf("log:\n%s", logs)
		}
		return nil
	})
	eventually(t, "celery's error counter counts the refused reads", func() error {
		if got := metricLines(t, p, `montage_scaler_source_errors_total{component="celery"}`); len(got) != 1 || strings.HasSuffix(got[0], " 0") {
			return fmt.Errorf("celery's error counter: %q", got)
		}
		return nil
	})
	if got := metricLines(t, p, "montage_scaler_celery_wait_warnings_total"); len(got) != 2 ||
		got[0] != `montage_scaler_celery_wait_warnings_total{kind="first_seen_lost"} 0` {
		t.Errorf("montage_scaler_celery_wait_warnings_total = %q, want both kinds at 0", got)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("serve exit = %d", code)
	}
}
