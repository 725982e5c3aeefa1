//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	b64 "encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/montage/montage-scaler/scaler/tlsconfig/tlstest"
	"github.com/montage/montage-scaler/test/servers"
)

// The binaries build/build.sh puts in the cache's bin/ folder (its
// binaries list names the same; its .complete stamp says all are there).
var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
	"keda-operator", "keda-adapter", "kwok", "metrics-server", "kube-state-metrics"}

// hpaSyncPeriod is the controller manager's --horizontal-pod-autoscaler-sync-period
// (default 15 s): short, so that scenarios wait for policies, not for syncs.
const hpaSyncPeriod = 2 * time.Second

// cacheDir is where build/build.sh put the components.
func cacheDir() string {
	if d := os.Getenv("MONTAGE_E2E_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "montage-scaler-e2e")
	}
	return filepath.Join(home, ".cache", "montage-scaler-e2e")
}

// cluster is a running control plane with KEDA.
type cluster struct {
	bin, dir   string
	logs       *logBook
	ns         *netns
	kubeconfig string // admin (system:masters) over loopback
	// relayAddr is the host's veth address relaying to the apiserver, for
	// components in the network namespace.
	relayAddr string
	pki       *pki
	cfg       *rest.Config
	client    kubernetes.Interface
	operator  *proc
	adapter   *proc
	// operatorMetrics is host:port of the operator's /metrics (KEDA's
	// keda_* metrics).
	operatorMetrics string
}

// startCluster starts etcd, kube-apiserver, kube-controller-manager, KEDA's
// CRDs, operator and metrics adapter; everything is torn down in t.Cleanup.
// The test is skipped when the component cache is cold or the test is not
// root (ip netns needs it).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cache := cacheDir()
	if _, err := os.Stat(filepath.Join(cache, ".complete")); err != nil {
		t.Skipf("e2e: component cache %s is cold (run make e2e-build, about 2 hours on 2 cores): %v", cache, err)
	}
	// A cache made before a component joined the list is cold too.
	var missing []string
	for _, b := range components {
		if _, err := os.Stat(filepath.Join(cache, "bin", b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		t.Skipf("e2e: component cache %s lacks %s (run make e2e-build: it builds only what is missing)", cache, strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root for the metrics adapter's network namespace (ip netns)")
	}
	c := &cluster{bin: filepath.Join(cache, "bin"), dir: t.TempDir(), logs: &logBook{}}
	c.logs.printOnFailure(t)
	t.Logf("e2e: component logs in %s", c.dir)
	c.ns = newNetns(t)
	pki := c.makePKI(t)
	c.pki = pki

	// etcd on loopback. It cannot bind port 0 and say which it got: its
	// ports are probed free, and its own log says whether it bound them.
	var etcdURL string
	startListening(t, c.logs, c.dir, "etcd", nil, []string{"127.0.0.1", "127.0.0.1"}, func(ports []int) []string {
		etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		dataDir := filepath.Join(c.dir, "etcd-data")
		_ = os.RemoveAll(dataDir) // a retry starts a new member
		return []string{filepath.Join(c.bin, "etcd"),
			"--name", "e2e", "--data-dir", dataDir,
			"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "e2e=" + peerURL, "--unsafe-no-fsync", "--log-level", "info"}
	}, lines(`serving client traffic insecurely`))
	waitUntil(t, time.Minute, 200*time.Millisecond, "etcd healthy", func() (bool, error) {
		resp, err := http.Get(etcdURL + "/health")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("status %d", resp.StatusCode)
	})

	// kube-apiserver on loopback; the adapter reaches it through a relay on
	// the host's end of the veth pair.
	_, apiPorts := startListening(t, c.logs, c.dir, "kube-apiserver", nil, []string{"127.0.0.1"}, func(ports []int) []string {
		return []string{filepath.Join(c.bin, "kube-apiserver"),
			"--etcd-servers", etcdURL,
			"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
			"--advertise-address", c.ns.hostIP, "--endpoint-reconciler-type", "none",
			"--service-cluster-ip-range", "10.96.0.0/24",
			"--cert-dir", filepath.Join(c.dir, "apiserver-certs"),
			"--tls-cert-file", pki.apiserverCert, "--tls-private-key-file", pki.apiserverKey,
			"--client-ca-file", pki.caCert,
			"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file", pki.saKey, "--service-account-signing-key-file", pki.saKey,
			"--authorization-mode", "RBAC",
			"--requestheader-client-ca-file", pki.frontProxyCACert,
			"--requestheader-allowed-names", "front-proxy-client",
			"--requestheader-username-headers", "X-Remote-User",
			"--requestheader-group-headers", "X-Remote-Group",
			"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
			"--proxy-client-cert-file", pki.frontProxyClientCert, "--proxy-client-key-file", pki.frontProxyClientKey,
			"--enable-aggregator-routing=true",
			"--profiling=false"}
	}, lines(`Serving securely on 127\.0\.0\.1:`))
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPorts[0]))
	c.relayAddr = forward(t, net.JoinHostPort(c.ns.hostIP, "0"), apiAddr)
	c.kubeconfig = c.writeKubeconfig(t, "admin.kubeconfig", "https://"+apiAddr, pki)
	adapterKubeconfig := c.writeKubeconfig(t, "adapter.kubeconfig", "https://"+c.relayAddr, pki)
	c.cfg = &rest.Config{
		Host: "https://" + apiAddr,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.admin.CertPEM, KeyData: pki.admin.KeyPEM,
		},
		QPS: 50, Burst: 100,
	}
	cs, err := kubernetes.NewForConfig(c.cfg)
	if err != nil {
		t.Fatalf("e2e: client: %v", err)
	}
	c.client = cs
	waitUntil(t, 2*time.Minute, 500*time.Millisecond, "kube-apiserver ready", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", err
	})

	// Its HTTPS port is not used: 0 turns it off.
	startProc(t, c.logs, c.dir, "kube-controller-manager", nil, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig", c.kubeconfig,
		"--authentication-kubeconfig", c.kubeconfig, "--authorization-kubeconfig", c.kubeconfig,
		"--secure-port", "0",
		"--controllers", "deployment-controller,replicaset-controller,horizontal-pod-autoscaler-controller,"+
			"serviceaccount-controller,garbage-collector-controller,namespace-controller",
		"--horizontal-pod-autoscaler-sync-period", hpaSyncPeriod.String(),
		"--leader-elect=false", "--v=2")

	// KEDA: CRDs applied server-side (client-side apply would put each CRD
	// in an annotation, which overflows its size limit).
	c.kubectl(t, "", "create", "namespace", "keda")
	c.kubectl(t, "", "apply", "--server-side", "-f", filepath.Join(cache, "keda-crds"))
	c.kubectlUntil(t, 2*time.Minute, "wait", "--for", "condition=Established", "--timeout", "10s",
		"crd/scaledobjects.keda.sh", "crd/triggerauthentications.keda.sh")

	if err := os.MkdirAll(filepath.Join(c.dir, "keda-custom-ca"), 0o700); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	kedaEnv := []string{"POD_NAMESPACE=keda", "KEDA_CLUSTER_OBJECT_NAMESPACE=keda", "WATCH_NAMESPACE="}
	// The operator's metrics and its gRPC metrics service, on ports probed
	// free (it cannot bind port 0 and say which it got); no health probes.
	var opGRPC string
	c.operator, _ = startListening(t, c.logs, c.dir, "keda-operator", append(kedaEnv, "KUBECONFIG="+c.kubeconfig),
		[]string{c.ns.hostIP, "127.0.0.1"}, func(ports []int) []string {
			opGRPC = net.JoinHostPort(c.ns.hostIP, strconv.Itoa(ports[0]))
			c.operatorMetrics = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
			return []string{filepath.Join(c.bin, "keda-operator"),
				"--cert-dir", pki.kedaCertDir, "--enable-cert-rotation=false",
				"--metrics-bind-address", c.operatorMetrics,
				"--health-probe-bind-address", "0",
				"--metrics-service-bind-address", opGRPC,
				"--enable-webhook-patching=false", "--enable-apiservice-patching=false",
				"--ca-dir", filepath.Join(c.dir, "keda-custom-ca"),
				"--zap-log-level", "info", "--zap-encoder", "console"}
		}, func(p *proc, _ []int) error {
			// controller-runtime logs this once its listener is bound.
			if err := lines(`Serving metrics server`)(p, nil); err != nil {
				return err
			}
			// The gRPC service logs before it binds: a TLS handshake that
			// presents KEDA's own certificate says the port is the
			// operator's, not another process's.
			return operatorGRPCReady(p, opGRPC, pki)
		})

	// The metrics adapter inside the network namespace: the aggregator
	// refuses loopback endpoints.
	c.adapter = startProc(t, c.logs, c.dir, "keda-adapter", append(kedaEnv, "KUBECONFIG="+adapterKubeconfig),
		"ip", "netns", "exec", c.ns.name, filepath.Join(c.bin, "keda-adapter"),
		"--secure-port", "6443", "--bind-address", c.ns.nsIP,
		"--cert-dir", pki.kedaCertDir,
		"--tls-cert-file", filepath.Join(pki.kedaCertDir, "tls.crt"),
		"--tls-private-key-file", filepath.Join(pki.kedaCertDir, "tls.key"),
		"--lister-kubeconfig", adapterKubeconfig,
		"--authentication-kubeconfig", adapterKubeconfig, "--authorization-kubeconfig", adapterKubeconfig,
		"--metrics-service-address", opGRPC,
		"--port", "18080", "--v", "2")
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: keda-metrics-apiserver
  namespace: keda
spec:
  ports:
    - name: https
      port: 443
      targetPort: 6443
      protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: keda-metrics-apiserver-netns
  namespace: keda
  labels:
    kubernetes.io/service-name: keda-metrics-apiserver
addressType: IPv4
endpoints:
  - addresses: [%q]
    conditions:
      ready: true
ports:
  - name: https
    port: 6443
    protocol: TCP
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.external.metrics.k8s.io
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service:
    name: keda-metrics-apiserver
    namespace: keda
    port: 443
  caBundle: %s
`, c.ns.nsIP, base64(pki.kedaCAPEM)))
	c.kubectlUntil(t, 3*time.Minute, "wait", "--for", "condition=Available", "--timeout", "10s",
		"apiservice/v1beta1.external.metrics.k8s.io")
	return c
}

// makePKI makes the cluster CA, the apiserver's serving certificate, an admin
// client certificate in system:masters, the front-proxy CA and client
// certificate, the service-account key and KEDA's mTLS dir (ca.crt, tls.crt,
// tls.key, shared by the operator's gRPC server and the adapter).
func (c *cluster) makePKI(t testing.TB) *pki {
	t.Helper()
	dir := filepath.Join(c.dir, "pki")
	p := &pki{kedaCertDir: filepath.Join(dir, "keda")}
	ca := tlstest.NewCA(t, "e2e-cluster-ca")
	p.caPEM = ca.PEM
	p.caCert = filepath.Join(dir, "ca.crt")
	writeFile(t, p.caCert, ca.PEM)
	loop := net.IPv4(127, 0, 0, 1)
	p.apiserverCert, p.apiserverKey = writePair(t, ca.Issue(t, tlstest.Spec{
		CN: "kube-apiserver", Server: true,
		DNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs: []net.IP{loop, net.ParseIP(c.ns.hostIP), net.ParseIP("10.96.0.1")},
	}), dir, "apiserver")
	p.admin = ca.Issue(t, tlstest.Spec{CN: "e2e-admin", Orgs: []string{"system:masters"}, Client: true})

	fp := tlstest.NewCA(t, "e2e-front-proxy-ca")
	p.frontProxyCACert = filepath.Join(dir, "front-proxy-ca.crt")
	writeFile(t, p.frontProxyCACert, fp.PEM)
	p.frontProxyClientCert, p.frontProxyClientKey = writePair(t, fp.Issue(t, tlstest.Spec{CN: "front-proxy-client", Client: true}), dir, "front-proxy-client")

	p.saKey = filepath.Join(dir, "sa.key")
	writeFile(t, p.saKey, tlstest.NewKeyPEM(t))

	keda := tlstest.NewCA(t, "e2e-keda-ca")
	p.kedaCAPEM = keda.PEM
	writeFile(t, filepath.Join(p.kedaCertDir, "ca.crt"), keda.PEM)
	pair := keda.Issue(t, tlstest.Spec{
		CN: "keda", Server: true, Client: true,
		DNS: []string{"keda-operator", "keda-operator.keda.svc", "keda-operator.keda.svc.cluster.local",
			"keda-metrics-apiserver", "keda-metrics-apiserver.keda.svc", "keda-metrics-apiserver.keda.svc.cluster.local"},
		IPs: []net.IP{loop, net.ParseIP(c.ns.hostIP), net.ParseIP(c.ns.nsIP)},
	})
	writeFile(t, filepath.Join(p.kedaCertDir, "tls.crt"), pair.CertPEM)
	writeFile(t, filepath.Join(p.kedaCertDir, "tls.key"), pair.KeyPEM)
	return p
}

// pki is what makePKI made.
type pki struct {
	caCert                                    string
	caPEM                                     []byte
	apiserverCert, apiserverKey               string
	frontProxyCACert                          string
	frontProxyClientCert, frontProxyClientKey string
	saKey                                     string
	kedaCertDir                               string
	kedaCAPEM                                 []byte
	admin                                     *tlstest.Pair
}

func (c *cluster) writeKubeconfig(t testing.TB, name, server string, p *pki) string {
	t.Helper()
	path := filepath.Join(c.dir, name)
	writeFile(t, path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: %s
      certificate-authority-data: %s
users:
  - name: admin
    user:
      client-certificate-data: %s
      client-key-data: %s
contexts:
  - name: e2e
    context: {cluster: e2e, user: admin}
current-context: e2e
`, server, base64(p.caPEM), base64(p.admin.CertPEM), base64(p.admin.KeyPEM))))
	return path
}

// kubectl runs kubectl against the cluster with stdin and fails the test on
// an error.
func (c *cluster) kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(stdin, args...)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return out
}

func (c *cluster) kubectlErr(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// kubectlUntil runs kubectl until it succeeds, at most limit: `kubectl
// wait` fails at once on an object whose status is not written yet.
func (c *cluster) kubectlUntil(t testing.TB, limit time.Duration, args ...string) {
	t.Helper()
	waitUntil(t, limit, time.Second, "kubectl "+strings.Join(args, " "), func() (bool, error) {
		_, err := c.kubectlErr("", args...)
		return err == nil, err
	})
}

// apply applies YAML documents server-side.
func (c *cluster) apply(t testing.TB, yaml string) {
	t.Helper()
	c.kubectl(t, yaml, "apply", "--server-side", "--field-manager", "montage-e2e", "-f", "-")
}

func base64(b []byte) string { return b64.StdEncoding.EncodeToString(b) }

// operatorGRPCReady waits until a TLS handshake with addr presents KEDA's
// own certificate: the operator's gRPC metrics service listens there, not
// another process that took the port. servers.ErrPortTaken when the
// operator's output says the port was taken.
func operatorGRPCReady(p *proc, addr string, k *pki) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(k.kedaCAPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(k.kedaCertDir, "tls.crt"), filepath.Join(k.kedaCertDir, "tls.key"))
	if err != nil {
		return err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "keda-operator", Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			conn.Close()
			return nil
		}
		out := p.output()
		switch {
		case strings.Contains(strings.ToLower(out), "address already in use"):
			return fmt.Errorf("%s: %w: %s", p.name, servers.ErrPortTaken, lastLines(out, 20))
		case p.exited():
			return fmt.Errorf("%s exited at start: %s", p.name, lastLines(out, 40))
		case time.Now().After(deadline):
			return fmt.Errorf("%s: no TLS handshake with KEDA's certificate on %s within 2m: %v", p.name, addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
