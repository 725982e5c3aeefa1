// Package servers starts real servers for tests (redis-server, a Celery
// worker and producer) on free loopback ports, and stops them in t.Cleanup.
package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisBinary is where Debian's redis-server lives.
const RedisBinary = "/usr/bin/redis-server"

// Redis is a private redis-server for one test.
type Redis struct {
	port    int
	tlsPort int    // 0: no TLS listener
	socket  string // "": no unix socket
	dir     string
	args    []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisOptions tune StartRedisWith.
type RedisOptions struct {
	// Password sets requirepass.
	Password string
	// Args are extra redis-server arguments, such as "--maxmemory", "10mb",
	// or an ACL user: "--user", "alice", "on", ">pw", "~*", "+@all".
	Args []string
	// TLS, if set, also serves TLS on a second port (TLSAddr); the plain
	// port stays open for the test's own clients.
	TLS *RedisTLS
	// Socket also listens on a unix socket (SocketPath).
	Socket bool
	// Persist keeps the data through Stop and Restart: an append-only file
	// written through at every command, as a broker with persistence does.
	Persist bool
}

// RedisTLS is the TLS listener's PEM files.
type RedisTLS struct {
	CertFile, KeyFile string
	// CAFile verifies client certificates.
	CAFile string
	// AuthClients is tls-auth-clients: "yes" (a client certificate is
	// required), "optional" or "no" (the default).
	AuthClients string
}

// StartRedis starts a private redis-server on a free 127.0.0.1 port with no
// persistence, its dir in t.TempDir(); it is stopped in t.Cleanup. The test
// is skipped when redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t, RedisOptions{})
}

// StartRedisWith is StartRedis with options.
func StartRedisWith(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	if _, err := os.Stat(RedisBinary); err != nil {
		t.Skipf("servers: %s not installed (apt-get install redis-server): %v", RedisBinary, err)
	}
	r := &Redis{dir: t.TempDir()}
	var extra []string
	if o.Password != "" {
		extra = append(extra, "--requirepass", o.Password)
	}
	if o.Socket {
		// A unix socket path is limited to 107 bytes: t.TempDir() may be
		// longer than that.
		dir, err := os.MkdirTemp("", "redis-sock-")
		if err != nil {
			t.Fatalf("servers: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		r.socket = filepath.Join(dir, "redis.sock")
		extra = append(extra, "--unixsocket", r.socket, "--unixsocketperm", "700")
	}
	if o.Persist {
		extra = append(extra, "--appendonly", "yes", "--appendfsync", "always")
	}
	t.Cleanup(r.Stop)
	if err := r.launch(extra, o); err != nil {
		t.Fatalf("servers: redis-server: %v", err)
	}
	return r
}

// RunRedis starts a private redis-server in dir with no persistence, on a
// free 127.0.0.1 port, for a harness that is not a test (test/bench); the
// caller stops it.
func RunRedis(dir string) (*Redis, error) { return RunRedisWith(dir, RedisOptions{}) }

// RunRedisWith is RunRedis with options (Args only).
func RunRedisWith(dir string, o RedisOptions) (*Redis, error) {
	r := &Redis{dir: dir}
	if err := r.launch(nil, RedisOptions{Args: o.Args}); err != nil {
		return nil, err
	}
	return r, nil
}

// launch starts the server on ports found free. redis-server cannot bind
// port 0 and say which it got: a port taken before it bound is retried
// with others, as its own log tells (see start).
func (r *Redis) launch(extra []string, o RedisOptions) error {
	for attempt := 1; ; attempt++ {
		var err error
		if r.port, err = probedPort(); err != nil {
			return err
		}
		r.args = []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", r.dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "notice"}
		if o.TLS != nil {
			if r.tlsPort, err = probedPort(); err != nil {
				return err
			}
			auth := o.TLS.AuthClients
			if auth == "" {
				auth = "no"
			}
			r.args = append(r.args, "--tls-port", strconv.Itoa(r.tlsPort), "--tls-cert-file", o.TLS.CertFile,
				"--tls-key-file", o.TLS.KeyFile, "--tls-ca-cert-file", o.TLS.CAFile, "--tls-auth-clients", auth)
		}
		r.args = append(append(r.args, extra...), o.Args...)
		err = r.start()
		if err == nil || attempt == 5 || !errors.Is(err, ErrPortTaken) {
			return err
		}
	}
}

// Addr is host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Port is the TCP port.
func (r *Redis) Port() int { return r.port }

// URL is redis://127.0.0.1:port/db.
func (r *Redis) URL(db int) string { return fmt.Sprintf("redis://%s/%d", r.Addr(), db) }

// TLSAddr is host:port of the TLS listener (RedisOptions.TLS).
func (r *Redis) TLSAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.tlsPort)) }

// SocketPath is the unix socket (RedisOptions.Socket).
func (r *Redis) SocketPath() string { return r.socket }

// redisReady is redis-server's own word that it listens on its TCP port
// (after loading its data, when it persists).
var redisReady = regexp.MustCompile(`(?m)Ready to accept connections`)

// start runs redis-server with r.args and waits until its log says it
// accepts connections; ErrPortTaken when its log says a port was taken.
func (r *Redis) start() error {
	cmd := exec.Command(RedisBinary, r.args...)
	cmd.Dir = r.dir
	logf, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())))
	if err != nil {
		return fmt.Errorf("redis log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	if _, err := WaitStartLine(logf.Name(), 0, done, 20*time.Second, redisReady); err != nil {
		r.Stop()
		return fmt.Errorf("redis-server on %s: %w", r.Addr(), err)
	}
	return nil
}

// Stop kills the server (as a crash would: no save) and waits for it. It is
// safe to call more than once.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Pause freezes the server (SIGSTOP): it keeps its port and accepts
// connections, and answers nothing, as a hung server does, until Resume.
func (r *Redis) Pause(t testing.TB) { r.signal(t, syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (r *Redis) Resume(t testing.TB) { r.signal(t, syscall.SIGCONT) }

func (r *Redis) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		t.Fatalf("servers: redis-server on %s is not running", r.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("servers: %s redis-server: %v", sig, err)
	}
}

// Restart stops the server if it runs and starts a new one on the same port
// with the same options (its data is gone, unless RedisOptions.Persist).
// The test fails if another process took the port meanwhile.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	if err := r.StopAndStart(); err != nil {
		t.Fatalf("servers: restart: %v", err)
	}
}

// StopAndStart is Restart for a harness that is not a test: an error (one
// wrapping ErrPortTaken if another process took the port) instead of a
// failed test.
func (r *Redis) StopAndStart() error {
	r.Stop()
	return r.start()
}

// probedPort asks the kernel for a loopback port free at this moment, for
// a server that cannot bind port 0 and say which it got (redis-server,
// redis-sentinel). Another process may take it before the server binds it:
// the server's own log tells, and the caller retries (waitStartLine).
func probedPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(25 * time.Millisecond):
		}
	}
	return true
}
