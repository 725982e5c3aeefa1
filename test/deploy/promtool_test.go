package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	"github.com/montage/montage-scaler/test/servers"
)

// promtoolTests are the `promtool test rules` files, hand-computed cases for
// every rule of the PrometheusRule; each names rules.yaml, which the test
// writes next to them from the built PrometheusRule.
const promtoolTests = "testdata/promtool"

func TestPrometheusRulesPassPromtoolUnitTests(t *testing.T) {
	servers.Promtool(t)
	o, _ := buildOverlay(t, "overlays/personal")
	rule := get[monitoringv1.PrometheusRule](t, o, "PrometheusRule", "montage", "montage-scaler")
	dir := t.TempDir()
	servers.WriteRuleFile(t, dir, rule.Spec.Groups)
	files, err := filepath.Glob(filepath.Join(promtoolTests, "*.test.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in %s: %v", promtoolTests, err)
	}
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(f))
	}
	servers.RunPromtool(t, dir, "check", "rules", "rules.yaml")
	out := servers.RunPromtool(t, dir, append([]string{"test", "rules"}, names...)...)
	t.Logf("promtool test rules:\n%s", out)
}

var (
	exprTestRE  = regexp.MustCompile(`(?m)^\s*- expr: (\S+?)(?:\{|\s*$)`)
	alertTestRE = regexp.MustCompile(`(?m)^\s*- alertname: (\S+)\s*$`)
)

// Every recording rule and every alert has at least one promtool case.
func TestEveryPrometheusRuleHasAPromtoolCase(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	rule := get[monitoringv1.PrometheusRule](t, o, "PrometheusRule", "montage", "montage-scaler")
	files, _ := filepath.Glob(filepath.Join(promtoolTests, "*.test.yaml"))
	tested := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exprTestRE.FindAllStringSubmatch(string(b), -1) {
			tested[m[1]] = true
		}
		for _, m := range alertTestRE.FindAllStringSubmatch(string(b), -1) {
			tested[m[1]] = true
		}
	}
	var missing []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if name := r.Record + r.Alert; !tested[name] {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("no promtool case in %s for: %s", promtoolTests, strings.Join(missing, ", "))
	}
}

// The KPI records each keep exactly the labels namespace and deployment, so
// that dashboards and alerts join them on those two.
func TestKPIRecordsArePerDeployment(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	rule := get[monitoringv1.PrometheusRule](t, o, "PrometheusRule", "montage", "montage-scaler")
	want := []string{
		"montage:deployment_scale_ups:increase1h", "montage:deployment_scale_downs:increase1h",
		"montage:pod_startup_seconds:p50_24h", "montage:pod_startup_seconds:p95_24h",
		"montage:pod_request_share:max_over_mean_5m", "montage:pod_hours:24h",
		"montage:videos_processed:increase24h", "montage:cost_per_video:pod_hours_24h",
	}
	outer := regexp.MustCompile(`^\s*(?:max|sum|quantile) by \(namespace, deployment\) \(`)
	got := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				got[r.Record] = r.Expr.String()
			}
		}
	}
	for _, name := range want {
		expr, ok := got[name]
		switch {
		case !ok:
			t.Errorf("no recording rule %s", name)
		case name == "montage:cost_per_video:pod_hours_24h":
			// A ratio of two per-Deployment records, matched on both labels.
			if !strings.Contains(expr, "/ on (namespace, deployment) ") {
				t.Errorf("%s = %q: want a division on (namespace, deployment)", name, expr)
			}
		case !outer.MatchString(expr):
			t.Errorf("%s = %q: want an outer aggregation by (namespace, deployment)", name, expr)
		}
	}
}
