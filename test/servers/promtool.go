package servers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// PromtoolBinary is where Debian's prometheus package puts promtool.
const PromtoolBinary = "/usr/bin/promtool"

// Promtool returns promtool's path. Without it the test is skipped, and the
// skip is printed on stderr even without -v: a rule change must not pass
// unnoticed because a machine lacks the package (.ci/run installs it).
func Promtool(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(PromtoolBinary); err != nil {
		msg := fmt.Sprintf("SKIPPED %s: %s not installed (apt-get install prometheus): the Prometheus rules are NOT tested: %v",
			t.Name(), PromtoolBinary, err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	return PromtoolBinary
}

// RunPromtool runs promtool with args in dir and returns its combined
// output; the test fails with that output when promtool fails.
func RunPromtool(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), Promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("servers: promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ReadPrometheusRule reads the groups of a PrometheusRule manifest (the
// Prometheus Operator's object, as deploy/ ships it).
func ReadPrometheusRule(t testing.TB, path string) []monitoringv1.RuleGroup {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(b, &pr); err != nil {
		t.Fatalf("servers: %s: %v", path, err)
	}
	if pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("servers: %s: kind %q with %d groups, want a PrometheusRule with groups", path, pr.Kind, len(pr.Spec.Groups))
	}
	return pr.Spec.Groups
}

// WriteRuleFile writes groups as a plain Prometheus rule file (what the
// Prometheus Operator hands Prometheus) to dir/rules.yaml and returns its
// path, so that the PrometheusRule stays the one source of the rules.
func WriteRuleFile(t testing.TB, dir string, groups []monitoringv1.RuleGroup) string {
	t.Helper()
	b, err := yaml.Marshal(struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}{groups})
	if err != nil {
		t.Fatalf("servers: rule file: %v", err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("servers: %v", err)
	}
	return path
}

// CreateBlocksFromOpenMetrics backfills an OpenMetrics text file into TSDB
// blocks under dataDir (promtool tsdb create-blocks-from openmetrics).
func CreateBlocksFromOpenMetrics(t testing.TB, file, dataDir string) {
	t.Helper()
	RunPromtool(t, filepath.Dir(file), "tsdb", "create-blocks-from", "openmetrics", "--quiet", file, dataDir)
}

// CreateBlocksFromRules evaluates the recording rules of ruleFile against
// the Prometheus at url from start to end, every interval (a group's own
// interval wins), and writes the
// results as TSDB blocks under outDir (promtool tsdb create-blocks-from
// rules). A rule that reads another recording rule sees only what the
// server already has: backfill in layers, restarting the server between.
func CreateBlocksFromRules(t testing.TB, url, ruleFile, outDir string, start, end time.Time, interval time.Duration) {
	t.Helper()
	RunPromtool(t, filepath.Dir(ruleFile), "tsdb", "create-blocks-from", "rules", "--quiet",
		"--url="+url, "--output-dir="+outDir,
		fmt.Sprintf("--start=%d", start.Unix()), fmt.Sprintf("--end=%d", end.Unix()),
		"--eval-interval="+interval.String(), ruleFile)
}
