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

	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/suggest"
)

// DefaultMetricName is the metric KEDA asks for unless metricName says otherwise.
const DefaultMetricName = "montage-desired-replicas"

// Spec is a ScaledObject's trigger metadata, parsed and validated once.
type Spec struct {
	// Parts are the configured components, in the table's order.
	Parts      []Part
	Policy     decide.Policy
	MetricName string
	// Warnings name unknown keys (likely typos).
	Warnings []string
	// Unknown are those keys, sorted: no component reads them. KEDA must
	// not break on a key the scaler does not know, so they are warnings;
	// `check --strict` refuses them.
	Unknown []string
}

// Part is one configured component of a Spec.
type Part struct {
	Component component.Component
	Config    component.Config
}

// Find returns the config of type T among s's parts (a component's own
// packages ask for their config this way).
func Find[T component.Config](s *Spec) (T, bool) {
	return component.Find[T](s.Configs())
}

// Configs are the parts' configs, in order.
func (s *Spec) Configs() []component.Config {
	out := make([]component.Config, len(s.Parts))
	for i, p := range s.Parts {
		out[i] = p.Config
	}
	return out
}

// Options say how a command reads the metadata: with which components,
// which defaults, which of them it looks at, and whether it reads the
// sources at all.
type Options struct {
	// Table are the components the scaler knows, in the order
	// explanations list them (a component may read the configs of those
	// before it). The binary's table is package components'.
	Table []component.Component
	// StaleAfter is the serve flag's default for the staleAfter key.
	StaleAfter time.Duration
	// ReplicaLookup says the current replicas can be found without
	// replicasQuery: serve runs in a cluster, or check got --current-replicas.
	ReplicaLookup bool
	// Only names the components the command looks at; nil means all of
	// them. The others' keys are known but neither read nor judged, and no
	// component is then demanded: `calendar` never asks for the latency
	// settings, and checks its own component is there.
	Only []string
	// Replay says the command replays a trace instead of reading the
	// sources (simulate, forecast --trace): no address or credential is
	// required, read or resolved (see meta.Map.Replay), any key of a
	// component configures it, and no component is demanded.
	Replay bool
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
	for _, c := range o.Table {
		if slices.Contains(c.Keys, base) {
			return o.looksAt(c.Name)
		}
	}
	return true
}

func (o Options) looksAt(name string) bool {
	return o.Only == nil || slices.Contains(o.Only, name)
}

// KnownKeys returns every key the scaler reads, sorted: the components',
// the decision's and KEDA's own. xFromEnv forms are not listed.
func KnownKeys(table []component.Component) []string {
	out := append(slices.Clone(policyKeys), meta.KEDAKeys...)
	for _, c := range table {
		out = append(out, c.Keys...)
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
	var err error
	if s.Policy, err = parsePolicy(m, o); err != nil {
		return nil, err
	}
	ctx := component.Context{ReplicaLookup: o.ReplicaLookup, Policy: s.Policy}
	for _, c := range o.Table {
		if !o.looksAt(c.Name) {
			m.Skip(c.Keys...)
			continue
		}
		cfg, err := c.Parse(m, ctx)
		if err != nil {
			return nil, err
		}
		ctx.Parsed = append(ctx.Parsed, cfg)
		if cfg != nil {
			s.Parts = append(s.Parts, Part{Component: c, Config: cfg})
		}
	}
	if s.MetricName, err = parseMetricName(m); err != nil {
		return nil, err
	}
	if err := o.demandASource(s); err != nil {
		return nil, err
	}
	if unknown := m.Unknown(); len(unknown) > 0 {
		s.Unknown = unknown
		s.Warnings = append(s.Warnings, unknownWarning(o.Table, unknown))
	}
	return s, nil
}

// parsePolicy reads the decision's clamp and staleness.
func parsePolicy(m *meta.Map, o Options) (p decide.Policy, err error) {
	if p.Min, err = m.Float("minReplicas", 0, 0, decide.Ceiling); err != nil {
		return p, err
	}
	if max, ok, err := m.OptFloat("maxReplicas", 0, decide.Ceiling); err != nil {
		return p, err
	} else if ok {
		if max < p.Min {
			return p, &meta.Error{Key: "maxReplicas", Value: m.String("maxReplicas", ""),
				Allowed: fmt.Sprintf("must not be below minReplicas (%g)", p.Min)}
		}
		p.Max = &max
	}
	p.StaleAfter, err = m.Duration("staleAfter", o.StaleAfter, false)
	return p, err
}

func parseMetricName(m *meta.Map) (string, error) {
	name := m.String("metricName", DefaultMetricName)
	if !metricNameRE.MatchString(name) {
		return "", &meta.Error{Key: "metricName", Value: name,
			Allowed: "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 182 characters"}
	}
	return name, nil
}

// demandASource refuses metadata that configures no source of its own
// (a forecast alone refines nothing), unless the command looks at some
// components only or replays a trace.
func (o Options) demandASource(s *Spec) error {
	if o.Only != nil || o.Replay {
		return nil
	}
	var hints []string
	for _, c := range o.Table {
		if c.Configures == "" {
			continue
		}
		hints = append(hints, c.Configures)
		for _, p := range s.Parts {
			if p.Component.Name == c.Name {
				return nil
			}
		}
	}
	key := ""
	if len(o.Table) > 0 && len(o.Table[0].Keys) > 0 {
		key = o.Table[0].Keys[0]
	}
	return &meta.Error{Key: key,
		Allowed: "no source is configured: set " + orList(hints) + "; KEDA drops a xFromEnv key when the container's variable is empty"}
}

// orList joins "a", "b", "c" as "a, b, or c".
func orList(xs []string) string {
	switch len(xs) {
	case 0:
		return "a component's keys"
	case 1:
		return xs[0]
	case 2:
		return xs[0] + " or " + xs[1]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + ", or " + xs[len(xs)-1]
}

// UnknownKeyWarning is the warning for a key no component reads, with the
// nearest known key when one is close enough to be the intended one.
func UnknownKeyWarning(table []component.Component, k string) string {
	if near := Nearest(table, k); near != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", k, near)
	}
	return fmt.Sprintf("unknown key %q (no component reads it; ignored)", k)
}

// Nearest returns the known key (or xFromEnv form) closest to k by edit
// distance, ignoring case, when it is within a typo's reach of k (see
// suggest.Nearest). Otherwise "".
func Nearest(table []component.Component, k string) string {
	var candidates []string
	for _, c := range KnownKeys(table) {
		candidates = append(candidates, c, c+"FromEnv")
	}
	return suggest.Nearest(k, candidates)
}

// maxNamedUnknown is how many unknown keys one warning names.
const maxNamedUnknown = 10

// unknownWarning is one warning for every unknown key (likely typos): a
// trigger with many sends one line to the log and to Explain, not many.
func unknownWarning(table []component.Component, keys []string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return UnknownKeyWarning(table, meta.Clip(keys[0], MaxKeyBytes))
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
