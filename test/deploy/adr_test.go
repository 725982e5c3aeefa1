package deploy

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/spec"
)

// ADR-0002's numbers, each asserted against the field that holds it
// (docs/adr-0002.md has the same table, with each number's test).
const (
	adrMinReplicas        = 1
	adrMaxReplicas        = 8
	adrCooldownSeconds    = 300
	adrTasksPerReplica    = 5
	adrLatencyTarget      = 80 * time.Millisecond
	adrCPUUtilization     = "65"
	adrMemoryUtilization  = "70"
	adrScaleUpWindow      = 60
	adrScaleDownWindow    = 300
	adrFallbackFailures   = 3
	adrFallbackReplicas   = 2
	adrPhase1MaxReplicas  = 4
	longestVideoTaskLimit = 600 // CELERY_TASK_TIME_LIMIT, seconds
)

func wantQuantity(t *testing.T, what string, got resource.Quantity, want string) {
	t.Helper()
	if got.Cmp(resource.MustParse(want)) != 0 {
		t.Errorf("%s = %s, want %s", what, got.String(), want)
	}
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestAppDeploymentHasTheADRResourcesAndOutlastsItsLongestTask(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	d := get[appsv1.Deployment](t, o, "Deployment", "montage", "montage")
	if d.Spec.Replicas != nil {
		t.Errorf("spec.replicas = %d, want it unset (the autoscaler owns it)", *d.Spec.Replicas)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	wantQuantity(t, "requests.cpu", c.Resources.Requests[corev1.ResourceCPU], "500m")
	wantQuantity(t, "limits.cpu", c.Resources.Limits[corev1.ResourceCPU], "2000m")
	wantQuantity(t, "requests.memory", c.Resources.Requests[corev1.ResourceMemory], "1Gi")
	wantQuantity(t, "limits.memory", c.Resources.Limits[corev1.ResourceMemory], "2Gi")

	env := envOf(c)
	for name, want := range map[string]string{
		"CELERY_TASK_ACKS_LATE":             "true",
		"CELERY_WORKER_PREFETCH_MULTIPLIER": "1",
		"CELERY_WORKER_CONCURRENCY":         strconv.Itoa(adrTasksPerReplica),
		"CELERY_TASK_TIME_LIMIT":            strconv.Itoa(longestVideoTaskLimit),
		"CELERY_TASK_QUEUES":                "celery,video",
	} {
		if got := env[name].Value; got != want {
			t.Errorf("env %s = %q, want %q", name, got, want)
		}
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace != 900 {
		t.Fatalf("terminationGracePeriodSeconds = %v, want 900", grace)
	}
	if *grace <= longestVideoTaskLimit {
		t.Errorf("terminationGracePeriodSeconds %d does not outlast the task time limit %d", *grace, longestVideoTaskLimit)
	}
	broker := env["CELERY_BROKER_URL"].ValueFrom
	if broker == nil || broker.SecretKeyRef == nil || broker.SecretKeyRef.Name != "montage-broker" || broker.SecretKeyRef.Key != "url" {
		t.Errorf("CELERY_BROKER_URL = %+v, want secret montage-broker key url", env["CELERY_BROKER_URL"])
	}
	cal := env["CALENDAR_URL"].ValueFrom
	if cal == nil || cal.SecretKeyRef == nil || cal.SecretKeyRef.Name != "montage-calendar" || cal.SecretKeyRef.Optional == nil || !*cal.SecretKeyRef.Optional {
		t.Errorf("CALENDAR_URL = %+v, want optional secret montage-calendar", env["CALENDAR_URL"])
	}
}

func int32p(v int32) *int32 { return &v }

// deref shows an optional number for an error message.
func deref(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}

func TestScaledObjectEncodesADR0002(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	s := so.Spec

	if s.ScaleTargetRef == nil || s.ScaleTargetRef.Name != "montage" || s.ScaleTargetRef.Kind != "Deployment" || s.ScaleTargetRef.APIVersion != "apps/v1" {
		t.Errorf("scaleTargetRef = %+v, want apps/v1 Deployment montage", s.ScaleTargetRef)
	}
	if s.MinReplicaCount == nil || *s.MinReplicaCount != adrMinReplicas {
		t.Errorf("minReplicaCount = %s, want %d", deref(s.MinReplicaCount), adrMinReplicas)
	}
	if s.MaxReplicaCount == nil || *s.MaxReplicaCount != adrMaxReplicas {
		t.Errorf("maxReplicaCount = %s, want %d", deref(s.MaxReplicaCount), adrMaxReplicas)
	}
	if s.CooldownPeriod == nil || *s.CooldownPeriod != adrCooldownSeconds {
		t.Errorf("cooldownPeriod = %s, want %d", deref(s.CooldownPeriod), adrCooldownSeconds)
	}
	wantFallback := &kedav1alpha1.Fallback{FailureThreshold: adrFallbackFailures, Replicas: adrFallbackReplicas, Behavior: kedav1alpha1.FallbackBehaviorCurrentReplicasIfHigher}
	if !reflect.DeepEqual(s.Fallback, wantFallback) {
		t.Errorf("fallback = %+v, want %+v", s.Fallback, wantFallback)
	}

	maxPolicy := autoscalingv2.MaxChangePolicySelect
	wantBehavior := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: int32p(adrScaleUpWindow),
			SelectPolicy:               &maxPolicy,
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 60},
				{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60},
			},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: int32p(adrScaleDownWindow),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PercentScalingPolicy, Value: 25, PeriodSeconds: 60},
			},
		},
	}
	if s.Advanced == nil || s.Advanced.HorizontalPodAutoscalerConfig == nil {
		t.Fatal("advanced.horizontalPodAutoscalerConfig is missing")
	}
	if got := s.Advanced.HorizontalPodAutoscalerConfig.Behavior; !reflect.DeepEqual(got, wantBehavior) {
		t.Errorf("behavior =\n %+v\nwant\n %+v", got, wantBehavior)
	}

	if len(s.Triggers) != 3 {
		t.Fatalf("%d triggers, want external-push, cpu, memory", len(s.Triggers))
	}
	wantResource := []kedav1alpha1.ScaleTriggers{
		{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": adrCPUUtilization}},
		{Type: "memory", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": adrMemoryUtilization}},
	}
	if !reflect.DeepEqual(s.Triggers[1:], wantResource) {
		t.Errorf("cpu and memory triggers = %+v, want %+v", s.Triggers[1:], wantResource)
	}
	ext := s.Triggers[0]
	if ext.Type != "external-push" || ext.Name != "montage" || ext.AuthenticationRef != nil {
		t.Errorf("trigger 0 = type %q name %q auth %v, want external-push montage without authenticationRef", ext.Type, ext.Name, ext.AuthenticationRef)
	}
	wantMD := map[string]string{
		"scalerAddress":      "montage-scaler.montage-scaler.svc.cluster.local:9090",
		"brokerURLFromEnv":   "CELERY_BROKER_URL",
		"queues":             "celery,video",
		"tasksPerReplica":    strconv.Itoa(adrTasksPerReplica),
		"acksLate":           "true",
		"prometheusURL":      "http://prometheus-operated.monitoring.svc:9090",
		"latencyQuery":       "montage:http_request_duration_seconds:p95",
		"latencyTarget":      "80ms",
		"calendarURLFromEnv": "CALENDAR_URL",
		"minReplicas":        strconv.Itoa(adrMinReplicas),
		"maxReplicas":        strconv.Itoa(adrMaxReplicas),
	}
	if !reflect.DeepEqual(ext.Metadata, wantMD) {
		t.Errorf("external-push metadata =\n %v\nwant\n %v", ext.Metadata, wantMD)
	}

	// The *FromEnv keys name variables the scale target's container has.
	app := get[appsv1.Deployment](t, o, "Deployment", "montage", "montage")
	env := envOf(app.Spec.Template.Spec.Containers[0])
	for _, k := range []string{"brokerURLFromEnv", "calendarURLFromEnv"} {
		if _, ok := env[ext.Metadata[k]]; !ok {
			t.Errorf("%s names %q, which the montage container does not set", k, ext.Metadata[k])
		}
	}

	// KEDA's own checks that run without a cluster (its admission webhook
	// runs them too).
	if err := kedav1alpha1.ValidateTriggers(s.Triggers); err != nil {
		t.Errorf("KEDA ValidateTriggers: %v", err)
	}
	if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(so); err != nil {
		t.Errorf("KEDA CheckReplicaCountBoundsAreValid: %v", err)
	}
	if err := kedav1alpha1.CheckFallbackValid(so); err != nil {
		t.Errorf("KEDA CheckFallbackValid: %v", err)
	}
	// The webhook's cpu/memory check needs the cluster; its rule is that the
	// workload's containers request what the triggers measure.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := app.Spec.Template.Spec.Containers[0].Resources.Requests[r]; !ok {
			t.Errorf("a %s trigger needs a %s request on the montage container", r, r)
		}
	}
}

// The external trigger's metadata goes through the scaler's own parser: one
// source of truth for keys and values. The *FromEnv keys arrive as KEDA sends
// them: holding the values of the container's variables.
func TestScaledObjectMetadataParsesWithTheScalersOwnParser(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	md := map[string]string{}
	for k, v := range so.Spec.Triggers[0].Metadata {
		md[k] = v
	}
	md["brokerURLFromEnv"] = "redis://:s3cret@redis.montage.svc:6379/0"
	md["calendarURLFromEnv"] = "https://calendar.example.org/private-0123456789abcdef/basic.ics"

	// As under serve in the cluster: the current replicas come from the
	// scale subresource (deploy/base/rbac.yaml), so replicasQuery is not needed.
	opts := spec.Options{Table: components.Pure(), StaleAfter: 2 * time.Minute, ReplicaLookup: true}
	sp, err := spec.Parse(md, opts)
	if err != nil {
		t.Fatalf("spec.Parse: %v", err)
	}
	if len(sp.Warnings) != 0 {
		t.Errorf("spec.Parse warnings %q: a key of the ScaledObject is unknown to the scaler", sp.Warnings)
	}
	cel, _ := spec.Find[*celery.Config](sp)
	cal, _ := spec.Find[*calendar.Config](sp)
	lat, _ := spec.Find[*latency.Config](sp)
	if cel == nil {
		t.Fatal("no celery source parsed")
	}
	if sp.Policy.Min != adrMinReplicas || sp.Policy.Max == nil || *sp.Policy.Max != adrMaxReplicas {
		t.Errorf("policy min %v max %v, want %d and %d", sp.Policy.Min, sp.Policy.Max, adrMinReplicas, adrMaxReplicas)
	}
	if sp.Policy.StaleAfter != 2*time.Minute {
		t.Errorf("staleAfter = %v, want the serve default 2m", sp.Policy.StaleAfter)
	}
	if sp.MetricName != spec.DefaultMetricName {
		t.Errorf("metricName = %q, want %q", sp.MetricName, spec.DefaultMetricName)
	}
	if cal == nil {
		t.Error("no calendar source parsed: the ScaledObject configures calendarURLFromEnv")
	}
	if lat == nil {
		t.Fatal("no latency source parsed: the ScaledObject configures prometheusURL + latencyQuery")
	}
	if lat.Target != adrLatencyTarget {
		t.Errorf("latency target = %v, want %v", lat.Target, adrLatencyTarget)
	}
	if lat.Query != "montage:http_request_duration_seconds:p95" {
		t.Errorf("latency query = %q", lat.Query)
	}
}

func TestCeleryTasksPerReplicaMatchesWorkerConcurrency(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/personal")
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	app := get[appsv1.Deployment](t, o, "Deployment", "montage", "montage")
	conc := envOf(app.Spec.Template.Spec.Containers[0])["CELERY_WORKER_CONCURRENCY"].Value
	if got := so.Spec.Triggers[0].Metadata["tasksPerReplica"]; got != conc {
		t.Errorf("tasksPerReplica %q differs from the worker concurrency %q: one replica absorbs as many tasks as it runs", got, conc)
	}
}

func TestScaleToZeroChangesOnlyTheMinimum(t *testing.T) {
	personal, _ := buildOverlay(t, "overlays/personal")
	zero, _ := buildOverlay(t, "overlays/scale-to-zero")
	p := get[kedav1alpha1.ScaledObject](t, personal, "ScaledObject", "montage", "montage")
	z := get[kedav1alpha1.ScaledObject](t, zero, "ScaledObject", "montage", "montage")
	if z.Spec.MinReplicaCount == nil || *z.Spec.MinReplicaCount != 0 {
		t.Errorf("minReplicaCount = %v, want 0", z.Spec.MinReplicaCount)
	}
	if got := z.Spec.Triggers[0].Metadata["minReplicas"]; got != "0" {
		t.Errorf("trigger minReplicas = %q, want \"0\"", got)
	}
	// KEDA refuses scale to zero with only cpu/memory triggers; the
	// external-push trigger is what wakes the Deployment.
	if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(z); err != nil {
		t.Errorf("KEDA CheckReplicaCountBoundsAreValid: %v", err)
	}
	z.Spec.MinReplicaCount = p.Spec.MinReplicaCount
	z.Spec.Triggers[0].Metadata["minReplicas"] = p.Spec.Triggers[0].Metadata["minReplicas"]
	if !reflect.DeepEqual(p, z) {
		t.Errorf("scale-to-zero changes more of the ScaledObject than the minimum:\n%+v\n%+v", p.Spec, z.Spec)
	}
	for _, k := range personal.Keys() {
		if k == "ScaledObject montage/montage" {
			continue
		}
		if !reflect.DeepEqual(personal[k], zero[k]) {
			t.Errorf("scale-to-zero changes %s", k)
		}
	}
}

// kubectlAutoscale is the object `kubectl autoscale deployment montage
// --min=1 --max=4 --cpu-percent=65 -n montage` sends (kubectl's
// createHorizontalPodAutoscalerV2: name and target from the Deployment,
// minReplicas only when --min > 0, one cpu Utilization metric).
func kubectlAutoscale() *autoscalingv2.HorizontalPodAutoscaler {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	hpa.APIVersion, hpa.Kind = "autoscaling/v2", "HorizontalPodAutoscaler"
	hpa.Name, hpa.Namespace = "montage", "montage"
	hpa.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "montage"}
	hpa.Spec.MinReplicas = int32p(1)
	hpa.Spec.MaxReplicas = adrPhase1MaxReplicas
	hpa.Spec.Metrics = []autoscalingv2.MetricSpec{{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: int32p(65)},
		},
	}}
	return hpa
}

func TestPhase1HPAIsWhatKubectlAutoscaleCreates(t *testing.T) {
	o, _ := buildOverlay(t, "overlays/phase1-hpa")
	got := get[autoscalingv2.HorizontalPodAutoscaler](t, o, "HorizontalPodAutoscaler", "montage", "montage")
	want := kubectlAutoscale()
	if !reflect.DeepEqual(got.TypeMeta, want.TypeMeta) {
		t.Errorf("typeMeta = %+v, want %+v", got.TypeMeta, want.TypeMeta)
	}
	if !reflect.DeepEqual(got.ObjectMeta, want.ObjectMeta) {
		t.Errorf("metadata = %+v, want %+v", got.ObjectMeta, want.ObjectMeta)
	}
	if !reflect.DeepEqual(got.Spec, want.Spec) {
		t.Errorf("spec =\n %+v\nwant\n %+v", got.Spec, want.Spec)
	}
	// The app is the same Deployment as under KEDA.
	personal, _ := buildOverlay(t, "overlays/personal")
	if !reflect.DeepEqual(get[appsv1.Deployment](t, o, "Deployment", "montage", "montage"),
		get[appsv1.Deployment](t, personal, "Deployment", "montage", "montage")) {
		t.Error("phase1-hpa's montage Deployment differs from personal's")
	}
}
