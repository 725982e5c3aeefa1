package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// serviceAddress is the host:port a trigger's scalerAddress must name: the
// gRPC Service deploy/ creates, by the DNS name its TLS certificate carries.
func serviceAddress(t *testing.T, o objects) string {
	t.Helper()
	svc := get[corev1.Service](t, o, "Service", ns, "montage-scaler")
	for _, p := range svc.Spec.Ports {
		if p.Name == "grpc" {
			return fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc.Name, svc.Namespace, p.Port)
		}
	}
	t.Fatalf("Service %s/%s has no port named grpc", svc.Namespace, svc.Name)
	return ""
}

// TestEveryScalerAddressNamesTheServiceDeployCreates holds every
// scalerAddress written in examples/ and deploy/ (manifests and docs), and
// those of every overlay's built ScaledObjects, against the gRPC Service
// deploy/ installs: one wrong namespace and KEDA dials nothing.
func TestEveryScalerAddressNamesTheServiceDeployCreates(t *testing.T) {
	built, _ := buildOverlay(t, ".")
	want := serviceAddress(t, built)

	re := regexp.MustCompile(`scalerAddress["']?\s*:\s*["']?([^\s"',}]+)`)
	seen := 0
	for _, dir := range []string{"../../examples", deployDir} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			switch filepath.Ext(path) {
			case ".yaml", ".yml", ".md", ".json":
			default:
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				seen++
				if m[1] != want {
					t.Errorf("%s: scalerAddress %s, want %s (the Service deploy/ creates)", path, m[1], want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen < 4 {
		t.Fatalf("found only %d scalerAddress in examples/ and deploy/: is the pattern still right?", seen)
	}

	for _, dir := range []string{".", "overlays/personal", "overlays/scale-to-zero", "overlays/tls"} {
		o, _ := buildOverlay(t, dir)
		want := serviceAddress(t, o)
		for _, k := range o.Keys() {
			if !strings.HasPrefix(k, "ScaledObject ") {
				continue
			}
			so := o[k].(*kedav1alpha1.ScaledObject)
			for i, tr := range so.Spec.Triggers {
				if tr.Type != "external" && tr.Type != "external-push" {
					continue
				}
				if got := tr.Metadata["scalerAddress"]; got != want {
					t.Errorf("deploy/%s: %s spec.triggers[%d]: scalerAddress %q, want %q", dir, k, i, got, want)
				}
			}
		}
	}
}

// TestTheLatencyExamplesRBACBindsTheScalersServiceAccount: the example's
// ClusterRoleBinding names the ServiceAccount deploy/ runs the scaler as.
func TestTheLatencyExamplesRBACBindsTheScalersServiceAccount(t *testing.T) {
	built, _ := buildOverlay(t, ".")
	sa := get[corev1.ServiceAccount](t, built, "ServiceAccount", ns, "montage-scaler")
	b, err := os.ReadFile("../../examples/latency/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "  - kind: ServiceAccount\n    name: " + sa.Name + "\n    namespace: " + sa.Namespace + "\n"
	if !strings.Contains(string(b), want) {
		t.Fatalf("examples/latency/rbac.yaml does not bind %s/%s:\n%s", sa.Namespace, sa.Name, b)
	}
}
