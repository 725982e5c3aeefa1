package deploy

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/montage/montage-scaler/test/dashboard"
)

// Series the dashboard reads from exporters other than the scaler.
var (
	// kubeStateMetrics are kube-state-metrics v2's standard names.
	kubeStateMetrics = []string{
		"kube_deployment_spec_replicas", "kube_deployment_status_replicas", "kube_deployment_status_replicas_available",
		"kube_pod_created", "kube_pod_status_ready_time", "kube_pod_owner", "kube_replicaset_owner",
	}
	// appMetrics are the Montage API's, scraped by the PodMonitor.
	appMetrics = []string{"http_request_duration_seconds_bucket", "http_request_duration_seconds_count"}
)

// selectorRE finds the metric selectors of a PromQL expression: a name
// followed by its matchers (the dashboard always gives matchers).
var selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)

func dashboardOf(t *testing.T) (*corev1.ConfigMap, *dashboard.Dashboard) {
	t.Helper()
	o, _ := buildOverlay(t, "overlays/personal")
	cm := get[corev1.ConfigMap](t, o, "ConfigMap", "monitoring", "montage-scaler-dashboard")
	js, ok := cm.Data["montage-scaler.json"]
	if !ok || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap data keys %v, want montage-scaler.json only", slices.Sorted(maps.Keys(cm.Data)))
	}
	d, err := dashboard.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cm, d
}

func TestDashboardIsAConfigMapGrafanasSidecarLoads(t *testing.T) {
	cm, d := dashboardOf(t)
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: want grafana_dashboard: \"1\" (the sidecar's default label)", cm.Labels)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q: want both (a stable uid keeps links and reloads)", d.UID, d.Title)
	}
	ds := d.Variable("datasource")
	if ds == nil || ds.Type != "datasource" || ds.QueryString() != "prometheus" {
		t.Fatalf("variable datasource = %+v: want a datasource variable of type prometheus", ds)
	}
	for _, name := range []string{"namespace", "scaledobject", "deployment"} {
		v := d.Variable(name)
		if v == nil || v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s = %+v: want a query variable on ${datasource}", name, v)
		}
	}
}

func TestDashboardHasThePanelsOfTheKPIs(t *testing.T) {
	_, d := dashboardOf(t)
	var titles []string
	for _, p := range d.Panels {
		if p.Type != "row" {
			titles = append(titles, p.Title)
		}
	}
	for _, want := range []string{
		"Replicas: decision, spec, available", "Each component's ask", "Celery queue: queued and in flight",
		"API P95 vs target", "Scale events per hour", "Pod start-up (creation to Ready), last 24 h",
		"Request share: busiest pod / mean, 5 min", "Cost per video, last 24 h (pod-hours / video)", "Forecast vs actual",
		"Oldest waiting task per queue",
	} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q; panels: %q", want, titles)
		}
	}
	calendar := false
	for _, a := range d.Annotations.List {
		calendar = calendar || (a.Enable && strings.Contains(a.Expr, `component="calendar"`))
	}
	if !calendar {
		t.Error("no enabled annotation query for the calendar windows")
	}
}

// Every query runs on the datasource variable, filters on the namespace
// variable, and reads a series that exists: a kube-state-metrics or app
// metric, one the scaler registers, or a recording rule of the
// PrometheusRule.
func TestDashboardQueriesReadKnownSeries(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	_, d := dashboardOf(t)
	known := scalerMetrics(t)
	for _, m := range slices.Concat(kubeStateMetrics, appMetrics) {
		known[m] = true
	}
	rule := get[monitoringv1.PrometheusRule](t, o, "PrometheusRule", "montage", "montage-scaler")
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			checkSelectors(t, "panel "+p.Title, tg.Expr, known)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			checkSelectors(t, "annotation "+a.Name, a.Expr, known)
		}
	}
}

func checkSelectors(t *testing.T, where, expr string, known descNames) {
	t.Helper()
	sels := selectorRE.FindAllStringSubmatch(expr, -1)
	if len(sels) == 0 && !strings.HasPrefix(expr, "vector(") {
		t.Errorf("%s: %q has no metric selector", where, expr)
	}
	for _, s := range sels {
		if !known[s[1]] {
			t.Errorf("%s: %s is neither exported nor recorded", where, s[1])
		}
		if !strings.Contains(s[2], `namespace="$namespace"`) {
			t.Errorf("%s: %s{%s} does not filter on namespace=\"$namespace\"", where, s[1], s[2])
		}
	}
}
