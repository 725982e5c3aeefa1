//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/test/servers"
)

// The live loop's pods name this scheduler; the other scenarios' pods name
// the default one, which does not run, so they stay Pending as before (no
// FailedScheduling events in their namespaces either).
const liveScheduler = "montage-e2e"

// liveFinalizer is on every pod of the live loop's Deployments: the worker
// bridge removes it once the pod's Celery worker has exited, so a pod stays
// Terminating as long as its worker drains, as with a kubelet.
const liveFinalizer = "e2e.montage.test/worker"

// The fake nodes: a small cluster's resources (5 × 4 CPU, 16 GiB: room for
// the live loop's scenarios side by side, up to 40 pods of 500m).
const (
	liveNodes      = 5
	liveNodeCPU    = "4"
	liveNodeMemory = "16Gi"
)

// Pod start-up on the fake nodes: KWOK's pod-ready stage fires uniformly
// 8–12 s after it sees the pod on its node (10 s ± 2 s).
const (
	startupMin = 8 * time.Second
	startupMax = 12 * time.Second
)

// Resource usage of a pod without the bridge's annotations (an idle worker).
const (
	idleCPUMillis = 20
	idleMemory    = "300Mi"
)

// metricResolution is metrics-server's --metric-resolution (the least it
// takes).
const metricResolution = 10 * time.Second

// live is what the live loop adds to the cluster: kube-scheduler, KWOK with
// fake nodes, metrics-server (registered as v1beta1.metrics.k8s.io) and
// kube-state-metrics. Started by the live-loop group only, torn down after
// its scenarios.
type live struct {
	c    *cluster
	dir  string
	logs *logBook
	// ksm is host:port of kube-state-metrics' /metrics.
	ksm string
}

// startLive starts the live loop's components on the running cluster.
func startLive(t *testing.T, c *cluster, namespaces ...string) *live {
	t.Helper()
	l := &live{c: c, dir: t.TempDir(), logs: &logBook{}}
	l.logs.printOnFailure(t)

	// kube-scheduler with one profile, the live loop's scheduler name.
	cfg := filepath.Join(l.dir, "scheduler.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
leaderElection:
  leaderElect: false
profiles:
  - schedulerName: %s
`, c.kubeconfig, liveScheduler)))
	startProc(t, l.logs, l.dir, "kube-scheduler", nil, filepath.Join(c.bin, "kube-scheduler"),
		"--config", cfg, "--secure-port", "0",
		"--authentication-kubeconfig", c.kubeconfig, "--authorization-kubeconfig", c.kubeconfig, "--v=2")

	// KWOK's server (the nodes' "kubelet", for metrics-server) listens on
	// the host's end of the veth pair, which metrics-server's namespace
	// reaches; KWOK cannot bind port 0 and say which it got.
	kwokCfg := filepath.Join(l.dir, "kwok.yaml")
	writeFile(t, kwokCfg, []byte(kwokConfig))
	startListening(t, l.logs, l.dir, "kwok", nil, []string{c.ns.hostIP}, func(ports []int) []string {
		return []string{filepath.Join(c.bin, "kwok"), "--kubeconfig", c.kubeconfig, "--config", kwokCfg,
			"--manage-all-nodes=false", "--manage-nodes-with-label-selector", "type=kwok",
			"--node-ip", c.ns.hostIP, "--node-port", strconv.Itoa(ports[0]),
			"--server-address", net.JoinHostPort(c.ns.hostIP, strconv.Itoa(ports[0]))}
	}, lines(`Starting HTTP server`))
	var nodes strings.Builder
	for i := range liveNodes {
		name := fmt.Sprintf("kwok-node-%d", i)
		fmt.Fprintf(&nodes, `---
apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  labels: {type: kwok, kubernetes.io/hostname: %[1]s, kubernetes.io/os: linux}
  annotations:
    kwok.x-k8s.io/node: fake
    # metrics-server reads the node's resource metrics from this path of
    # the node's "kubelet" (KWOK serves one per node).
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/%[1]s/metrics/resource
`, name)
	}
	c.kubectl(t, nodes.String(), "create", "-f", "-")
	c.kubectlUntil(t, 2*time.Minute, "wait", "--for", "condition=Ready", "--timeout", "10s", "node", "-l", "type=kwok")
	// The apiserver taints a new node not-ready; the node lifecycle
	// controller lifts the taint once the node is Ready. This cluster runs
	// no such controller (it would also want heartbeats from the fake
	// nodes): the test lifts it, as the controller would.
	for i := range liveNodes {
		c.kubectl(t, "", "patch", "node", fmt.Sprintf("kwok-node-%d", i), "--type", "merge", "-p", `{"spec":{"taints":null}}`)
	}

	// metrics-server in the adapter's network namespace (the aggregator
	// refuses loopback endpoints), on a port of its own there.
	const msPort = 6444
	msKubeconfig := c.writeKubeconfig(t, "metrics-server.kubeconfig", "https://"+c.relayAddr, c.pki)
	ms := startProc(t, l.logs, l.dir, "metrics-server", nil,
		"ip", "netns", "exec", c.ns.name, filepath.Join(c.bin, "metrics-server"),
		"--secure-port", strconv.Itoa(msPort), "--bind-address", c.ns.nsIP,
		"--cert-dir", filepath.Join(l.dir, "metrics-server-certs"),
		"--kubeconfig", msKubeconfig,
		"--authentication-kubeconfig", msKubeconfig, "--authorization-kubeconfig", msKubeconfig,
		"--kubelet-insecure-tls", "--kubelet-use-node-status-port",
		"--kubelet-preferred-address-types", "InternalIP",
		"--node-selector", "type=kwok",
		"--metric-resolution", metricResolution.String(), "--kubelet-request-timeout", "5s", "--v", "2")
	if err := ms.waitLine(2*time.Minute, regexp.MustCompile(`Serving securely on`)); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  ports:
    - name: https
      port: 443
      targetPort: %[1]d
      protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-netns
  namespace: kube-system
  labels:
    kubernetes.io/service-name: metrics-server
addressType: IPv4
endpoints:
  - addresses: [%[2]q]
    conditions:
      ready: true
ports:
  - name: https
    port: %[1]d
    protocol: TCP
---
# As metrics-server's own manifest registers it (a self-signed serving
# certificate).
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service:
    name: metrics-server
    namespace: kube-system
    port: 443
`, msPort, c.ns.nsIP))
	c.kubectlUntil(t, 3*time.Minute, "wait", "--for", "condition=Available", "--timeout", "10s", "apiservice/v1beta1.metrics.k8s.io")

	// kube-state-metrics binds port 0 and names the address in its log
	// ("Listening on"); its own telemetry goes to another loopback address
	// so the two lines cannot be confused.
	ksm := startProc(t, l.logs, l.dir, "kube-state-metrics", nil, filepath.Join(c.bin, "kube-state-metrics"),
		"--kubeconfig", c.kubeconfig, "--host", "127.0.0.1", "--port", "0",
		"--telemetry-host", "127.0.0.2", "--telemetry-port", "0",
		"--resources", "deployments,replicasets,pods",
		"--namespaces", strings.Join(namespaces, ","))
	addr, err := servers.WaitStartLine(ksm.logPath, ksm.logOffset, ksm.done, 2*time.Minute,
		regexp.MustCompile(`Listening on"? address="?(127\.0\.0\.1:\d+)`))
	if err != nil {
		t.Fatalf("e2e: kube-state-metrics: %v", err)
	}
	l.ksm = addr
	return l
}

// kwokConfig is KWOK's configuration: node and pod stages, the resource
// usage the metrics endpoint reports, and that endpoint (KWOK's own
// kustomize/metrics/resource, which metrics-server scrapes).
//
// Pods: Ready 8–12 s after KWOK sees them on a node. Deleted pods: KWOK's
// stock delete stages either empty the finalizers at once or delete at a
// random time before the deletion deadline; this one deletes a pod (grace
// 0) only once its finalizers are gone, which the worker bridge does when
// the pod's worker has exited.
//
// Usage: the worker bridge writes kwok.x-k8s.io/usage-cpu on a pod from the
// renders its worker runs; without it a pod is an idle worker. Every pod
// has both figures: the HPA refuses to scale down while a pod lacks one of
// its resource metrics.
var kwokConfig = fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
      - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
        operator: NotIn
        values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - address: {{ NodeIP | Quote }}
        type: InternalIP
      - address: {{ NodeName | Quote }}
        type: Hostname
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ NodePort }}
      allocatable: {cpu: %[5]q, memory: %[6]s, pods: "110"}
      capacity: {cpu: %[5]q, memory: %[6]s, pods: "110"}
      nodeInfo:
        architecture: amd64
        kubeletVersion: {{ printf "kwok-%%s" Version }}
        operatingSystem: linux
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - key: .metadata.deletionTimestamp
        operator: DoesNotExist
      - key: .status.phase
        operator: NotIn
        values: [Running]
  delay:
    durationMilliseconds: %[1]d
    jitterDurationMilliseconds: %[2]d
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete-after-finalizers
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - key: .metadata.deletionTimestamp
        operator: Exists
      - key: .metadata.finalizers
        operator: DoesNotExist
  next:
    delete: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata:
  name: usage-from-annotation
spec:
  usages:
    - usage:
        cpu:
          expression: |
            "kwok.x-k8s.io/usage-cpu" in pod.metadata.annotations
            ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-cpu"])
            : Quantity("%[3]dm")
        memory:
          expression: |
            "kwok.x-k8s.io/usage-memory" in pod.metadata.annotations
            ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-memory"])
            : Quantity("%[4]s")
---
%[7]s`, startupMin.Milliseconds(), startupMax.Milliseconds(), idleCPUMillis, idleMemory, liveNodeCPU, liveNodeMemory, kwokMetricsResource)

// kwokMetricsResource is KWOK's kubelet /metrics/resource stand-in
// (sigs.k8s.io/kwok kustomize/metrics/resource), the series metrics-server
// reads.
const kwokMetricsResource = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Metric
metadata:
  name: metrics-resource
spec:
  path: "/metrics/nodes/{nodeName}/metrics/resource"
  metrics:
    - name: scrape_error
      dimension: node
      help: 1 if there was an error while getting metrics from the node, 0 otherwise
      kind: gauge
      value: '0'
    - name: container_start_time_seconds
      dimension: container
      help: Start time of the container since unix epoch in seconds
      kind: gauge
      labels:
        - {name: container, value: 'container.name'}
        - {name: namespace, value: 'pod.metadata.namespace'}
        - {name: pod, value: 'pod.metadata.name'}
      value: 'pod.SinceSecond()'
    - name: container_cpu_usage_seconds_total
      dimension: container
      help: Cumulative cpu time consumed by the container in core-seconds
      kind: counter
      labels:
        - {name: container, value: 'container.name'}
        - {name: namespace, value: 'pod.metadata.namespace'}
        - {name: pod, value: 'pod.metadata.name'}
      value: 'pod.CumulativeUsage("cpu", container.name)'
    - name: container_memory_working_set_bytes
      dimension: container
      help: Current working set of the container in bytes
      kind: gauge
      labels:
        - {name: container, value: 'container.name'}
        - {name: namespace, value: 'pod.metadata.namespace'}
        - {name: pod, value: 'pod.metadata.name'}
      value: 'pod.Usage("memory", container.name)'
    - name: pod_cpu_usage_seconds_total
      dimension: pod
      help: Cumulative cpu time consumed by the pod in core-seconds
      kind: counter
      labels:
        - {name: namespace, value: 'pod.metadata.namespace'}
        - {name: pod, value: 'pod.metadata.name'}
      value: 'pod.CumulativeUsage("cpu")'
    - name: pod_memory_working_set_bytes
      dimension: pod
      help: Current working set of the pod in bytes
      kind: gauge
      labels:
        - {name: namespace, value: 'pod.metadata.namespace'}
        - {name: pod, value: 'pod.metadata.name'}
      value: 'pod.Usage("memory")'
    - name: node_cpu_usage_seconds_total
      dimension: node
      help: Cumulative cpu time consumed by the node in core-seconds
      kind: counter
      value: 'node.CumulativeUsage("cpu")'
    - name: node_memory_working_set_bytes
      dimension: node
      help: Current working set of the node in bytes
      kind: gauge
      value: 'node.Usage("memory")'
`
