//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// proc is one component running as a process in its own process group, its
// output in a log file under the test's temp dir.
type proc struct {
	name    string
	logPath string
	// logOffset is where this start's output begins in logPath (every
	// start of the same name appends to it).
	logOffset int64
	cmd       *exec.Cmd
	done      chan struct{}
	stopped   sync.Once
}

// logBook lists the log files to print when a test fails.
type logBook struct {
	mu    sync.Mutex
	paths []string
}

func (b *logBook) add(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paths = append(b.paths, path)
}

// printOnFailure registers a cleanup that prints the tail of every log in b
// when t failed. Register it after t.TempDir (cleanups run last-in first-out)
// so the files still exist.
func (b *logBook) printOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b.mu.Lock()
		paths := append([]string(nil), b.paths...)
		b.mu.Unlock()
		for _, p := range paths {
			t.Logf("===== %s (last %d lines) =====\n%s", p, tailLines, servers.Tail(p, tailLines))
		}
	})
}

const tailLines = 150

// startProc starts argv with env added to the test's environment, logging to
// logDir/name.log; it is stopped (SIGTERM to its group, SIGKILL after 10 s)
// in t.Cleanup, also when the test fails.
func startProc(t testing.TB, book *logBook, logDir, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("e2e: %s: %v", name, err)
	}
	book.add(p.logPath)
	fmt.Fprintf(logf, "### %s %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(argv, " "))
	if st, err := logf.Stat(); err == nil {
		p.logOffset = st.Size()
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its components with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("e2e: start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// output is what the process logged since it started.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b[min(p.logOffset, int64(len(b))):])
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	p.stopped.Do(func() {
		if p.exited() {
			return
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// kill ends the process group at once, as a crash would.
func (p *proc) kill() {
	p.stopped.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

// waitLine waits until the process's own output since it started matches
// line; servers.ErrPortTaken when it says a port was taken instead. Its
// output is the only witness that it bound its ports: a probe of a port
// could be answered by whichever process took it.
func (p *proc) waitLine(limit time.Duration, line *regexp.Regexp) error {
	_, err := servers.WaitStartLine(p.logPath, p.logOffset, p.done, limit, line)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// probedPort returns a TCP port free on addr a moment ago, for a component
// that cannot bind port 0 and say which it got (etcd, kube-apiserver, KEDA's
// operator, two scalers on one port). Another process may take it first:
// start such a component with startListening, which retries.
func probedPort(t testing.TB, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("e2e: free port on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startListening starts a component on ports probed free on hosts (one per
// host given), argv building its command from them, and waits until ready
// says it listens (from its own output, with waitLine); when ready says a
// port was taken (servers.ErrPortTaken) it is started again on new ports,
// up to five times. It returns the process and the ports it bound.
func startListening(t testing.TB, book *logBook, logDir, name string, env []string, hosts []string,
	argv func(ports []int) []string, ready func(p *proc, ports []int) error) (*proc, []int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, len(hosts))
		for i, h := range hosts {
			ports[i] = probedPort(t, h)
		}
		p := startProc(t, book, logDir, name, env, argv(ports)...)
		err := ready(p, ports)
		if err == nil {
			return p, ports
		}
		p.stop()
		if attempt == 5 || !errors.Is(err, servers.ErrPortTaken) {
			t.Fatalf("e2e: %v", err)
		}
		t.Logf("e2e: %s lost a port to another process; starting it on others", name)
	}
}

// lines is a ready func for startListening: the component's output matches
// each of want, in turn.
func lines(want ...string) func(p *proc, _ []int) error {
	return func(p *proc, _ []int) error {
		for _, w := range want {
			if err := p.waitLine(2*time.Minute, regexp.MustCompile(w)); err != nil {
				return err
			}
		}
		return nil
	}
}

// forward relays TCP connections from listen to target until t ends. It
// lets the metrics adapter, in its network namespace, reach the apiserver,
// which listens on loopback only.
// It returns the address it listens on (listen may name port 0).
func forward(t testing.TB, listen, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("e2e: forward %s: %v", listen, err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				out, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					in.Close()
					return
				}
				track(in, true)
				track(out, true)
				defer func() { track(in, false); track(out, false); in.Close(); out.Close() }()
				go func() { _, _ = io.Copy(out, in); _ = out.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return ln.Addr().String()
}

// run runs a short command and returns its combined output.
func run(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// netns is a network namespace the test made, joined to the host by a veth
// pair on a private /30: hostIP on the host's end, nsIP inside.
type netns struct {
	name, hostIP, nsIP string
	hostIf             string // the host's end of the veth pair
	octet              int    // 10.213.octet.0/24 is this run's
}

// newNetns creates the namespace and the veth pair; both are removed in
// t.Cleanup, also when the test fails.
func newNetns(t testing.TB) *netns {
	t.Helper()
	pid := os.Getpid()
	octet := 16 + pid%200
	hostIf, nsIf := fmt.Sprintf("me2e%dh", pid), fmt.Sprintf("me2e%dn", pid)
	n := &netns{
		name:   fmt.Sprintf("montage-e2e-%d", pid),
		hostIP: fmt.Sprintf("10.213.%d.1", octet),
		nsIP:   fmt.Sprintf("10.213.%d.2", octet),
		hostIf: hostIf,
		octet:  octet,
	}
	ctx := context.Background()
	removeStaleNetns(ctx)
	t.Cleanup(func() {
		_, _ = run(ctx, "ip", "netns", "del", n.name)
		_, _ = run(ctx, "ip", "link", "del", hostIf)
	})
	steps := [][]string{
		{"ip", "netns", "add", n.name},
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"ip", "link", "set", nsIf, "netns", n.name},
		{"ip", "addr", "add", n.hostIP + "/30", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP + "/30", "dev", nsIf},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", nsIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			t.Fatalf("e2e: network namespace: %v", err)
		}
	}
	return n
}

// hostAddr adds 10.213.octet.last/32 to the host's end of the veth pair and
// a route to it inside the namespace: an address that processes on the host
// can listen on and that both the host and the namespace reach. It goes
// with the veth pair in newNetns's cleanup.
func (n *netns) hostAddr(t testing.TB, last int) string {
	t.Helper()
	ip := fmt.Sprintf("10.213.%d.%d", n.octet, last)
	ctx := context.Background()
	for _, s := range [][]string{
		{"ip", "addr", "add", ip + "/32", "dev", n.hostIf},
		{"ip", "netns", "exec", n.name, "ip", "route", "add", ip + "/32", "via", n.hostIP},
	} {
		if _, err := run(ctx, s...); err != nil {
			t.Fatalf("e2e: address %s: %v", ip, err)
		}
	}
	return ip
}

// removeStaleNetns deletes the namespaces and veth ends that an earlier run
// of this suite left behind when it was killed (its pid is gone), so their
// addresses cannot clash with this run's.
func removeStaleNetns(ctx context.Context) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pid, ok := strings.CutPrefix(f[0], "montage-e2e-")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		_, _ = run(ctx, "ip", "netns", "del", f[0])
		_, _ = run(ctx, "ip", "link", "del", "me2e"+pid+"h")
	}
}

// waitUntil polls cond every interval until it reports true or limit passes;
// then the test fails with what and cond's last error.
func waitUntil(t testing.TB, limit, interval time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("e2e: %s: not within %s (last error: %v)", what, limit, last)
		}
		time.Sleep(interval)
	}
}
