package servers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// PrometheusBinary is where Debian's prometheus lives.
const PrometheusBinary = "/usr/bin/prometheus"

// Prometheus is a private Prometheus server for one test.
type Prometheus struct {
	// URL is the server's base URL, such as http://127.0.0.1:41234.
	URL string

	logDir string
	args   []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrometheus starts Prometheus on a free 127.0.0.1 port with a
// generated config scraping targets (host:port, path /metrics) every
// interval, its storage in t.TempDir(); it is stopped in t.Cleanup. The test
// is skipped when prometheus is not installed.
func StartPrometheus(t testing.TB, targets []string, interval time.Duration) *Prometheus {
	t.Helper()
	if _, err := os.Stat(PrometheusBinary); err != nil {
		t.Skipf("servers: %s not installed (apt-get install prometheus): %v", PrometheusBinary, err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: histproc
    scrape_interval: %s
    scrape_timeout: %s
    static_configs:
      - targets: [%s]
`, interval, interval, interval, interval, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("servers: writing prometheus config: %v", err)
	}
	return launchPrometheus(t, dir, cfgPath, filepath.Join(dir, "data"))
}

func (p *Prometheus) waitReady(limit time.Duration) error {
	_, done := p.proc()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("prometheus exited")
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s", limit)
}

// Stop ends the server (SIGTERM, then SIGKILL) and waits for it; safe to call
// more than once, so a test can stop Prometheus mid-way.
func (p *Prometheus) Stop() {
	cmd, done := p.proc()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot handle SIGTERM
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Query evaluates q now with Prometheus' own engine and returns the raw
// result JSON's "data" value, for comparisons.
func (p *Prometheus) Query(t testing.TB, q string) (resultType string, result json.RawMessage) {
	t.Helper()
	resp, err := http.PostForm(p.URL+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		t.Fatalf("servers: prometheus query %q: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("servers: prometheus query %q: %v", q, err)
	}
	if body.Status != "success" {
		t.Fatalf("servers: prometheus query %q: %s", q, body.Error)
	}
	return body.Data.ResultType, body.Data.Result
}

// WaitFor polls q until one of its series' latest value satisfies ok or the
// deadline passes (then the test fails).
func (p *Prometheus) WaitFor(t testing.TB, q string, limit time.Duration, ok func(v float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		typ, raw := p.Query(t, q)
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if typ == "vector" && json.Unmarshal(raw, &vec) == nil {
			for _, s := range vec {
				if str, isStr := s.Value[1].(string); isStr {
					if v, err := strconv.ParseFloat(str, 64); err == nil && ok(v) {
						return v
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers: prometheus query %q: condition not met within %s (last %s)", q, limit, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// HistProc is a running test/histproc: one HTTP process exposing one
// histogram the test drives.
type HistProc struct {
	// Addr is host:port; MetricsURL is its /metrics.
	Addr       string
	MetricsURL string

	cmd  *exec.Cmd
	done chan struct{}
}

// BuildHistProc compiles test/histproc into dir and returns the binary's
// path; build once per test and start it many times.
func BuildHistProc(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "histproc")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/montage/montage-scaler/test/histproc").CombinedOutput()
	if err != nil {
		t.Fatalf("servers: building histproc: %v\n%s", err, out)
	}
	return bin
}

// StartHistProc starts the histproc binary on a free 127.0.0.1 port
// exposing family with the given bucket bounds; stopped in t.Cleanup.
func StartHistProc(t testing.TB, bin, family string, buckets []float64) *HistProc {
	t.Helper()
	bs := make([]string, len(buckets))
	for i, b := range buckets {
		bs[i] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-name", family, "-buckets", strings.Join(bs, ","))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("servers: starting histproc: %v", err)
	}
	h := &HistProc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(h.Stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, found := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !found {
		t.Fatalf("servers: histproc did not report its address: %q %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout); _ = cmd.Wait(); close(h.done) }()
	h.Addr, h.MetricsURL = addr, "http://"+addr+"/metrics"
	return h
}

// Observe records n observations of v seconds.
func (h *HistProc) Observe(t testing.TB, v float64, n int) {
	t.Helper()
	h.post(t, "/observe", url.Values{"v": {strconv.FormatFloat(v, 'g', -1, 64)}, "n": {strconv.Itoa(n)}})
}

// Reset starts the histogram again from zero, as a restarted pod does.
func (h *HistProc) Reset(t testing.TB) {
	t.Helper()
	h.post(t, "/reset", nil)
}

func (h *HistProc) post(t testing.TB, path string, form url.Values) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+h.Addr+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("servers: histproc %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("servers: histproc %s: HTTP %d", path, resp.StatusCode)
	}
}

// Stop kills the process (a pod that disappears) and waits for it; safe to
// call more than once.
func (h *HistProc) Stop() {
	if h.cmd.Process == nil {
		return
	}
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
	}
}
