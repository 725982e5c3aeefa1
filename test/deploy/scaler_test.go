package deploy

import (
	"bytes"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/source"
)

const ns = "montage-scaler"

var scalerLabels = map[string]string{"app.kubernetes.io/name": "montage-scaler"}

func TestScalerDeploymentIsRedundantHardenedAndProbedOverHTTP(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	d := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	wantAnti := &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
		Weight: 100,
		PodAffinityTerm: corev1.PodAffinityTerm{
			TopologyKey:   "kubernetes.io/hostname",
			LabelSelector: &metav1.LabelSelector{MatchLabels: scalerLabels},
		},
	}}}
	if pod.Affinity == nil || !reflect.DeepEqual(pod.Affinity.PodAntiAffinity, wantAnti) {
		t.Errorf("podAntiAffinity = %+v, want %+v", pod.Affinity, wantAnti)
	}
	if pod.ServiceAccountName != "montage-scaler" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want non-root 65532 with RuntimeDefault seccomp", sc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/montage/montage-scaler:dev" {
		t.Errorf("image = %q", c.Image)
	}
	if want := []string{"serve", "--grpc-addr=:9090", "--http-addr=:8080", "--log-format=json"}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	wantPorts := []corev1.ContainerPort{{Name: "grpc", ContainerPort: 9090, Protocol: "TCP"}, {Name: "http", ContainerPort: 8080, Protocol: "TCP"}}
	if !reflect.DeepEqual(c.Ports, wantPorts) {
		t.Errorf("ports = %+v, want %+v", c.Ports, wantPorts)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") ||
			p.probe.GRPC != nil {
			t.Errorf("%s probe = %+v, want HTTP GET %s on port http (plaintext; the kubelet has no client certificate)", p.name, p.probe, p.path)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext = %+v, want no privilege escalation, read-only root, all capabilities dropped", sc)
	}
	wantQuantity(t, "scaler requests.cpu", c.Resources.Requests[corev1.ResourceCPU], "50m")
	wantQuantity(t, "scaler requests.memory", c.Resources.Requests[corev1.ResourceMemory], "64Mi")
	wantQuantity(t, "scaler limits.cpu", c.Resources.Limits[corev1.ResourceCPU], "1")
	wantQuantity(t, "scaler limits.memory", c.Resources.Limits[corev1.ResourceMemory], "256Mi")

	pdb := get[policyv1.PodDisruptionBudget](t, o, "PodDisruptionBudget", ns, "montage-scaler")
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, scalerLabels) {
		t.Errorf("PDB = %+v, want minAvailable 1 of the scaler's pods", pdb.Spec)
	}
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("the Deployment's selector does not match its pods")
	}
}

func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

func TestScalerServicesRBACAndNetworkPolicy(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	d := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	podLabels := d.Spec.Template.Labels

	grpcSvc := get[corev1.Service](t, o, "Service", ns, "montage-scaler")
	grpcApp := "grpc"
	wantGRPC := []corev1.ServicePort{{Name: "grpc", Port: 9090, TargetPort: intstr.FromString("grpc"), Protocol: "TCP", AppProtocol: &grpcApp}}
	if grpcSvc.Spec.ClusterIP != corev1.ClusterIPNone || !reflect.DeepEqual(grpcSvc.Spec.Ports, wantGRPC) || !selects(grpcSvc.Spec.Selector, podLabels) {
		t.Errorf("gRPC Service = %+v, want headless, port grpc 9090, selecting the scaler", grpcSvc.Spec)
	}
	metrics := get[corev1.Service](t, o, "Service", ns, "montage-scaler-metrics")
	wantMetrics := []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), Protocol: "TCP"}}
	if metrics.Spec.ClusterIP == corev1.ClusterIPNone || !reflect.DeepEqual(metrics.Spec.Ports, wantMetrics) || !selects(metrics.Spec.Selector, podLabels) {
		t.Errorf("metrics Service = %+v, want a ClusterIP Service on http 8080 selecting the scaler", metrics.Spec)
	}
	// The ScaledObject's scalerAddress is the headless Service's DNS name.
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	if got, want := so.Spec.Triggers[0].Metadata["scalerAddress"], grpcSvc.Name+"."+grpcSvc.Namespace+".svc.cluster.local:9090"; got != want {
		t.Errorf("scalerAddress = %q, want %q", got, want)
	}

	role := get[rbacv1.ClusterRole](t, o, "ClusterRole", "", "montage-scaler")
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledobjects"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale", "statefulsets/scale"}, Verbs: []string{"get"}},
	}
	if !reflect.DeepEqual(role.Rules, wantRules) {
		t.Errorf("ClusterRole rules = %+v, want %+v", role.Rules, wantRules)
	}
	binding := get[rbacv1.ClusterRoleBinding](t, o, "ClusterRoleBinding", "", "montage-scaler")
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "montage-scaler", Namespace: ns}}
	if binding.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name}) || !reflect.DeepEqual(binding.Subjects, wantSubjects) {
		t.Errorf("ClusterRoleBinding = %+v %+v", binding.RoleRef, binding.Subjects)
	}
	get[corev1.ServiceAccount](t, o, "ServiceAccount", ns, "montage-scaler")

	np := get[networkingv1.NetworkPolicy](t, o, "NetworkPolicy", ns, "montage-scaler")
	tcp := corev1.ProtocolTCP
	grpcPort, httpPort := intstr.FromString("grpc"), intstr.FromString("http")
	from := func(namespace string) []networkingv1.NetworkPolicyPeer {
		return []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}}}}
	}
	wantNP := networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: scalerLabels},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{From: from("keda"), Ports: []networkingv1.NetworkPolicyPort{{Port: &grpcPort, Protocol: &tcp}}},
			{From: from("monitoring"), Ports: []networkingv1.NetworkPolicyPort{{Port: &httpPort, Protocol: &tcp}}},
		},
	}
	if !reflect.DeepEqual(np.Spec, wantNP) {
		t.Errorf("NetworkPolicy =\n %+v\nwant\n %+v", np.Spec, wantNP)
	}
}

func TestTLSOverlayWiresMutualTLSBothWays(t *testing.T) {
	o, pki := buildOverlay(t, "overlays/tls")

	server := get[corev1.Secret](t, o, "Secret", ns, "montage-scaler-tls")
	client := get[corev1.Secret](t, o, "Secret", "montage", "montage-scaler-client-tls")
	for _, c := range []struct {
		name   string
		secret *corev1.Secret
		want   map[string][]byte
	}{
		{"scaler", server, map[string][]byte{"tls.crt": pki.server.CertPEM, "tls.key": pki.server.KeyPEM, "ca.crt": pki.ca.PEM}},
		{"KEDA client", client, map[string][]byte{"tls.crt": pki.client.CertPEM, "tls.key": pki.client.KeyPEM, "ca.crt": pki.ca.PEM}},
	} {
		if c.secret.Type != corev1.SecretTypeTLS {
			t.Errorf("%s Secret type = %q, want kubernetes.io/tls", c.name, c.secret.Type)
		}
		if len(c.secret.Data) != len(c.want) {
			t.Errorf("%s Secret has keys %v, want %d", c.name, slices.Sorted(maps.Keys(c.secret.Data)), len(c.want))
		}
		for k, v := range c.want {
			if !bytes.Equal(c.secret.Data[k], v) {
				t.Errorf("%s Secret %s is not the file from certs/", c.name, k)
			}
		}
	}

	d := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs := []string{"serve", "--grpc-addr=:9090", "--http-addr=:8080", "--log-format=json",
		"--tls-cert=/etc/montage-scaler/tls/tls.crt", "--tls-key=/etc/montage-scaler/tls/tls.key", "--tls-client-ca=/etc/montage-scaler/tls/ca.crt"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q\nwant %q", c.Args, wantArgs)
	}
	mode := int32(0o440)
	wantVolumes := []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: server.Name, DefaultMode: &mode}}}}
	if !reflect.DeepEqual(d.Spec.Template.Spec.Volumes, wantVolumes) {
		t.Errorf("volumes = %+v, want %+v", d.Spec.Template.Spec.Volumes, wantVolumes)
	}
	wantMounts := []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/montage-scaler/tls", ReadOnly: true}}
	if !reflect.DeepEqual(c.VolumeMounts, wantMounts) {
		t.Errorf("volumeMounts = %+v, want %+v", c.VolumeMounts, wantMounts)
	}
	// Probes stay plaintext HTTP under mutual TLS.
	if c.LivenessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Error("the tls overlay changed the probes")
	}

	ta := get[kedav1alpha1.TriggerAuthentication](t, o, "TriggerAuthentication", "montage", "montage-scaler-tls")
	wantRefs := []kedav1alpha1.AuthSecretTargetRef{
		{Parameter: "caCert", Name: client.Name, Key: "ca.crt"},
		{Parameter: "tlsClientCert", Name: client.Name, Key: "tls.crt"},
		{Parameter: "tlsClientKey", Name: client.Name, Key: "tls.key"},
	}
	if !reflect.DeepEqual(ta.Spec.SecretTargetRef, wantRefs) {
		t.Errorf("secretTargetRef = %+v, want %+v", ta.Spec.SecretTargetRef, wantRefs)
	}
	if _, err := ta.ValidateCreate(nil); err != nil {
		t.Errorf("KEDA's TriggerAuthentication validation: %v", err)
	}
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	if ref := so.Spec.Triggers[0].AuthenticationRef; ref == nil || ref.Name != ta.Name || ref.Kind != "" {
		t.Errorf("external-push authenticationRef = %+v, want TriggerAuthentication %s", ref, ta.Name)
	}

	// The scaler's certificate is valid for the name KEDA dials.
	host := strings.Split(so.Spec.Triggers[0].Metadata["scalerAddress"], ":")[0]
	if err := pki.server.Cert.VerifyHostname(host); err != nil {
		t.Errorf("the test server certificate does not cover scalerAddress: %v", err)
	}
}

// descNames is a prometheus.Registerer that records the metric names the
// scaler registers, so the alerts can be checked against them.
type descNames map[string]bool

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d descNames) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqNameRE.FindStringSubmatch(desc.String()); m != nil {
			d[m[1]] = true
		}
	}
	return nil
}

// scalerMetrics are the names of every metric serve registers: the
// decision's (server.NewMetrics, the source ages) and those the components
// export themselves (source.Set.Collector over the binary's table).
func scalerMetrics(t *testing.T) descNames {
	d := descNames{}
	server.NewMetrics(d)
	d.MustRegister(server.SourceAges(nil, nil)) // Describe reads no watch
	set := source.New(components.Table(), source.Options{})
	t.Cleanup(set.Close)
	d.MustRegister(set.Collector())
	return d
}

func (d descNames) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d descNames) Unregister(prometheus.Collector) bool { return false }

var promMetricRE = regexp.MustCompile(`montage_scaler_[a-z_]+`)

func TestPrometheusObjectsScrapeRecordAndAlert(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")

	sm := get[monitoringv1.ServiceMonitor](t, o, "ServiceMonitor", ns, "montage-scaler")
	metricsSvc := get[corev1.Service](t, o, "Service", ns, "montage-scaler-metrics")
	grpcSvc := get[corev1.Service](t, o, "Service", ns, "montage-scaler")
	if !selects(sm.Spec.Selector.MatchLabels, metricsSvc.Labels) || selects(sm.Spec.Selector.MatchLabels, grpcSvc.Labels) {
		t.Errorf("ServiceMonitor selector %v must pick the metrics Service only", sm.Spec.Selector.MatchLabels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v, want port http path /metrics", sm.Spec.Endpoints)
	}

	pm := get[monitoringv1.PodMonitor](t, o, "PodMonitor", "montage", "montage")
	app := get[appsv1.Deployment](t, o, "Deployment", "montage", "montage")
	if !selects(pm.Spec.Selector.MatchLabels, app.Spec.Template.Labels) {
		t.Errorf("PodMonitor selector %v does not pick the app's pods", pm.Spec.Selector.MatchLabels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "http" ||
		app.Spec.Template.Spec.Containers[0].Ports[0].Name != "http" {
		t.Errorf("PodMonitor endpoints = %+v, want the app's http port", pm.Spec.PodMetricsEndpoints)
	}

	rule := get[monitoringv1.PrometheusRule](t, o, "PrometheusRule", "montage", "montage-scaler")
	records := map[string]string{}
	type alert struct{ expr, forDur string }
	alerts := map[string]alert{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = r.Expr.String()
			}
			if r.Alert != "" {
				var f string
				if r.For != nil {
					f = string(*r.For)
				}
				alerts[r.Alert] = alert{r.Expr.String(), f}
			}
		}
	}
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	q := so.Spec.Triggers[0].Metadata["latencyQuery"]
	wantP95 := `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="montage"}[1m])))`
	if records[q] != wantP95 {
		t.Errorf("recording rule %q = %q, want %q (the ScaledObject's latencyQuery names it)", q, records[q], wantP95)
	}

	wantAlerts := map[string]alert{
		"MontageScalerSourceFailing":    {`sum by (component) (rate(montage_scaler_source_errors_total[5m])) / sum by (component) (rate(montage_scaler_source_reads_total[5m])) > 0.5`, "5m"},
		"MontageScalerNoDecision":       {`montage_scaler_decision_available == 0`, "5m"},
		"MontageScalerPinnedAtMax":      {`montage_scaler_decision_replicas{namespace="montage", scaledobject="montage"} >= 8`, "30m"},
		"MontageScalerCalendarStale":    {`montage_scaler_source_age_seconds{component="` + "calendar" + `"} > 3600`, "15m"},
		"MontageScalerCalendarNoCopy":   {`montage_scaler_calendar_has_copy == 0`, "5m"},
		"MontageScalerCalendarWarnings": {`montage_scaler_calendar_warnings > 0`, "15m"},
		// ADR-0002's KPIs (docs/adr-0002.md); their cases are in testdata/promtool.
		"MontagePodStartupSlow":      {`montage:pod_startup_seconds:p95_24h > 300`, "15m"},
		"MontageCostPerVideoDoubled": {`montage:cost_per_video:pod_hours_24h > 2 * (montage:cost_per_video:pod_hours_24h offset 1w)`, "1h"},
	}
	if !reflect.DeepEqual(alerts, wantAlerts) {
		t.Errorf("alerts =\n %v\nwant\n %v", alerts, wantAlerts)
	}
	if d, err := time.ParseDuration(alerts["MontageScalerPinnedAtMax"].forDur); err != nil || d != 30*time.Minute {
		t.Errorf("pinned-at-max for = %v, want 30m", d)
	}
	if !strings.Contains(alerts["MontageScalerPinnedAtMax"].expr, ">= "+so.Spec.Triggers[0].Metadata["maxReplicas"]) {
		t.Error("the pinned-at-max alert's threshold is not the ScaledObject's maxReplicas")
	}

	// Every scaler metric an alert uses is one the scaler registers.
	registered := scalerMetrics(t)
	for name, a := range alerts {
		for _, m := range promMetricRE.FindAllString(a.expr, -1) {
			if !registered[m] {
				t.Errorf("alert %s uses %s, which the scaler does not export (it has %v)", name, m, registered)
			}
		}
	}
}

// The pod-cost overlay turns the writer on and grants it, in the app's
// namespace only, list and patch on pods, bound to the scaler's
// ServiceAccount; the base ClusterRole still grants no pod access at all.
func TestPodCostOverlayGrantsOnlyPodListAndPatchInTheAppsNamespace(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/pod-cost")
	d := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--pod-deletion-cost") {
		t.Errorf("the scaler's args %v lack --pod-deletion-cost", d.Spec.Template.Spec.Containers[0].Args)
	}
	role := get[rbacv1.Role](t, o, "Role", "montage", "montage-scaler-pod-cost")
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "patch"}}}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("rules %+v, want %+v", role.Rules, want)
	}
	rb := get[rbacv1.RoleBinding](t, o, "RoleBinding", "montage", "montage-scaler-pod-cost")
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 ||
		rb.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: "montage-scaler", Namespace: ns}) {
		t.Errorf("binding %+v", rb)
	}
	cr := get[rbacv1.ClusterRole](t, o, "ClusterRole", "", "montage-scaler")
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "pods") {
			t.Errorf("the base ClusterRole grants %v on pods", r.Verbs)
		}
	}
}
