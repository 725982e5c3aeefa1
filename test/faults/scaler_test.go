//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/addrfile"
	"github.com/montage/montage-scaler/test/servers"
)

// buildScaler compiles the real binary once for the whole matrix.
func buildScaler(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "montage-scaler")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/montage/montage-scaler/cmd/montage-scaler").CombinedOutput()
	if err != nil {
		t.Fatalf("build montage-scaler: %v\n%s", err, out)
	}
	return bin
}

// scaler is one `montage-scaler serve` process and a client of it, as KEDA
// would hold one.
type scaler struct {
	httpAddr string
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
	conn     *grpc.ClientConn
	ks       pb.ExternalScalerClient
	health   healthpb.HealthClient
	inspect  scalerv1.InspectorClient
}

// startScaler runs the binary with the matrix's short intervals, on ports
// it binds itself (127.0.0.1:0) and reports in its --addr-file, and waits
// until it is ready: the cells start side by side, and a port probed free
// could be taken by another cell's scaler before this one bound it. It is
// stopped (SIGTERM) in t.Cleanup if the cell did not stop it; its log is
// printed when t failed.
func startScaler(t *testing.T, bin string) *scaler {
	t.Helper()
	dir := t.TempDir()
	s := &scaler{logPath: filepath.Join(dir, "scaler.log"), done: make(chan struct{})}
	addrPath := filepath.Join(dir, "addrs.json")
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrPath,
		"--stale-after", staleAfter.String(), "--poll-interval", pollInterval.String(), "--poll-max-backoff", pollMaxBackoff.String(),
		"--redis-timeout", redisTimeout.String(), "--latency-interval", latencyInterval.String(),
		"--calendar-allow-private", "--calendar-fetch-timeout", calendarFetchTimeout.String(),
		"--log-format", "text", "--log-level", "debug")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start montage-scaler: %v", err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("scaler log (last 60 lines):\n%s", servers.Tail(s.logPath, 60))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addrs, err := addrfile.Wait(ctx, addrPath, s.done)
	if err != nil {
		t.Fatalf("montage-scaler not serving: %v\n%s", err, servers.Tail(s.logPath, 40))
	}
	s.httpAddr = addrs.HTTP
	s.conn, err = grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	s.ks, s.health, s.inspect = pb.NewExternalScalerClient(s.conn), healthpb.NewHealthClient(s.conn), scalerv1.NewInspectorClient(s.conn)
	return s
}

func (s *scaler) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and returns the exit status (-1: killed after 20 s).
func (s *scaler) stop() int {
	if !s.exited() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
			return -1
		}
	}
	return s.cmd.ProcessState.ExitCode()
}

// answer is one GetMetrics or IsActive as KEDA would have received it.
type answer struct {
	ok     bool
	value  float64 // GetMetrics' metricValueFloat
	active bool    // IsActive's result
	code   codes.Code
	msg    string
}

func (a answer) String() string {
	if a.ok {
		return strconv.FormatFloat(a.value, 'f', -1, 64)
	}
	return fmt.Sprintf("%s %q", a.code, a.msg)
}

// sample is what the sampler saw at one instant.
type sample struct {
	at              time.Time
	metrics, active answer
	exited          bool
}

// probe is one round of health checks: the fastest of up to three probes
// of the scaler and, when that was slow, of the control.
type probe struct {
	at         time.Time
	best, slow time.Duration // best of the round; slowest probe of the round
	err        error
	// control is the best of three probes of the control scaler (an idle
	// serve), taken right after a slow round: 0 when not needed.
	control time.Duration
}

// kedaDeadline is the deadline KEDA gives GetMetrics and IsActive on the
// HPA's path.
const kedaDeadline = 3 * time.Second

func (s *scaler) getMetrics(ref *pb.ScaledObjectRef) answer {
	ctx, cancel := context.WithTimeout(context.Background(), kedaDeadline)
	defer cancel()
	resp, err := s.ks.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: ref, MetricName: "montage-desired-replicas"})
	if err != nil {
		st := status.Convert(err)
		return answer{code: st.Code(), msg: st.Message()}
	}
	if len(resp.MetricValues) != 1 {
		return answer{code: codes.Internal, msg: fmt.Sprintf("%d metric values", len(resp.MetricValues))}
	}
	return answer{ok: true, value: resp.MetricValues[0].MetricValueFloat}
}

func (s *scaler) isActive(ref *pb.ScaledObjectRef) answer {
	ctx, cancel := context.WithTimeout(context.Background(), kedaDeadline)
	defer cancel()
	resp, err := s.ks.IsActive(ctx, ref)
	if err != nil {
		st := status.Convert(err)
		return answer{code: st.Code(), msg: st.Message()}
	}
	return answer{ok: true, active: resp.Result}
}

// healthRound probes gRPC health up to three times and keeps the fastest:
// the bound is on the server (a health answer must never wait on a
// source), and the best of three is what a loaded 2-core machine's
// scheduler leaves of it. When even that is slow, the control (the same
// binary, idle) is probed the same way: if it is slow too, the machine
// stalled, not the scaler. Each probe has a generous deadline, so a
// blocked server shows as slow, not as an error of the test.
func (s *scaler) healthRound(control *scaler) probe {
	p := s.bestOf3()
	if p.err == nil && p.best > healthBound && control != nil {
		p.control = control.bestOf3().best
	}
	return p
}

func (s *scaler) bestOf3() probe {
	p := probe{at: time.Now(), best: time.Hour}
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		resp, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{})
		d := time.Since(start)
		cancel()
		if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("status %s", resp.Status)
		}
		if err != nil {
			p.err = err
			continue
		}
		p.err = nil
		p.best, p.slow = min(p.best, d), max(p.slow, d)
		if d <= healthBound {
			break
		}
	}
	return p
}

// sampler asks the scaler what KEDA would ask, every sampleEvery, and
// probes its health every probeEvery, until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	probes  []probe
	stopc   chan struct{}
	wg      sync.WaitGroup
}

// startSampler samples s; control is the idle scaler a slow health round
// is compared with.
func startSampler(s, control *scaler, ref *pb.ScaledObjectRef) *sampler {
	sm := &sampler{stopc: make(chan struct{})}
	sm.wg.Add(2)
	go func() {
		defer sm.wg.Done()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			smp := sample{metrics: s.getMetrics(ref), active: s.isActive(ref), exited: s.exited()}
			smp.at = time.Now()
			sm.mu.Lock()
			sm.samples = append(sm.samples, smp)
			sm.mu.Unlock()
			select {
			case <-sm.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer sm.wg.Done()
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			p := s.healthRound(control)
			sm.mu.Lock()
			sm.probes = append(sm.probes, p)
			sm.mu.Unlock()
			select {
			case <-sm.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return sm
}

func (sm *sampler) stop() {
	close(sm.stopc)
	sm.wg.Wait()
}

// snapshot returns the samples and probes so far.
func (sm *sampler) snapshot() ([]sample, []probe) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]sample(nil), sm.samples...), append([]probe(nil), sm.probes...)
}

// waitFor waits until a sample taken after from satisfies ok and returns
// it; false after limit.
func (sm *sampler) waitFor(from time.Time, limit time.Duration, ok func(sample) bool) (sample, bool) {
	deadline := time.Now().Add(limit)
	seen := 0
	for time.Now().Before(deadline) {
		samples, _ := sm.snapshot()
		for _, smp := range samples[seen:] {
			if !smp.at.Before(from) && ok(smp) {
				return smp, true
			}
		}
		seen = len(samples)
		time.Sleep(sampleEvery / 2)
	}
	return sample{}, false
}

// componentError returns the component's error as Explain shows it ("" when
// its latest refresh worked).
func (s *scaler) componentError(ref *pb.ScaledObjectRef, component string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kedaDeadline)
	defer cancel()
	e, err := s.inspect.Explain(ctx, &scalerv1.ExplainRequest{Name: ref.Name, Namespace: ref.Namespace, ScalerMetadata: ref.ScalerMetadata})
	if err != nil {
		return "", err
	}
	for _, c := range e.Components {
		if c.Name == component {
			return c.Error, nil
		}
	}
	return "", fmt.Errorf("explain has no %s component: %v", component, e)
}

// sourceErrors reads montage_scaler_source_errors_total of a component
// from /metrics (-1 when it cannot be read).
func (s *scaler) sourceErrors(component string) int {
	resp, err := http.Get("http://" + s.httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	prefix := `montage_scaler_source_errors_total{component="` + component + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(n)
		}
	}
	return 0
}
