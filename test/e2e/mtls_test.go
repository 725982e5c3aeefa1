//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
	"github.com/montage/montage-scaler/test/servers"
)

// scenarioMTLS (issue 7, 2f): KEDA talks to the scaler over mutual TLS with
// the CA and client certificate of a TriggerAuthentication, and scales
// 0 → 1 → 4 on 17 tasks. On the same queue, a scaler whose serving
// certificate another CA signed is refused by KEDA, and a scaler that trusts
// another CA for its clients refuses KEDA: both their Deployments stay at 0.
func scenarioMTLS(t *testing.T, e *env) {
	s := e.scenario(t, "mtls")
	r := servers.StartRedis(t)
	dir := filepath.Join(s.dir, "tls")
	loop := []net.IP{net.IPv4(127, 0, 0, 1)}
	scalerCA, clientCA, rogueCA := tlstest.NewCA(t, "e2e-scaler-ca"), tlstest.NewCA(t, "e2e-keda-client-ca"), tlstest.NewCA(t, "e2e-rogue-ca")
	clientCAPath := filepath.Join(dir, "client-ca.crt")
	writeFile(t, clientCAPath, clientCA.PEM)
	goodCert, goodKey := writePair(t, scalerCA.Issue(t, tlstest.Spec{CN: "montage-scaler", Server: true, DNS: []string{"localhost"}, IPs: loop}), dir, "scaler")
	rogueCert, rogueKey := writePair(t, rogueCA.Issue(t, tlstest.Spec{CN: "montage-scaler", Server: true, DNS: []string{"localhost"}, IPs: loop}), dir, "rogue")
	kedaClient := clientCA.Issue(t, tlstest.Spec{CN: "keda-operator", Client: true})

	rogueCAPath := filepath.Join(dir, "rogue-ca.crt")
	writeFile(t, rogueCAPath, rogueCA.PEM)
	goodPort := s.startScaler(t, "scaler", "--tls-cert", goodCert, "--tls-key", goodKey, "--tls-client-ca", clientCAPath).port()
	roguePort := s.startScaler(t, "rogue-scaler", "--tls-cert", rogueCert, "--tls-key", rogueKey, "--tls-client-ca", clientCAPath).port()
	strictPort := s.startScaler(t, "strict-scaler", "--tls-cert", goodCert, "--tls-key", goodKey, "--tls-client-ca", rogueCAPath).port()

	so := func(name string, port int) string {
		return fmt.Sprintf(`---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: %s
  namespace: %s
spec:
  scaleTargetRef: {name: %s}
  pollingInterval: 5
  cooldownPeriod: 30
  minReplicaCount: 0
  maxReplicaCount: 8
  triggers:
    - type: external-push
      authenticationRef: {name: montage-scaler-tls}
      metadata:
        scalerAddress: 127.0.0.1:%d
        brokerURL: %s
        queues: celery
        tasksPerReplica: "5"
`, name, s.ns, name, port, r.URL(0))
	}
	e.c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: montage-scaler-tls
  namespace: %s
data:
  ca.crt: %s
  tls.crt: %s
  tls.key: %s
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: montage-scaler-tls
  namespace: %s
spec:
  secretTargetRef:
    - {parameter: caCert, name: montage-scaler-tls, key: ca.crt}
    - {parameter: tlsClientCert, name: montage-scaler-tls, key: tls.crt}
    - {parameter: tlsClientKey, name: montage-scaler-tls, key: tls.key}
---
`, s.ns, base64(scalerCA.PEM), base64(kedaClient.CertPEM), base64(kedaClient.KeyPEM), s.ns)+
		deployment(s.ns, 0)+so("montage", goodPort)+"---\n"+
		strings.Replace(deployment(s.ns, 0), "name: montage\n", "name: rogue\n", 1)+so("rogue", roguePort)+"---\n"+
		strings.Replace(deployment(s.ns, 0), "name: montage\n", "name: strict\n", 1)+so("strict", strictPort))
	good := recordReplicas(t, e.c.client, s.ns, "montage")
	rogue := recordReplicas(t, e.c.client, s.ns, "rogue")
	strict := recordReplicas(t, e.c.client, s.ns, "strict")
	s.waitScaledObject(t, "montage")
	good.holds(t, 10*time.Second, 0)

	sendBlocks(t, r, "f", 17, "celery")
	good.waitFor(t, 3*time.Minute, "reach 4 over mTLS", eq(4))
	if got := values(good.snapshot()); !equal(got, []int32{0, 1, 4}) {
		t.Fatalf("over mTLS the replicas went %v, want [0 1 4]; trajectory: %s", got, good)
	}
	// The other two scalers see the same 17 tasks; neither handshake may
	// succeed.
	rogue.holds(t, 30*time.Second, 0)
	for _, c := range []struct {
		name string
		tr   *trajectory
	}{{"rogue", rogue}, {"strict", strict}} {
		if got := values(c.tr.snapshot()); !equal(got, []int32{0}) {
			t.Fatalf("%s: the Deployment of a scaler KEDA cannot authenticate with moved: %v", c.name, got)
		}
		ready := strings.TrimSpace(e.c.kubectl(t, "", "-n", s.ns, "get", "scaledobject", c.name,
			"-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`))
		if ready == "True" {
			t.Fatalf("%s: the ScaledObject of a scaler KEDA cannot authenticate with is Ready", c.name)
		}
	}
	opLog, err := os.ReadFile(e.c.operator.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(opLog), "certificate signed by unknown authority") {
		t.Fatalf("KEDA's operator log does not say why it refused the rogue scaler (want %q)", "certificate signed by unknown authority")
	}
	t.Logf("trajectory over mTLS: %s; rogue: %s; strict: %s", good, rogue, strict)
}
