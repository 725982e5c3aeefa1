package servers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// SentinelBinary is where Debian's redis-sentinel lives.
const SentinelBinary = "/usr/bin/redis-sentinel"

// SentinelOptions say which master a sentinel watches.
type SentinelOptions struct {
	// Master is the master's name (Celery's master_name), MasterAddr its
	// host:port now.
	Master, MasterAddr string
	// Quorum is how many sentinels must agree the master is down.
	Quorum int
	// DownAfter is down-after-milliseconds; default 1s, so a failover
	// takes seconds, not the default 30 s.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; default 10s.
	FailoverTimeout time.Duration
}

// Sentinel is a private redis-sentinel for one test.
type Sentinel struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartSentinel starts redis-sentinel on a free 127.0.0.1 port with its
// config (which sentinel rewrites) in t.TempDir(); it is stopped in
// t.Cleanup. The test is skipped when redis-sentinel is not installed.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if _, err := os.Stat(SentinelBinary); err != nil {
		t.Skipf("servers: %s not installed (apt-get install redis-sentinel): %v", SentinelBinary, err)
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 10 * time.Second
	}
	host, port, err := net.SplitHostPort(o.MasterAddr)
	if err != nil {
		t.Fatalf("servers: sentinel master address %q: %v", o.MasterAddr, err)
	}
	// redis-sentinel cannot bind port 0 and say which it got: a port taken
	// before it bound is retried with another, as its own log tells.
	for attempt := 1; ; attempt++ {
		s, err := launchSentinel(t, o, host, port)
		if err == nil {
			return s
		}
		if attempt == 5 || !errors.Is(err, ErrPortTaken) {
			t.Fatalf("servers: redis-sentinel: %v", err)
		}
	}
}

// sentinelReady is redis-sentinel's own word that it listens and runs.
var sentinelReady = regexp.MustCompile(`Sentinel ID is`)

func launchSentinel(t testing.TB, o SentinelOptions, host, port string) (*Sentinel, error) {
	t.Helper()
	dir := t.TempDir()
	p, err := probedPort()
	if err != nil {
		return nil, err
	}
	s := &Sentinel{port: p, done: make(chan struct{})}
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
daemonize no
dir %s
loglevel notice
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, s.port, dir, o.Master, host, port, o.Quorum, o.Master, o.DownAfter.Milliseconds(), o.Master, o.FailoverTimeout.Milliseconds(), o.Master)
	confPath := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("servers: %v", err)
	}
	logPath := filepath.Join(dir, "sentinel.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	s.cmd = exec.Command(SentinelBinary, confPath)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("servers: start redis-sentinel: %v", err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	t.Cleanup(s.Stop)
	if _, err := WaitStartLine(logPath, 0, s.done, 20*time.Second, sentinelReady); err != nil {
		s.Stop()
		return nil, fmt.Errorf("on %s: %w", s.Addr(), err)
	}
	return s, nil
}

// Addr is host:port.
func (s *Sentinel) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop kills the sentinel and waits for it; safe to call more than once.
func (s *Sentinel) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}
