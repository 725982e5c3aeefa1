package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
)

// deployDir is the repository's deploy/ directory, seen from this package.
const deployDir = "../../deploy"

// newObject returns an empty Go value of the type that apiVersion/kind
// decode into; an object of any other kind is a failure.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "keda.sh/v1alpha1 ScaledObject":
		return &kedav1alpha1.ScaledObject{}, nil
	case "keda.sh/v1alpha1 TriggerAuthentication":
		return &kedav1alpha1.TriggerAuthentication{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1 PodMonitor":
		return &monitoringv1.PodMonitor{}, nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monitoringv1.PrometheusRule{}, nil
	}
	return nil, fmt.Errorf("no Go type for apiVersion %q kind %q", apiVersion, kind)
}

// objects is a built overlay: every object decoded strictly into its Go
// type, by "Kind namespace/name" ("Kind name" when cluster-scoped).
type objects map[string]any

func key(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// Keys returns the sorted keys.
func (o objects) Keys() []string {
	ks := make([]string, 0, len(o))
	for k := range o {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// get returns the object of type T under kind, namespace and name.
func get[T any](t *testing.T, o objects, kind, namespace, name string) *T {
	t.Helper()
	v, ok := o[key(kind, namespace, name)]
	if !ok {
		t.Fatalf("no %s in the build; it has %v", key(kind, namespace, name), o.Keys())
	}
	typed, ok := v.(*T)
	if !ok {
		t.Fatalf("%s decoded as %T", key(kind, namespace, name), v)
	}
	return typed
}

// loadDeploy copies deploy/ into an in-memory filesystem, so a test can add
// files (the tls overlay's certificates) without touching the checkout.
func loadDeploy(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(deployDir, path)
		if err != nil {
			return err
		}
		target := filepath.Join("/deploy", rel)
		if d.IsDir() {
			return mem.MkdirAll(target)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(target, b)
	})
	if err != nil {
		t.Fatalf("copy deploy/: %v", err)
	}
	return mem
}

// testPKI is what the tls overlay's certs/ directory is expected to hold.
type testPKI struct {
	ca             *tlstest.CA
	server, client *tlstest.Pair
}

// writeCerts puts a fresh test PKI where the tls overlay reads it.
func writeCerts(t *testing.T, mem filesys.FileSystem) testPKI {
	t.Helper()
	ca := tlstest.NewCA(t, "montage-scaler CA")
	p := testPKI{ca: ca,
		server: ca.Server(t, "montage-scaler", "montage-scaler.montage-scaler.svc.cluster.local"),
		client: ca.Client(t, "keda-operator")}
	for name, b := range map[string][]byte{
		"ca.crt": ca.PEM, "server.crt": p.server.CertPEM, "server.key": p.server.KeyPEM,
		"client.crt": p.client.CertPEM, "client.key": p.client.KeyPEM,
	} {
		if err := mem.WriteFile(filepath.Join("/deploy/overlays/tls/certs", name), b); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// build runs kustomize on dir (relative to deploy/) and decodes every object
// strictly; see buildErr.
func build(t *testing.T, mem filesys.FileSystem, dir string) objects {
	t.Helper()
	o, err := buildErr(mem, dir)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// buildErr runs kustomize on dir and decodes every object strictly: an
// unknown or misspelt field (names are case-sensitive), a duplicate field or
// a kind without a Go type is an error.
func buildErr(mem filesys.FileSystem, dir string) (objects, error) {
	return buildPath(mem, filepath.Join("/deploy", dir), dir)
}

// buildPath is buildErr on a kustomization at path in fsys; dir names it in
// errors (relative to deploy/).
func buildPath(fsys filesys.FileSystem, path, dir string) (objects, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("kustomize build deploy/%s: %w", dir, err)
	}
	out := objects{}
	for _, r := range resMap.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("deploy/%s: %s: %w", dir, r.CurId(), err)
		}
		obj, err := newObject(r.GetApiVersion(), r.GetKind())
		if err != nil {
			return nil, fmt.Errorf("deploy/%s: %s: %w", dir, r.CurId(), err)
		}
		strict, err := sigsjson.UnmarshalStrict(js, obj)
		if err != nil {
			return nil, fmt.Errorf("deploy/%s: %s: %w", dir, r.CurId(), err)
		}
		if len(strict) > 0 {
			return nil, fmt.Errorf("deploy/%s: %s %s/%s does not decode strictly: %v", dir, r.GetKind(), r.GetNamespace(), r.GetName(), strict)
		}
		k := key(r.GetKind(), r.GetNamespace(), r.GetName())
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("deploy/%s: %s twice", dir, k)
		}
		out[k] = obj
	}
	return out, nil
}

// buildOverlay builds one overlay with a test PKI in place.
func buildOverlay(t *testing.T, dir string) (objects, testPKI) {
	t.Helper()
	mem := loadDeploy(t)
	p := writeCerts(t, mem)
	return build(t, mem, dir), p
}
