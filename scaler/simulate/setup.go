package simulate

import (
	"fmt"
	"math"
	"slices"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/calendar/ical"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/metafile"
	"github.com/montage/montage-scaler/scaler/simulate/hpa"
	"github.com/montage/montage-scaler/scaler/spec"
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

// String says where the settings come from and what they are, as
// simulate's table prints them.
func (k KEDASettings) String() string {
	trigger := "external"
	if k.Push {
		trigger = "external-push"
	}
	s := fmt.Sprintf("%s: replicas %d–%d, cooldown %s, polling %s, %s", k.Source, k.MinReplicaCount, k.MaxReplicaCount,
		k.Cooldown, k.PollingInterval, trigger)
	if k.CPU != nil {
		s += fmt.Sprintf(", cpu %g %%", *k.CPU)
	}
	if k.Memory != nil {
		s += fmt.Sprintf(", memory %g %%", *k.Memory)
	}
	return s
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
		Push: true, Behavior: b, CPU: &cpu, Memory: &mem, Source: "deploy/'s, around the flat metadata map"}
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
	// File is the metadata file the setup was read from.
	File *metafile.File
	Spec *spec.Spec
	// Celery, Latency and Forecast are the spec's configs, nil when the
	// metadata configures none.
	Celery   *celery.Config
	Latency  *latency.Config
	Forecast *forecast.Config
	// Calendar is the metadata's calendar config, or the default one for a
	// feed file given to a metadata without one; nil without a feed file.
	Calendar *calendar.Config
	// parts are the components the montage policy replays: the spec's,
	// and the calendar for a feed file the metadata does not configure.
	parts []spec.Part
	// Windows are the calendar's windows over the trace.
	Windows []decide.CalendarWindow
	KEDA    KEDASettings
	// TasksPerReplica is the celery component's divisor.
	TasksPerReplica float64
	// QueueWaitTarget is the celery component's queueWaitTarget (0: none).
	QueueWaitTarget time.Duration
	Warnings        []string
	// NoCalendar says no feed file was given: the run has no calendar
	// events, whatever the metadata's calendar settings.
	NoCalendar bool
}

// NoCalendarNote is the line a command prints for a run without a feed file.
func (s *Setup) NoCalendarNote() string {
	if _, ok := spec.Find[*calendar.Config](s.Spec); ok {
		return "no --calendar: simulating without calendar events (the metadata's feed is never fetched)"
	}
	return "no --calendar: simulating without calendar events"
}

// Prepare reads a metadata file (flat map or ScaledObject) and an optional
// .ics feed (nil: none) for a simulation over tr. The trace and the feed
// are the sources: the metadata is read as a replay (spec.Options.Replay),
// so it needs no address and none of its addresses is read.
//
// table are the components the scaler knows (package components' pure
// halves); the simulator replays those that have a Replay.
func Prepare(table []component.Component, mf *metafile.File, ics []byte, tr Trace) (*Setup, error) {
	s := &Setup{File: mf}
	var err error
	// ReplicaLookup: the model knows the current replicas, as a cluster's
	// lookup would.
	if s.Spec, err = spec.Parse(mf.Metadata, spec.Options{Table: table, StaleAfter: 2 * time.Minute, ReplicaLookup: true, Replay: true}); err != nil {
		return nil, err
	}
	s.Celery, _ = spec.Find[*celery.Config](s.Spec)
	s.Latency, _ = spec.Find[*latency.Config](s.Spec)
	s.Forecast, _ = spec.Find[*forecast.Config](s.Spec)
	cal, hasCal := spec.Find[*calendar.Config](s.Spec)
	for _, p := range s.Spec.Parts {
		if p.Component.Replay != nil && (ics != nil || p.Component.Name != calendar.Name) {
			s.parts = append(s.parts, p)
		}
	}
	switch {
	case ics == nil:
		s.NoCalendar = true
	case hasCal:
		s.Calendar = cal
	default:
		s.Calendar = calendar.DefaultConfig()
		s.Calendar.MaxReplicas = s.Spec.Policy.Max
		s.parts = append(s.parts, spec.Part{Component: calendar.Component, Config: s.Calendar})
	}
	if s.Celery == nil && s.Latency == nil && s.Calendar == nil {
		return nil, fmt.Errorf("the metadata configures no component to simulate: set a celery key (tasksPerReplica, queues, brokerURL), a latency key (latencyTarget, latencyQuery, metricsURLs), or give --calendar")
	}
	s.Warnings = append(s.Warnings, s.Spec.Warnings...)
	if s.Celery != nil {
		s.TasksPerReplica = s.Celery.TasksPerReplica
		s.QueueWaitTarget = s.Celery.QueueWaitTarget
	}

	if s.KEDA, err = kedaSettings(mf, s.Spec.Policy); err != nil {
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

// depthParts are the parts with the celery component's queueWaitTarget
// left out: the depth ask (policy MontageDepth).
func (s *Setup) depthParts() []spec.Part {
	out := slices.Clone(s.parts)
	for i, p := range out {
		if c, ok := p.Config.(*celery.Config); ok {
			depth := *c
			depth.QueueWaitTarget = 0
			out[i].Config = &depth
		}
	}
	return out
}

// Zone is the zone of the forecast's slots of the week (UTC without a
// forecast).
func (s *Setup) Zone() *time.Location {
	if s.Forecast != nil && s.Forecast.Zone != nil {
		return s.Forecast.Zone
	}
	return time.UTC
}

// DefaultWaitTarget is what the report's time over the queue-wait target
// counts against when the metadata sets no queueWaitTarget.
const DefaultWaitTarget = time.Minute

// waitTarget is the queue-wait target the report counts against.
func (s *Setup) waitTarget() time.Duration {
	if s.QueueWaitTarget > 0 {
		return s.QueueWaitTarget
	}
	return DefaultWaitTarget
}

func kedaSettings(mf *metafile.File, p decide.Policy) (KEDASettings, error) {
	var doc scaledObjectDoc
	if err := yaml.Unmarshal(mf.Bytes, &doc); err != nil || doc.Kind != "ScaledObject" {
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
		PollingInterval: 30 * time.Second, Push: mf.Push, Source: meta.ObjectRef(mf.Namespace, mf.Name) + ", as the file sets it"}
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
