// Package servers starts real servers for tests (redis-server, a Celery
// worker and producer) on free loopback ports, and stops them in t.Cleanup.
package servers

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	// A free port may be taken between the probe and the bind (tests start
	// servers side by side): try again with others.
	for attempt := 1; ; attempt++ {
		r.port = FreePort(t)
		r.args = []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", r.dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"}
		if o.TLS != nil {
			r.tlsPort = FreePort(t)
			auth := o.TLS.AuthClients
			if auth == "" {
				auth = "no"
			}
			r.args = append(r.args, "--tls-port", strconv.Itoa(r.tlsPort), "--tls-cert-file", o.TLS.CertFile,
				"--tls-key-file", o.TLS.KeyFile, "--tls-ca-cert-file", o.TLS.CAFile, "--tls-auth-clients", auth)
		}
		r.args = append(append(r.args, extra...), o.Args...)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("servers: %v", err)
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

// start runs redis-server with r.args and waits until it answers.
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Exited first: a server that lost its port to another must not
		// be taken for that other one answering.
		select {
		case <-done:
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("redis-server exited at start:\n%s", log)
		default:
		}
		if err := ping(r.Addr()); err == nil || strings.Contains(err.Error(), "NOAUTH") {
			return nil
		} else if time.Now().After(deadline) {
			r.Stop()
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("redis-server on %s not ready: %v\n%s", r.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		t.Fatalf("servers: %v", err)
	}
}

// ping checks that a Redis answers PING (NOAUTH counts as up).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("ping: %q", strings.TrimSpace(line))
	}
	return nil
}

// FreePort asks the kernel for a free loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servers: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
