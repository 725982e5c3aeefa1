//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// scenarioTwoReplicas (issue 15, §1): deploy/ runs two scaler replicas
// behind a headless Service, and KEDA 2.21 dials scalerAddress with
// grpc.NewClient and a round_robin service config. Here scalerAddress is
// one DNS name with two A records, two `serve` processes on two addresses
// that both the operator (on the host) and the adapter's network namespace
// reach. The queue drives the Deployment up (17 tasks: 4); the scaler
// holding KEDA's StreamIsActive is SIGKILLed, 10 more tasks give 6 while it
// is dead; it comes back, then the other is SIGKILLed, 10 more give 8.
// Then a rolling restart (SIGTERM one, start it again, then the other) with
// 10 more tasks: 10, and no failed call seen by KEDA (its error metrics,
// the operator's and adapter's logs, Warning events). The replicas never
// drop. Printed: the activation gap after each kill (until the survivor
// holds the stream), the longest time KEDA had no answer to GetMetrics
// (from both scalers' logs), how long KEDA took to use a restarted scaler
// again, and KEDA's errors in each phase.
func scenarioTwoReplicas(t *testing.T, e *env) {
	const ns, dnsName = "twoscalers", "montage-scaler.twoscalers.e2e"
	s := e.scenario(t, ns)
	r := servers.StartRedis(t)
	// Two addresses on the host's end of the veth pair, routed from the
	// namespace; one name for both, served by a DNS server on the host's
	// veth address (see startDNS).
	hosts := []string{e.c.ns.hostAddr(t, 5), e.c.ns.hostAddr(t, 6)}
	// One port on both hosts: no process can bind port 0 for both. The
	// port is probed free on both, and the pair starts again on another
	// when a scaler's own output says the port was taken.
	var a, b *replica
	for attempt := 1; ; attempt++ {
		port := commonFreePort(t, hosts...)
		a = &replica{name: "scaler-a", host: hosts[0], port: port}
		b = &replica{name: "scaler-b", host: hosts[1], port: port}
		err := a.start(t, s)
		if err == nil {
			if err = b.start(t, s); err != nil {
				a.p.stop()
			}
		}
		if err == nil {
			break
		}
		if attempt == 5 || !errors.Is(err, servers.ErrPortTaken) {
			t.Fatalf("e2e: %v", err)
		}
	}
	dns := startDNS(t, e.c.ns.hostIP, dnsName, hosts...)
	address := fmt.Sprintf("dns://%s/%s:%d", dns, dnsName, a.port)
	s.reachable(t, fmt.Sprintf("brokerURL: %s\nqueues: celery\ntasksPerReplica: \"5\"\n", r.URL(0)), address, a, b)

	e.c.apply(t, deployment(ns, 1)+fmt.Sprintf(`---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: montage
  namespace: %s
spec:
  scaleTargetRef: {name: montage}
  pollingInterval: 5
  minReplicaCount: 1
  maxReplicaCount: 12
  triggers:
    - type: external-push
      metadata:
        scalerAddress: %s
        brokerURL: %s
        queues: celery
        tasksPerReplica: "5"
`, ns, address, r.URL(0)))
	tr := recordReplicas(t, e.c.client, ns, "montage")
	s.waitScaledObject(t, "montage")
	sendBlocks(t, r, "h1", 17, "celery")
	tr.waitFor(t, 3*time.Minute, "reach 4 (ceil(17/5))", eq(4))
	holder, other := streamHolder(t, a, b)
	t.Logf("both scalers answer KEDA by %s; %s holds StreamIsActive", address, holder.name)
	// A calm spell: KEDA's usual cadence, to compare the faults with.
	calm := time.Now()
	tr.holds(t, 20*time.Second, 4)

	var phases []phase
	tasks := 17
	// SIGKILL the scaler holding the stream, then, once KEDA uses it again,
	// the other (which holds the stream by then).
	for _, victim := range []*replica{holder, other} {
		survivor := a
		if victim == a {
			survivor = b
		}
		ph := phase{name: "SIGKILL " + victim.name, errs0: s.kedaErrors(t, e.c)}
		opened := survivor.streamsStarted()
		ph.from = time.Now()
		victim.p.kill()
		ph.gap = survivor.waitStream(t, ph.from, opened)
		tasks += 10
		sendBlocks(t, r, fmt.Sprintf("k%d", tasks), 10, "celery")
		want := int32((tasks + 4) / 5)
		tr.waitFor(t, 3*time.Minute, fmt.Sprintf("reach %d with %s dead", want, victim.name), eq(want))
		restarted := time.Now()
		victim.restart(t, s)
		ph.back = victim.waitServed(t).Sub(restarted)
		ph.to = time.Now()
		ph.errs1 = s.kedaErrors(t, e.c)
		phases = append(phases, ph)
	}

	// A rolling restart: SIGTERM one, start it again, wait until KEDA uses
	// it, then the other; 10 more tasks on the way.
	roll := phase{name: "rolling restart", from: time.Now(), errs0: s.kedaErrors(t, e.c)}
	for i, rp := range []*replica{holder, other} {
		survivor := a
		if rp == a {
			survivor = b
		}
		holds, opened := rp.openStreams() > 0, survivor.streamsStarted()
		stopped := time.Now()
		rp.p.stop()
		if holds {
			roll.gap = max(roll.gap, survivor.waitStream(t, stopped, opened))
		}
		restarted := time.Now()
		rp.restart(t, s)
		roll.back = max(roll.back, rp.waitServed(t).Sub(restarted))
		if i == 0 {
			tasks += 10
			sendBlocks(t, r, "roll", 10, "celery")
		}
	}
	want := int32((tasks + 4) / 5)
	tr.waitFor(t, 3*time.Minute, fmt.Sprintf("reach %d after the rolling restart", want), eq(want))
	time.Sleep(15 * time.Second) // several HPA syncs and KEDA polls after the last restart: a late error shows
	roll.to = time.Now()
	roll.errs1 = s.kedaErrors(t, e.c)
	phases = append(phases, roll)

	// The figures.
	answers := okGetMetrics(t, a, b)
	base := longestGap(answers, calm, phases[0].from)
	var report strings.Builder
	fmt.Fprintf(&report, "two scalers behind %s; in a calm 20 s KEDA's GetMetrics came at least every %.1f s (the HPA syncs every %s)\n", address, base.Seconds(), hpaSyncPeriod)
	fmt.Fprintf(&report, "| phase | activation gap (stream on the survivor) | longest time without a GetMetrics answer | KEDA back on the restarted scaler | KEDA's errors | what KEDA logged |\n|---|---|---|---|---|---|\n")
	for _, ph := range phases {
		d := ph.errs1.sub(ph.errs0)
		fmt.Fprintf(&report, "| %s | %.1f s | %.1f s | %.1f s | %s | %s |\n", ph.name, ph.gap.Seconds(),
			longestGap(answers, ph.from, ph.to).Seconds(), ph.back.Seconds(), d, d.messages())
	}
	t.Logf("%s\ntrajectory: %s", report.String(), tr)

	got := values(tr.snapshot())
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Fatalf("the replicas dropped: %v; trajectory: %s", got, tr)
		}
	}
	if d := roll.errs1.sub(roll.errs0); !d.zero() {
		t.Fatalf("KEDA saw failures during the rolling restart: %s\n%s", d, d.lines())
	}
}

// replica is one `montage-scaler serve` of the pair.
type replica struct {
	name, host string
	port       int
	p          *proc
	httpAddr   string
}

// start runs the replica on its host and port; an error wrapping
// servers.ErrPortTaken says its own output reported the port taken.
func (rp *replica) start(t *testing.T, s *scenario) error {
	t.Helper()
	sc, err := s.launchScaler(t, rp.name, net.JoinHostPort(rp.host, strconv.Itoa(rp.port)))
	if err != nil {
		return err
	}
	rp.p, rp.httpAddr = sc.proc, sc.httpAddr
	return nil
}

// restart runs the replica again on the port KEDA's address names; the test
// stops if another process took it meanwhile.
func (rp *replica) restart(t *testing.T, s *scenario) {
	t.Helper()
	if err := rp.start(t, s); err != nil {
		t.Fatalf("e2e: %s again on %s:%d: %v", rp.name, rp.host, rp.port, err)
	}
}

// counters reads the replica's gRPC server metrics: started and handled
// calls by method.
func (rp *replica) counters() (started, handled map[string]float64, err error) {
	resp, err := http.Get("http://" + rp.httpAddr + "/metrics")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	started, handled = map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		var m map[string]float64
		switch {
		case strings.HasPrefix(line, "grpc_server_started_total{"):
			m = started
		case strings.HasPrefix(line, "grpc_server_handled_total{"):
			m = handled
		default:
			continue
		}
		method := label(line, "grpc_method")
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			m[method] += v
		}
	}
	return started, handled, sc.Err()
}

// openStreams is how many StreamIsActive calls are open on the replica (-1
// when its metrics cannot be read).
func (rp *replica) openStreams() int {
	started, handled, err := rp.counters()
	if err != nil {
		return -1
	}
	return int(started["StreamIsActive"] - handled["StreamIsActive"])
}

// streamsStarted is how many StreamIsActive calls the replica has seen
// (-1 when its metrics cannot be read).
func (rp *replica) streamsStarted() float64 {
	started, _, err := rp.counters()
	if err != nil {
		return -1
	}
	return started["StreamIsActive"]
}

// waitStream waits until KEDA has opened a new StreamIsActive on the
// replica (it had seen `before` of them) and holds it, and returns the time
// since from: how long KEDA could not be told of an activation change.
func (rp *replica) waitStream(t *testing.T, from time.Time, before float64) time.Duration {
	t.Helper()
	waitUntil(t, 3*time.Minute, 100*time.Millisecond, "a new StreamIsActive from KEDA on "+rp.name, func() (bool, error) {
		return rp.streamsStarted() > before && rp.openStreams() > 0, nil
	})
	return time.Since(from)
}

// waitServed waits until the (restarted) replica has answered KEDA's unary
// calls and returns when that was seen.
func (rp *replica) waitServed(t *testing.T) time.Time {
	t.Helper()
	waitUntil(t, 4*time.Minute, 100*time.Millisecond, "KEDA calls "+rp.name+" again", func() (bool, error) {
		_, handled, err := rp.counters()
		return err == nil && handled["GetMetrics"]+handled["IsActive"]+handled["GetMetricSpec"] > 0, err
	})
	return time.Now()
}

// streamHolder waits until one of the two holds KEDA's StreamIsActive and
// both have answered KEDA; it returns the holder first.
func streamHolder(t *testing.T, a, b *replica) (holder, other *replica) {
	t.Helper()
	a.waitServed(t)
	b.waitServed(t)
	waitUntil(t, 3*time.Minute, 100*time.Millisecond, "KEDA's StreamIsActive on one scaler", func() (bool, error) {
		switch {
		case a.openStreams() > 0:
			holder, other = a, b
		case b.openStreams() > 0:
			holder, other = b, a
		}
		return holder != nil, nil
	})
	return holder, other
}

// reachable proves the name and both addresses from the host and from the
// adapter's network namespace, with the scaler's own explain (which dials
// as KEDA does, grpc.NewClient).
func (s *scenario) reachable(t *testing.T, metadata, address string, reps ...*replica) {
	t.Helper()
	file := filepath.Join(s.dir, "explain.yaml")
	writeFile(t, file, []byte(metadata))
	targets := []string{address}
	for _, rp := range reps {
		targets = append(targets, net.JoinHostPort(rp.host, strconv.Itoa(rp.port)))
	}
	for _, where := range [][]string{nil, {"ip", "netns", "exec", s.e.c.ns.name}} {
		for _, target := range targets {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := run(ctx, append(where, s.e.scalerBin, "explain", "--addr", target, "--metadata", file, "--format", "text")...)
			cancel()
			if err != nil {
				t.Fatalf("e2e: explain --addr %s (in %v): %v", target, where, err)
			}
		}
	}
}

// commonFreePort is a TCP port free on every host a moment ago (another
// process may take it before the scalers bind it: see scenarioTwoReplicas).
func commonFreePort(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 50 {
		p := probedPort(t, hosts[0])
		ok := true
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("e2e: no port free on all of %v", hosts)
	return 0
}

// phase is one fault of the scenario and what it cost.
type phase struct {
	name         string
	from, to     time.Time
	gap, back    time.Duration
	errs0, errs1 kedaErrs
}

// kedaErrs is what KEDA and the HPA say went wrong for the scenario's
// namespace, as running totals.
type kedaErrs struct {
	scalerErrors   float64 // keda_scaler_detail_errors_total
	objectErrors   float64 // keda_scaled_object_errors_total
	operatorErrors int     // ERROR lines of the operator's log naming the namespace
	adapterErrors  int     // error lines of the adapter's log naming the namespace
	warnings       int     // Warning events in the namespace (HPA FailedGetExternalMetric, KEDA's own), counted
	// The operator's and the adapter's error lines.
	operatorLines, adapterLines []string
}

// sub is what happened between o and k (o taken first).
func (k kedaErrs) sub(o kedaErrs) kedaErrs {
	return kedaErrs{k.scalerErrors - o.scalerErrors, k.objectErrors - o.objectErrors, k.operatorErrors - o.operatorErrors,
		k.adapterErrors - o.adapterErrors, k.warnings - o.warnings,
		k.operatorLines[min(len(o.operatorLines), len(k.operatorLines)):], k.adapterLines[min(len(o.adapterLines), len(k.adapterLines)):]}
}

// lines is the error lines, for a failure message.
func (k kedaErrs) lines() string {
	return strings.Join(append(slices.Clone(k.operatorLines), k.adapterLines...), "\n")
}

func (k kedaErrs) zero() bool {
	return k.scalerErrors == 0 && k.objectErrors == 0 && k.operatorErrors == 0 && k.adapterErrors == 0 && k.warnings == 0
}

// messages lists the distinct messages of the error lines (the operator's
// console log: time, level, logger, message, fields, tab-separated).
func (k kedaErrs) messages() string {
	seen := map[string]int{}
	var order []string
	for _, l := range k.operatorLines {
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			continue
		}
		m := f[2] + ": " + f[3]
		if seen[m] == 0 {
			order = append(order, m)
		}
		seen[m]++
	}
	if len(order) == 0 {
		return "—"
	}
	for i, m := range order {
		order[i] = fmt.Sprintf("%s (×%d)", m, seen[m])
	}
	return strings.Join(order, "; ")
}

func (k kedaErrs) String() string {
	return fmt.Sprintf("scaler errors %g, ScaledObject errors %g, operator log %d, adapter log %d, Warning events %d",
		k.scalerErrors, k.objectErrors, k.operatorErrors, k.adapterErrors, k.warnings)
}

// kedaErrors reads KEDA's error counters for the namespace from the
// operator's /metrics, counts the error lines naming it in the operator's
// and adapter's logs, and its Warning events.
func (s *scenario) kedaErrors(t *testing.T, c *cluster) kedaErrs {
	t.Helper()
	var k kedaErrs
	resp, err := http.Get("http://" + c.operatorMetrics + "/metrics")
	if err != nil {
		t.Fatalf("e2e: KEDA operator metrics: %v", err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if label(line, "namespace") != s.ns {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(line, "keda_scaler_detail_errors_total{"):
			k.scalerErrors += v
		case strings.HasPrefix(line, "keda_scaled_object_errors_total{"):
			k.objectErrors += v
		}
	}
	resp.Body.Close()
	k.operatorErrors, k.operatorLines = errorLines(c.operator.logPath, s.ns, func(l string) bool { return strings.Contains(l, "\tERROR\t") })
	k.adapterErrors, k.adapterLines = errorLines(c.adapter.logPath, s.ns, func(l string) bool {
		return strings.Contains(l, "\tERROR\t") || len(l) > 5 && l[0] == 'E' && l[1] >= '0' && l[1] <= '9'
	})
	out := c.kubectl(t, "", "-n", s.ns, "get", "events", "-o", `jsonpath={range .items[?(@.type=="Warning")]}{.count}{"\n"}{end}`)
	for _, f := range strings.Fields(out) {
		n, _ := strconv.Atoi(f)
		k.warnings += max(n, 1)
	}
	return k
}

// errorLines returns the lines of a log that isErr accepts and that name
// the namespace.
func errorLines(path, ns string, isErr func(string) bool) (int, []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if l := sc.Text(); isErr(l) && strings.Contains(l, ns) {
			out = append(out, l)
		}
	}
	return len(out), out
}

// okGetMetrics returns when the replicas answered GetMetrics with OK, from
// their logs (at debug level every finished call is logged), sorted.
func okGetMetrics(t *testing.T, reps ...*replica) []time.Time {
	t.Helper()
	var out []time.Time
	for _, rp := range reps {
		f, err := os.Open(rp.p.logPath)
		if err != nil {
			t.Fatalf("e2e: %v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			l := sc.Text()
			if !strings.Contains(l, `msg="finished call"`) || !strings.Contains(l, " grpc.method=GetMetrics ") || !strings.Contains(l, " grpc.code=OK ") {
				continue
			}
			ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				out = append(out, at)
			}
		}
		f.Close()
	}
	slices.SortFunc(out, func(x, y time.Time) int { return x.Compare(y) })
	return out
}

// longestGap is the longest time in [from, to] with no answer: between
// from and the first answer, between answers, and from the last to to.
func longestGap(answers []time.Time, from, to time.Time) time.Duration {
	prev, longest := from, time.Duration(0)
	for _, at := range answers {
		if at.Before(from) {
			continue
		}
		if at.After(to) {
			break
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return max(longest, to.Sub(prev))
}

// label returns a label's value in a Prometheus text-format line.
func label(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
