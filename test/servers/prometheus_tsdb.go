package servers

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartPrometheusOn starts Prometheus on a free 127.0.0.1 port over an
// existing TSDB directory (blocks backfilled with promtool) with the given
// rule files and nothing to scrape; it is stopped in t.Cleanup. Stop it and
// start it again on the same directory to load blocks written since. The
// test is skipped when prometheus is not installed.
//
// Retention is long: backfilled blocks may be months old, and Prometheus
// drops blocks older than the retention counted from the newest.
func StartPrometheusOn(t testing.TB, dataDir string, ruleFiles ...string) *Prometheus {
	t.Helper()
	if _, err := os.Stat(PrometheusBinary); err != nil {
		t.Skipf("servers: %s not installed (apt-get install prometheus): %v", PrometheusBinary, err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(ruleFiles))
	for i, f := range ruleFiles {
		quoted[i] = strconv.Quote(f)
	}
	cfg := fmt.Sprintf("global:\n  evaluation_interval: 1m\nrule_files: [%s]\n", strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("servers: writing prometheus config: %v", err)
	}
	return launchPrometheus(t, dir, cfgPath, dataDir, "--storage.tsdb.retention.time=10y")
}

// launchPrometheus runs prometheus with cfgPath on dataDir, its log in dir,
// on a port it binds itself (127.0.0.1:0) and names in its log, until it is
// ready.
func launchPrometheus(t testing.TB, dir, cfgPath, dataDir string, extra ...string) *Prometheus {
	t.Helper()
	p := &Prometheus{logDir: dir}
	p.args = append([]string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + dataDir,
		"--web.listen-address=127.0.0.1:0",
		"--log.level=info"}, extra...)
	t.Cleanup(p.Stop)
	if err := p.run(t, time.Minute); err != nil {
		t.Fatalf("servers: prometheus: %v", err)
	}
	return p
}

// promListening is Prometheus' own log line naming the address it bound.
var promListening = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// run starts the process with p.args, learns its address from its log
// (the same port again on a restart, now named in p.args) and waits until
// it is ready.
func (p *Prometheus) run(t testing.TB, limit time.Duration) error {
	t.Helper()
	logPath := p.start(t)
	_, done := p.proc()
	addr, err := WaitStartLine(logPath, 0, done, limit, promListening)
	if err != nil {
		p.Kill()
		return err
	}
	p.URL = "http://" + addr
	for i, a := range p.args {
		if strings.HasPrefix(a, "--web.listen-address=") {
			p.args[i] = "--web.listen-address=" + addr // a restart keeps the URL the test handed out
		}
	}
	// The port is this process's while it runs: a probe of it cannot be
	// answered by another.
	if err := p.waitReady(limit); err != nil {
		p.Kill()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; log: %s", err, log)
	}
	return nil
}

// start runs the process with p.args and returns its log's path.
func (p *Prometheus) start(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(PrometheusBinary, p.args...)
	cmd.Stdout = io.Discard
	logf, err := os.Create(filepath.Join(p.logDir, fmt.Sprintf("prometheus-%d.log", time.Now().UnixNano())))
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("servers: starting prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return logf.Name()
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (p *Prometheus) Kill() {
	cmd, done := p.proc()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills the server if it runs and starts it again on the same port
// and storage (the samples its write-ahead log kept are back), waiting until
// it is ready. The test fails if another process took the port meanwhile.
func (p *Prometheus) Restart(t testing.TB) {
	t.Helper()
	p.Kill()
	if err := p.run(t, time.Minute); err != nil {
		t.Fatalf("servers: prometheus restart: %v", err)
	}
}

// Pause stops the process with SIGSTOP: its port still accepts connections
// and nothing answers, as a hung server does.
func (p *Prometheus) Pause() { p.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (p *Prometheus) Resume() { p.signal(syscall.SIGCONT) }

func (p *Prometheus) signal(s syscall.Signal) {
	if cmd, _ := p.proc(); cmd != nil {
		_ = cmd.Process.Signal(s)
	}
}

func (p *Prometheus) proc() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}
