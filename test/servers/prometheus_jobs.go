package servers

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ScrapeJob is one scrape job of StartPrometheusJobs.
type ScrapeJob struct {
	Name     string
	Targets  []string // host:port, path /metrics
	Interval time.Duration
	// HonorLabels keeps the labels a target exposes (namespace, pod…) where
	// Prometheus would rename them exported_*, as a ServiceMonitor with
	// honorLabels: true does.
	HonorLabels bool
}

// StartPrometheusJobs starts Prometheus on 127.0.0.1:0 scraping jobs and
// evaluating the rule files (each group at its own interval; groups without
// one every evalInterval), its storage in t.TempDir(); it is stopped in
// t.Cleanup. The test is skipped when prometheus is not installed.
func StartPrometheusJobs(t testing.TB, jobs []ScrapeJob, evalInterval time.Duration, ruleFiles ...string) *Prometheus {
	t.Helper()
	if _, err := os.Stat(PrometheusBinary); err != nil {
		t.Skipf("servers: %s not installed (apt-get install prometheus): %v", PrometheusBinary, err)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  evaluation_interval: %s\n", evalInterval)
	if len(ruleFiles) > 0 {
		quoted := make([]string, len(ruleFiles))
		for i, f := range ruleFiles {
			quoted[i] = strconv.Quote(f)
		}
		fmt.Fprintf(&cfg, "rule_files: [%s]\n", strings.Join(quoted, ", "))
	}
	cfg.WriteString("scrape_configs:\n")
	for _, j := range jobs {
		quoted := make([]string, len(j.Targets))
		for i, tg := range j.Targets {
			quoted[i] = strconv.Quote(tg)
		}
		fmt.Fprintf(&cfg, "  - job_name: %q\n    scrape_interval: %s\n    scrape_timeout: %s\n    honor_labels: %t\n    static_configs:\n      - targets: [%s]\n",
			j.Name, j.Interval, j.Interval, j.HonorLabels, strings.Join(quoted, ", "))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatalf("servers: writing prometheus config: %v", err)
	}
	return launchPrometheus(t, dir, cfgPath, filepath.Join(dir, "data"))
}
