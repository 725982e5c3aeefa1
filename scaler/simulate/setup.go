package simulate

import (
	"fmt"
	"math"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/metafile"
	"github.com/montage/montage-scaler/scaler/simulate/hpa"
	"github.com/montage/montage-scaler/scaler/spec"
)

// Stand-ins for the URLs the simulator never contacts: the trace is the only
// source, so the metadata's URLs only need to parse.
const (
	stubBroker     = "redis://simulated.invalid:6379/0"
	stubPrometheus = "http://simulated.invalid:9090"
	stubMetrics    = "http://simulated.invalid:8080/metrics"
	stubCalendar   = "https://simulated.invalid/calendar.ics"
)

// KEDASettings are the ScaledObject fields around the trigger: KEDA's
// activation, the HPA it creates and the cpu/memory triggers beside it.
type KEDASettings struct {
	MinReplicaCount, MaxReplicaCount int32
	Cooldown, PollingInterval        time.Duration
	// Push is true for an external-push trigger: KEDA learns of activity at
	// once instead of at the next pollingInterval.
	Push     bool
	Behavior hpa.Behavior
	// CPU and Memory are Utilization targets in percent; nil: no such trigger.
	CPU, Memory *float64
	// Source says where the settings came from.
	Source string
}

// DeploySettings are deploy/'s ScaledObject around a flat metadata map:
// cpu 65 %, memory 70 %, cooldown 300 s, external-push, and its behavior.
func DeploySettings() KEDASettings {
	w60, w300 := int32(60), int32(300)
	b, _ := (&hpa.BehaviorSpec{
		ScaleUp: &hpa.RulesSpec{StabilizationWindowSeconds: &w60, Policies: []hpa.PolicySpec{
			{Type: "Percent", Value: 100, PeriodSeconds: 60}, {Type: "Pods", Value: 2, PeriodSeconds: 60}}},
		ScaleDown: &hpa.RulesSpec{StabilizationWindowSeconds: &w300, Policies: []hpa.PolicySpec{
			{Type: "Percent", Value: 25, PeriodSeconds: 60}}},
	}).Behavior()
	cpu, mem := 65.0, 70.0
	return KEDASettings{MinReplicaCount: 1, MaxReplicaCount: 8, Cooldown: 300 * time.Second, PollingInterval: 30 * time.Second,
		Push: true, Behavior: b, CPU: &cpu, Memory: &mem, Source: "deploy/ defaults (flat metadata map)"}
}

type scaledObjectDoc struct {
	Kind string `json:"kind"`
	Spec struct {
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		Advanced        *struct {
			HPA *struct {
				Behavior *hpa.BehaviorSpec `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type       string            `json:"type"`
			MetricType string            `json:"metricType"`
			Metadata   map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// Setup is what the policies read from the metadata file and the calendar.
type Setup struct {
	Spec *spec.Spec
	// Latency and Calendar are nil when the metadata configures none.
	Latency  *latency.Config
	Calendar *calendar.Config
	// Windows are the calendar's windows over the trace.
	Windows []decide.CalendarWindow
	KEDA    KEDASettings
	// TasksPerReplica is the celery component's divisor.
	TasksPerReplica float64
	Warnings        []string
}

// Prepare reads a metadata file (flat map or ScaledObject) and an optional
// .ics feed for a simulation over tr. The metadata's broker, Prometheus and
// calendar URLs are replaced by stand-ins: the trace and ics are the sources.
func Prepare(metadataFile, ics []byte, tr Trace) (*Setup, error) {
	mf, err := metafile.Parse(metadataFile)
	if err != nil {
		return nil, err
	}
	md := map[string]string{}
	for k, v := range mf.Metadata {
		md[k] = v
	}
	stub := func(key, value string) bool {
		_, a := md[key]
		_, b := md[key+"FromEnv"]
		delete(md, key+"FromEnv")
		if a || b {
			md[key] = value
		}
		return a || b
	}
	stub("brokerURL", stubBroker)
	stub("prometheusURL", stubPrometheus)
	if _, ok := md["metricsURLs"]; ok {
		md["metricsURLs"] = stubMetrics
	}
	hasCal := stub(calendar.KeyURL, stubCalendar)
	switch {
	case hasCal && ics == nil:
		return nil, fmt.Errorf("metadata: %s is set: give the feed with --calendar FILE.ics (the simulator fetches no URL)", calendar.KeyURL)
	case ics != nil:
		md[calendar.KeyURL] = stubCalendar
	}

	s := &Setup{}
	// ReplicaLookup: the model knows the current replicas, as a cluster's
	// lookup would.
	if s.Spec, err = spec.Parse(md, spec.Options{StaleAfter: 2 * time.Minute, ReplicaLookup: true}); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s.Latency, s.Calendar = s.Spec.Latency, s.Spec.Calendar
	s.Warnings = append(s.Warnings, s.Spec.Warnings...)
	if s.Spec.Celery != nil {
		s.TasksPerReplica = s.Spec.Celery.TasksPerReplica
	}

	if s.KEDA, err = kedaSettings(metadataFile, s.Spec.Policy); err != nil {
		return nil, err
	}
	if s.Calendar != nil {
		cal, err := ical.Parse(ics, ical.DefaultLimits())
		if err != nil {
			return nil, fmt.Errorf("--calendar: %w", err)
		}
		s.Warnings = append(s.Warnings, cal.Warnings...)
		e, err := cal.Expand(s.Calendar.Expansion(), tr.Start, tr.End())
		if err != nil {
			return nil, fmt.Errorf("--calendar: %w", err)
		}
		s.Warnings = append(s.Warnings, e.Warnings...)
		s.Windows = ical.ForDecide(e.Windows)
	}
	return s, nil
}

// Zone is the zone of the forecast's slots of the week (UTC without a
// forecast).
func (s *Setup) Zone() *time.Location {
	if s.Spec.Forecast != nil && s.Spec.Forecast.Zone != nil {
		return s.Spec.Forecast.Zone
	}
	return time.UTC
}

func kedaSettings(file []byte, p decide.Policy) (KEDASettings, error) {
	var doc scaledObjectDoc
	if err := yaml.Unmarshal(file, &doc); err != nil || doc.Kind != "ScaledObject" {
		// A flat map: deploy/'s ScaledObject around the metadata's clamp.
		k := DeploySettings()
		k.MinReplicaCount = int32(math.Ceil(p.Min))
		k.MaxReplicaCount = 100 // KEDA's default maxReplicaCount
		if p.Max != nil {
			k.MaxReplicaCount = int32(math.Ceil(*p.Max))
		}
		k.MaxReplicaCount = max(k.MaxReplicaCount, k.MinReplicaCount, 1)
		return k, nil
	}
	sp := doc.Spec
	k := KEDASettings{MinReplicaCount: 0, MaxReplicaCount: 100, Cooldown: 300 * time.Second,
		PollingInterval: 30 * time.Second, Source: "the ScaledObject"}
	if sp.MinReplicaCount != nil {
		k.MinReplicaCount = *sp.MinReplicaCount
	}
	if sp.MaxReplicaCount != nil {
		k.MaxReplicaCount = *sp.MaxReplicaCount
	}
	if sp.CooldownPeriod != nil {
		k.Cooldown = time.Duration(*sp.CooldownPeriod) * time.Second
	}
	if sp.PollingInterval != nil {
		if *sp.PollingInterval < 1 {
			return k, fmt.Errorf("scaledObject: spec.pollingInterval %d: want at least 1", *sp.PollingInterval)
		}
		k.PollingInterval = time.Duration(*sp.PollingInterval) * time.Second
	}
	var bs *hpa.BehaviorSpec
	if sp.Advanced != nil && sp.Advanced.HPA != nil {
		bs = sp.Advanced.HPA.Behavior
	}
	var err error
	if k.Behavior, err = bs.Behavior(); err != nil {
		return k, fmt.Errorf("scaledObject: spec.advanced.horizontalPodAutoscalerConfig.behavior: %w", err)
	}
	for i, t := range sp.Triggers {
		switch t.Type {
		case "external-push":
			k.Push = true
		case "cpu", "memory":
			if t.MetricType != "Utilization" {
				return k, fmt.Errorf("scaledObject: spec.triggers[%d] (%s): metricType %q: the simulator models Utilization only", i, t.Type, t.MetricType)
			}
			v, err := meta.New(t.Metadata).Float("value", math.NaN(), 1, 1000)
			if err != nil || math.IsNaN(v) {
				return k, fmt.Errorf("scaledObject: spec.triggers[%d] (%s): metadata.value %q: want a utilization percent from 1 to 1000", i, t.Type, t.Metadata["value"])
			}
			if t.Type == "cpu" {
				k.CPU = &v
			} else {
				k.Memory = &v
			}
		}
	}
	if err := (&hpa.KEDA{MinReplicaCount: k.MinReplicaCount, MaxReplicaCount: k.MaxReplicaCount, Cooldown: k.Cooldown}).Validate(); err != nil {
		return k, fmt.Errorf("scaledObject: %w", err)
	}
	return k, nil
}
