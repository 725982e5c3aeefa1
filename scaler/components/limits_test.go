package components_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/registry/registrytest"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Nothing listens on port 1 of the loopback: the upstreams of these
// tests fail fast, which the limits do not care about (they are judged
// before anything is dialled).
const nowhere = "127.0.0.1:1"

// limitedRegistry is a registry over a Set with every limit given as
// flag values (the rest unbounded), its janitor run by the test's clock.
func limitedRegistry(t *testing.T, clock *registrytest.Clock, values map[string]int) *registry.Registry {
	t.Helper()
	all := map[string]int{}
	for _, f := range source.LimitFlags() {
		all[f.Flag] = 0
	}
	for k, v := range values {
		all[k] = v
	}
	set := source.New(components.Table(), source.Options{Limits: source.Limits(all), RedisTimeout: 100 * time.Millisecond})
	t.Cleanup(set.Close)
	reg := registry.New(registry.Options{Sources: set, Now: clock.Now, IdleAfter: time.Second,
		Parse: spec.Options{Table: components.Pure(), StaleAfter: time.Minute}, FirstWait: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

// getOnceFreed asks for a watch until the janitor has dropped the idle
// ones and given back what they held (after closing their sources):
// the refusal then ends.
func getOnceFreed(t *testing.T, reg *registry.Registry, namespace, name string, md map[string]string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := get(t, reg, namespace, name, md)
		if got == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s after the idle watches were dropped: %s", namespace, name, got)
		}
	}
}

// get asks for a watch without waiting for its first reading; "" when it
// is made, else the refusal.
func get(t *testing.T, reg *registry.Registry, namespace, name string, md map[string]string) string {
	t.Helper()
	noWait, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := reg.Get(noWait, namespace, name, md)
	if err == nil {
		return ""
	}
	if !errors.Is(err, quota.ErrExhausted) {
		t.Fatalf("%s/%s: %v, want a refusal or a watch", namespace, name, err)
	}
	return err.Error()
}

// Every kind of upstream is counted per namespace and per process, a
// second watch on the same upstream costs nothing, the refusal names the
// limit and the upstream (redacted), and an upstream is freed when its
// last watch is dropped.
func TestEveryUpstreamKindIsCappedPerNamespaceAndPerProcess(t *testing.T) {
	for _, tc := range []struct {
		kind, flag string
		md         func(i int) map[string]string
		shown      func(i int) string
	}{
		{"broker", "max-brokers",
			func(i int) map[string]string {
				return map[string]string{"brokerURL": fmt.Sprintf("redis://:pw@%s/%d", nowhere, i)}
			},
			func(i int) string { return fmt.Sprintf("redis://:xxxxx@%s/%d", nowhere, i) }},
		{"broker (sentinel)", "max-brokers",
			func(i int) map[string]string {
				return map[string]string{"brokerURL": fmt.Sprintf("sentinel://%s/%d", nowhere, i), "sentinelMaster": "mymaster"}
			},
			func(i int) string { return fmt.Sprintf(`sentinel://%s/%d (master "mymaster")`, nowhere, i) }},
		{"broker (unix socket)", "max-brokers",
			func(i int) map[string]string {
				return map[string]string{"brokerURL": fmt.Sprintf("redis+socket:///nowhere/redis.sock?virtual_host=%d", i)}
			},
			func(i int) string { return fmt.Sprintf("redis+socket:///nowhere/redis.sock?virtual_host=%d", i) }},
		{"prometheus endpoint", "max-prometheus-endpoints",
			func(i int) map[string]string {
				return map[string]string{"prometheusURL": fmt.Sprintf("http://%s/prom-%d", nowhere, i), "latencyQuery": "p95", "replicasQuery": "replicas"}
			},
			func(i int) string { return fmt.Sprintf("http://%s/prom-%d", nowhere, i) }},
		{"scrape target", "max-scrape-targets",
			func(i int) map[string]string {
				return map[string]string{"metricsURLs": fmt.Sprintf("http://%s/metrics-%d", nowhere, i), "latencyHistogram": "h", "replicasQuery": "r", "prometheusURL": "http://" + nowhere}
			},
			func(i int) string { return fmt.Sprintf("http://%s/metrics-%d", nowhere, i) }},
		{"feed", "max-feeds",
			func(i int) map[string]string {
				return map[string]string{"calendarURL": fmt.Sprintf("https://%s/private-0123456789abcdef0123456789/basic-%d.ics", nowhere, i)}
			},
			func(i int) string { return fmt.Sprintf("https://%s/xxxxx/basic-%d.ics", nowhere, i) }},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			clock := registrytest.NewClock(time.Now())
			reg := limitedRegistry(t, clock, map[string]int{tc.flag: 3, tc.flag + "-per-namespace": 2})
			steps := []struct {
				namespace, name string
				upstream        int
				want            string
			}{
				{"a", "one", 1, ""},
				{"a", "two", 2, ""},
				{"a", "three", 3, "namespace \"a\", beyond --" + tc.flag + "-per-namespace 2"},
				{"a", "shares", 1, ""},
				{"b", "one", 3, ""},
				{"c", "one", 4, "the process, beyond --" + tc.flag + " 3"},
				{"c", "shares", 3, ""},
			}
			for _, s := range steps {
				got := get(t, reg, s.namespace, s.name, tc.md(s.upstream))
				if s.want == "" {
					if got != "" {
						t.Fatalf("%s/%s on upstream %d refused: %s", s.namespace, s.name, s.upstream, got)
					}
					continue
				}
				if !strings.Contains(got, s.want) || !strings.Contains(got, tc.shown(s.upstream)+" would be") {
					t.Fatalf("%s/%s on upstream %d:\n got %q\nwant the upstream %q and %q", s.namespace, s.name, s.upstream, got, tc.shown(s.upstream), s.want)
				}
				if strings.Contains(got, ":pw@") || strings.Contains(got, "0123456789abcdef") {
					t.Fatalf("the refusal shows a secret: %s", got)
				}
			}
			// Upstream 1's watches (a/one, a/shares) go idle: namespace a
			// may name another upstream.
			clock.Add(600 * time.Millisecond)
			for _, s := range steps {
				if s.upstream != 1 && s.want == "" {
					get(t, reg, s.namespace, s.name, tc.md(s.upstream))
				}
			}
			clock.Add(600 * time.Millisecond)
			getOnceFreed(t, reg, "a", "three", tc.md(3))
		})
	}
}

// The lists of a broker's shared poll add up over its watches, the
// metadata versions of one ScaledObject kept until they are idle
// included; per broker, per namespace and per process.
func TestListsAddUpPerBrokerPerNamespaceAndPerProcessVersionsIncluded(t *testing.T) {
	clock := registrytest.NewClock(time.Now())
	reg := limitedRegistry(t, clock, map[string]int{"max-lists-per-broker": 100, "max-lists-per-namespace": 60, "max-lists": 130})
	md := func(db int, queues ...string) map[string]string { // 4 lists a queue
		return map[string]string{"brokerURL": fmt.Sprintf("redis://%s/%d", nowhere, db), "queues": strings.Join(queues, ",")}
	}
	qs := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	for _, s := range []struct {
		namespace, name string
		md              map[string]string
		want            string
	}{
		{"a", "app", md(0, qs("v1-", 10)...), ""},
		{"a", "app", md(0, qs("v2-", 5)...), ""}, // a new version: 60 lists in namespace a
		{"a", "app", md(0, qs("v3-", 1)...), `4 more lists on redis://127.0.0.1:1/0 would make 64 in namespace "a", beyond --max-lists-per-namespace 60`},
		{"b", "app", md(0, qs("b", 11)...), `44 more lists on redis://127.0.0.1:1/0 would make 104 in its shared poll, beyond --max-lists-per-broker 100`},
		{"b", "app", md(0, qs("b", 10)...), ""},
		{"c", "app", md(1, qs("c", 10)...), `40 more lists on redis://127.0.0.1:1/1 would make 140 in the process, beyond --max-lists 130`},
	} {
		got := get(t, reg, s.namespace, s.name, s.md)
		if (s.want == "") != (got == "") || !strings.Contains(got, s.want) {
			t.Fatalf("%s/%s:\n got %q\nwant %q", s.namespace, s.name, got, s.want)
		}
	}
	// KEDA now asks with the latest metadata only: the older versions go
	// after --idle-after, and their lists with them.
	clock.Add(600 * time.Millisecond)
	for _, keep := range []struct {
		namespace string
		md        map[string]string
	}{{"a", md(0, qs("v2-", 5)...)}, {"b", md(0, qs("b", 10)...)}} {
		if got := get(t, reg, keep.namespace, "app", keep.md); got != "" {
			t.Fatal(got)
		}
	}
	clock.Add(600 * time.Millisecond)
	getOnceFreed(t, reg, "a", "app", md(0, qs("v3-", 1)...))
}
