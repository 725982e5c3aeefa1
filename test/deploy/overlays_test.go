package deploy

import (
	"slices"
	"testing"
)

// Every overlay's exact set of objects.
func TestEveryOverlayBuildsAndDecodesStrictly(t *testing.T) {
	scaler := []string{
		"ClusterRole montage-scaler",
		"ClusterRoleBinding montage-scaler",
		"Deployment montage-scaler/montage-scaler",
		"Namespace montage-scaler",
		"NetworkPolicy montage-scaler/montage-scaler",
		"PodDisruptionBudget montage-scaler/montage-scaler",
		"Service montage-scaler/montage-scaler",
		"Service montage-scaler/montage-scaler-metrics",
		"ServiceAccount montage-scaler/montage-scaler",
	}
	app := []string{"Deployment montage/montage", "Namespace montage", "Service montage/montage"}
	monitoring := []string{
		"ConfigMap monitoring/montage-scaler-dashboard",
		"PodMonitor montage/montage",
		"PrometheusRule montage/montage-scaler",
		"ServiceMonitor montage-scaler/montage-scaler",
	}
	personal := concat(scaler, app, monitoring, []string{"ScaledObject montage/montage"})
	cases := []struct {
		name, dir string
		want      []string
	}{
		{"deploy/ itself installs the personal overlay", ".", personal},
		{"personal has the scaler, the app, the ScaledObject and monitoring", "overlays/personal", personal},
		{"scale-to-zero has the same objects as personal", "overlays/scale-to-zero", personal},
		{"phase1-hpa has the app and an HPA, no KEDA and no scaler", "overlays/phase1-hpa",
			concat(app, []string{"HorizontalPodAutoscaler montage/montage"})},
		{"tls adds the two certificate Secrets and the TriggerAuthentication", "overlays/tls",
			concat(personal, []string{
				"Secret montage-scaler/montage-scaler-tls",
				"Secret montage/montage-scaler-client-tls",
				"TriggerAuthentication montage/montage-scaler-tls",
			})},
		{"pod-cost adds the writer's Role and RoleBinding in the app's namespace", "overlays/pod-cost",
			concat(personal, []string{"Role montage/montage-scaler-pod-cost", "RoleBinding montage/montage-scaler-pod-cost"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := buildOverlay(t, tc.dir)
			slices.Sort(tc.want)
			if !slices.Equal(got.Keys(), tc.want) {
				t.Fatalf("objects:\n got %v\nwant %v", got.Keys(), tc.want)
			}
		})
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The strict decoding must be able to fail, or the tests above prove little.
func TestStrictDecodingRefusesWhatKubernetesWouldNotKnow(t *testing.T) {
	cases := []struct {
		name, manifest, want string
	}{
		{"a misspelt Deployment field", `apiVersion: apps/v1
kind: Deployment
metadata: {name: x, namespace: y}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, `deploy/bad: Deployment y/x does not decode strictly: [unknown field "spec.replica"]`},
		{"a field in the wrong case", `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x, namespace: y}
spec:
  scaleTargetRef: {name: montage}
  MinReplicaCount: 1
  triggers: [{type: cpu, metricType: Utilization, metadata: {value: "65"}}]
`, `deploy/bad: ScaledObject y/x does not decode strictly: [unknown field "spec.MinReplicaCount"]`},
		{"an unknown field in a Prometheus Operator object", `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x, namespace: y}
spec:
  groups: [{name: g, rules: [{alert: A, expr: up == 0, forr: 5m}]}]
`, `deploy/bad: PrometheusRule y/x does not decode strictly: [unknown field "spec.groups[0].rules[0].forr"]`},
		{"a kind without a Go type", `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: x, namespace: y}
`, `deploy/bad: Certificate.v1.cert-manager.io/x.y: no Go type for apiVersion "cert-manager.io/v1" kind "Certificate"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := loadDeploy(t)
			for name, body := range map[string]string{
				"/deploy/bad/kustomization.yaml": "resources: [bad.yaml]\n",
				"/deploy/bad/bad.yaml":           tc.manifest,
			} {
				if err := mem.WriteFile(name, []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := buildErr(mem, "bad")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}
