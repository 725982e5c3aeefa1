package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/montage/montage-scaler/scaler/addrfile"
	"github.com/montage/montage-scaler/test/servers"
)

// serveProcess is `montage-scaler serve` as a process of its own (the test
// binary running main, see TestMain), so that a test can signal it.
type serveProcess struct {
	cmd    *exec.Cmd
	logs   *servers.LogBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
	ks     pb.ExternalScalerClient
}

// withLauncher, as startServeProcess's first argument, runs the command
// through a launcher such as nohup.
func withLauncher(path string) string { return "launcher=" + path }

func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addrs.json")
	argv := []string{os.Args[0], "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrFile, "--log-format", "text"}
	if len(args) > 0 && strings.HasPrefix(args[0], "launcher=") {
		argv = append([]string{strings.TrimPrefix(args[0], "launcher=")}, argv...)
		args = args[1:]
	}
	argv = append(argv, args...)
	p := &serveProcess{cmd: exec.Command(argv[0], argv[1:]...), logs: &servers.LogBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", p.logs)
		}
	})
	addrs, err := addrfile.Wait(ctxWithin(t, 30*time.Second), addrFile, p.exited)
	if err != nil {
		t.Fatalf("serve did not start: %v\n%s", err, p.logs)
	}
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.ks = pb.NewExternalScalerClient(conn)
	return p
}

// signalAndWait sends sig and waits for the process to exit, failing the
// test if it has not after limit (a bound on a hang, not a measurement).
func (p *serveProcess) signalAndWait(t *testing.T, sig syscall.Signal, limit time.Duration) (code int) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("serve still runs %s after %s", limit, sig)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode()
	default:
		t.Fatalf("serve ended by %v, not by exiting", p.err)
		return -1
	}
}

func TestSIGHUPShutsServeDownAsSIGTERMDoesUnlessStartedUnderNohup(t *testing.T) {
	rs := servers.StartRedis(t)
	openStream := func(t *testing.T, p *serveProcess) pb.ExternalScaler_StreamIsActiveClient {
		t.Helper()
		stream, err := p.ks.StreamIsActive(ctxWithin(t, time.Minute), ref(rs.URL(0)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("the stream's first message: %v", err)
		}
		return stream
	}

	t.Run("a terminal hangup shuts serve down gracefully", func(t *testing.T) {
		p := startServeProcess(t)
		stream := openStream(t, p)
		// Exit status 0, the push stream ended cleanly (io.EOF: KEDA resets
		// its backoff), and log lines that say why and that it finished.
		if code := p.signalAndWait(t, syscall.SIGHUP, 30*time.Second); code != 0 {
			t.Errorf("exit status %d after SIGHUP, want 0", code)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("after SIGHUP the stream ended with %v, want a clean end (io.EOF)", err)
		}
		logs := p.logs.String()
		if !strings.Contains(logs, `msg="shutting down" reason="hangup signal received"`) || !strings.Contains(logs, `msg="shut down"`) {
			t.Errorf("no shutdown lines naming the hangup in the log:\n%s", logs)
		}
	})

	t.Run("under nohup a hangup is ignored and SIGTERM still shuts down", func(t *testing.T) {
		nohup, err := exec.LookPath("nohup")
		if err != nil {
			t.Skipf("no nohup: %v", err)
		}
		p := startServeProcess(t, withLauncher(nohup))
		stream := openStream(t, p)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Had the hangup been taken, it would be the reason given: a
		// pending SIGHUP is delivered before a later SIGTERM.
		if code := p.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("the stream ended with %v, want a clean end (io.EOF)", err)
		}
		if logs := p.logs.String(); !strings.Contains(logs, `msg="shutting down" reason="terminated signal received"`) {
			t.Errorf("the shutdown is not SIGTERM's:\n%s", logs)
		}
	})
}

// manyBrokers registers n ScaledObjects on n distinct brokers (one poller
// each) of one redis-server: the default user takes any password, so each
// password is a broker of its own to the scaler.
func manyBrokers(t *testing.T, p *serveProcess, rs *servers.Redis, n int) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			r := ref(fmt.Sprintf("redis://default:pw%d@%s/%d", i, rs.Addr(), i%16))
			r.Name = fmt.Sprintf("montage-%d", i)
			_, err := p.ks.GetMetrics(ctxWithin(t, time.Minute), &pb.GetMetricsRequest{ScaledObjectRef: r, MetricName: "montage-desired-replicas"})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("registering %d brokers: %v", n, err)
	}
}

func TestShutdownIsBoundedWithManyPollersAndABrokerThatIsGone(t *testing.T) {
	const pollers = 600
	const grace = 2 * time.Second
	tests := []struct {
		name  string
		fault func(t *testing.T, rs *servers.Redis)
	}{
		{"the broker is killed before the shutdown", func(t *testing.T, rs *servers.Redis) { rs.Stop() }},
		{"the broker hangs before the shutdown", func(t *testing.T, rs *servers.Redis) {
			rs.Pause(t)
			t.Cleanup(func() { rs.Resume(t) })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := servers.StartRedis(t)
			// Many pollers are the point here: the broker limits are lifted.
			p := startServeProcess(t, "--shutdown-grace", grace.String(), "--redis-timeout", "1s", "--log-level", "warn",
				"--max-brokers", "0", "--max-brokers-per-namespace", "0")
			manyBrokers(t, p, rs, pollers)
			var streams sync.WaitGroup
			for i := range 3 {
				r := ref(rs.URL(i))
				stream, err := p.ks.StreamIsActive(ctxWithin(t, 2*time.Minute), r)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Recv(); err != nil {
					t.Fatalf("the stream's first message: %v", err)
				}
				streams.Add(1)
				go func() {
					defer streams.Done()
					for {
						if _, err := stream.Recv(); err != nil {
							return
						}
					}
				}()
			}
			tc.fault(t, rs)

			// The whole exit is bounded by the grace and the documented
			// margin; the limit here only keeps a hang from passing.
			limit := 3 * (grace + shutdownMargin)
			if code := p.signalAndWait(t, syscall.SIGTERM, limit); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
			done := make(chan struct{})
			go func() { streams.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("push streams still open after the process exited")
			}
			if logs := p.logs.String(); strings.Contains(logs, "panic") {
				t.Errorf("serve's log has a panic:\n%s", logs)
			}
		})
	}
}
