// Package spec parses a ScaledObject's trigger metadata, once, into a Spec:
// each component's config, the decision's policy and the metric name.
package spec

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/suggest"
)

// DefaultMetricName is the metric KEDA asks for unless metricName says otherwise.
const DefaultMetricName = "montage-desired-replicas"

// Spec is a ScaledObject's trigger metadata, parsed and validated once.
type Spec struct {
	Celery     *celery.Config
	Latency    *latency.Config
	Calendar   *calendar.Config
	Forecast   *forecast.Config
	Policy     decide.Policy
	MetricName string
	// Warnings name unknown keys (likely typos).
	Warnings []string
	// Unknown are those keys, sorted: no component reads them. KEDA must
	// not break on a key the scaler does not know, so they are warnings;
	// `check --strict` refuses them.
	Unknown []string
}

// Options say how a command reads the metadata: with which defaults, which
// components it looks at, and whether it reads the sources at all.
type Options struct {
	// StaleAfter is the serve flag's default for the staleAfter key.
	StaleAfter time.Duration
	// ReplicaLookup says the current replicas can be found without
	// replicasQuery: serve runs in a cluster, or check got --current-replicas.
	ReplicaLookup bool
	// Components names the components the command looks at (decide.Celery,
	// decide.Latency, decide.Calendar, decide.Forecast); nil means all of
	// them. The others' keys are known but neither read nor judged, and no
	// component is then demanded: `calendar` never asks for the latency
	// settings, and checks its own component is there.
	Components []string
	// Replay says the command replays a trace instead of reading the
	// sources (simulate, forecast --trace): no address or credential is
	// required, read or resolved (see meta.Map.Replay), any key of a
	// component configures it, and no component is demanded.
	Replay bool
}

// components are the sources of evidence, in decide's order (the forecast
// reads the celery component's broker), with the keys each reads and how
// it fills its part of a Spec.
var components = []struct {
	name  string
	keys  func() []string
	parse func(m *meta.Map, o Options, s *Spec) (err error)
}{
	{decide.Celery, celery.Keys, func(m *meta.Map, _ Options, s *Spec) (err error) {
		s.Celery, err = celery.ParseConfig(m)
		return err
	}},
	{decide.Latency, latency.Keys, func(m *meta.Map, o Options, s *Spec) (err error) {
		s.Latency, err = latency.ParseConfig(m, o.ReplicaLookup)
		return err
	}},
	{decide.Calendar, calendar.Keys, func(m *meta.Map, _ Options, s *Spec) (err error) {
		s.Calendar, err = calendar.ParseConfig(m)
		return err
	}},
	{decide.Forecast, forecast.Keys, func(m *meta.Map, _ Options, s *Spec) (err error) {
		zone, err := calendarZone(m, s)
		if err != nil {
			return err
		}
		s.Forecast, err = forecast.ParseConfig(m, s.Celery, zone)
		return err
	}},
}

// policyKeys are the keys of the decision itself.
var policyKeys = []string{"minReplicas", "maxReplicas", "staleAfter", "metricName"}

// Wants reports whether a command reading with o uses key: a key of a
// component it looks at (or its xFromEnv form), a key of the decision, or
// a key no component knows (which Parse reports). A replay uses no
// xFromEnv key: each names an address or a credential. Commands resolve
// only the xFromEnv keys they want (metafile.Resolve).
func (o Options) Wants(key string) bool {
	base, fromEnv := strings.CutSuffix(key, "FromEnv")
	if fromEnv && o.Replay {
		return false
	}
	for _, c := range components {
		if slices.Contains(c.keys(), base) {
			return o.Components == nil || slices.Contains(o.Components, c.name)
		}
	}
	return true
}

// KnownKeys returns every key the scaler reads, sorted: the components',
// the decision's and KEDA's own. xFromEnv forms are not listed.
func KnownKeys() []string {
	out := append(slices.Clone(policyKeys), meta.KEDAKeys...)
	for _, c := range components {
		out = append(out, c.keys()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,180}[a-zA-Z0-9])?$`)

// Parse reads trigger metadata into a Spec. Every error is a *meta.Error
// naming the key, the value (credentials redacted) and what is allowed.
// xFromEnv keys hold values, as KEDA sends them (a command that reads a
// metadata file resolves them first: see metafile.Resolve).
func Parse(md map[string]string, o Options) (*Spec, error) {
	if err := CheckLimits(md); err != nil {
		return nil, err
	}
	m := meta.New(md)
	if o.Replay {
		m = meta.NewReplay(md)
	}
	return parse(m, o)
}

func parse(m *meta.Map, o Options) (*Spec, error) {
	s := &Spec{}
	for _, c := range components {
		if o.Components != nil && !slices.Contains(o.Components, c.name) {
			m.Skip(c.keys()...)
			continue
		}
		if err := c.parse(m, o, s); err != nil {
			return nil, err
		}
	}
	var err error
	if s.Policy.Min, err = m.Float("minReplicas", 0, 0, decide.Ceiling); err != nil {
		return nil, err
	}
	if max, ok, err := m.OptFloat("maxReplicas", 0, decide.Ceiling); err != nil {
		return nil, err
	} else if ok {
		if max < s.Policy.Min {
			return nil, &meta.Error{Key: "maxReplicas", Value: m.String("maxReplicas", ""),
				Allowed: fmt.Sprintf("must not be below minReplicas (%g)", s.Policy.Min)}
		}
		s.Policy.Max = &max
	}
	if s.Policy.StaleAfter, err = m.Duration("staleAfter", o.StaleAfter, false); err != nil {
		return nil, err
	}
	s.MetricName = m.String("metricName", DefaultMetricName)
	if !metricNameRE.MatchString(s.MetricName) {
		return nil, &meta.Error{Key: "metricName", Value: s.MetricName,
			Allowed: "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 182 characters"}
	}
	if s.Celery == nil && s.Latency == nil && s.Calendar == nil && o.Components == nil && !o.Replay {
		return nil, &meta.Error{Key: "brokerURL",
			Allowed: "no source is configured: set brokerURL (or brokerURLFromEnv), prometheusURL or metricsURLs, or calendarURL (or calendarURLFromEnv); KEDA drops a xFromEnv key when the container's variable is empty"}
	}
	if s.Calendar != nil {
		s.Calendar.MaxReplicas = s.Policy.Max // a hint above maxReplicas is clamped, and said so
	}
	if unknown := m.Unknown(); len(unknown) > 0 {
		s.Unknown = unknown
		s.Warnings = append(s.Warnings, unknownWarning(unknown))
	}
	return s, nil
}

// UnknownKeyWarning is the warning for a key no component reads, with the
// nearest known key when one is close enough to be the intended one.
func UnknownKeyWarning(k string) string {
	if near := Nearest(k); near != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", k, near)
	}
	return fmt.Sprintf("unknown key %q (no component reads it; ignored)", k)
}

// Nearest returns the known key (or xFromEnv form) closest to k by edit
// distance, ignoring case, when it is within a typo's reach of k (see
// suggest.Nearest). Otherwise "".
func Nearest(k string) string {
	var candidates []string
	for _, c := range KnownKeys() {
		candidates = append(candidates, c, c+"FromEnv")
	}
	return suggest.Nearest(k, candidates)
}

// maxNamedUnknown is how many unknown keys one warning names.
const maxNamedUnknown = 10

// unknownWarning is one warning for every unknown key (likely typos): a
// trigger with many sends one line to the log and to Explain, not many.
func unknownWarning(keys []string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return UnknownKeyWarning(meta.Clip(keys[0], MaxKeyBytes))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d unknown metadata keys ignored (typos?):", len(keys))
	for i, k := range keys[:min(len(keys), maxNamedUnknown)] {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q", meta.Clip(k, MaxKeyBytes))
	}
	if n := len(keys) - maxNamedUnknown; n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	return b.String()
}

// Key identifies metadata: equal maps give equal keys. It is a SHA-256 of
// a canonical form (sorted, length-prefixed), so that a cache keyed by it
// holds 32 bytes per entry whatever the metadata's size.
func Key(md map[string]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	for _, k := range keys {
		field(k)
		field(md[k])
	}
	return string(h.Sum(nil))
}

// calendarZone is the calendar's zone, forecastTimezone's default: the
// parsed calendar's, else calendarTimezone's own value (a command that does
// not look at the calendar, or a trigger with no feed), else nil.
func calendarZone(m *meta.Map, s *Spec) (*time.Location, error) {
	if s.Calendar != nil {
		return s.Calendar.Timezone, nil
	}
	return calendar.Timezone(m)
}
