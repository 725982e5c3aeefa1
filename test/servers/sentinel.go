package servers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	dir := t.TempDir()
	s := &Sentinel{port: FreePort(t), done: make(chan struct{})}
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := ping(s.Addr()); err == nil {
			break
		} else if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(logPath)
			t.Fatalf("servers: redis-sentinel on %s not ready: %v\n%s", s.Addr(), err, log)
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("servers: redis-sentinel exited at start:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s
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
