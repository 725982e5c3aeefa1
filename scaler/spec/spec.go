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
}

// Options are the defaults a spec is read with.
type Options struct {
	// StaleAfter is the serve flag's default for the staleAfter key.
	StaleAfter time.Duration
	// ReplicaLookup says the current replicas can be found without
	// replicasQuery: serve runs in a cluster, or check got --current-replicas.
	ReplicaLookup bool
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
	s := &Spec{}
	var err error
	if s.Celery, err = celery.ParseConfig(m); err != nil {
		return nil, err
	}
	if s.Latency, err = latency.ParseConfig(m, o.ReplicaLookup); err != nil {
		return nil, err
	}
	if s.Calendar, err = calendar.ParseConfig(m); err != nil {
		return nil, err
	}
	if s.Forecast, err = forecast.ParseConfig(m, s.Celery); err != nil {
		return nil, err
	}
	if s.Policy.Min, err = m.Float("minReplicas", 0, 0, 10000); err != nil {
		return nil, err
	}
	if max, ok, err := m.OptFloat("maxReplicas", 0, 10000); err != nil {
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
	if s.Celery == nil && s.Latency == nil && s.Calendar == nil {
		return nil, &meta.Error{Key: "brokerURL",
			Allowed: "no source is configured: set brokerURL (or brokerURLFromEnv), prometheusURL or metricsURLs, or calendarURL (or calendarURLFromEnv); KEDA drops a xFromEnv key when the container's variable is empty"}
	}
	if s.Calendar != nil {
		s.Calendar.MaxReplicas = s.Policy.Max // a hint above maxReplicas is clamped, and said so
	}
	if w := unknownWarning(m.Unknown()); w != "" {
		s.Warnings = append(s.Warnings, w)
	}
	return s, nil
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
		return fmt.Sprintf("unknown metadata key %q ignored (a typo?)", meta.Clip(keys[0], MaxKeyBytes))
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
