package components_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/montage/montage-scaler/scaler/component"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/poll"
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
)

// The test-only "pinned" component asks for the replicas its one key
// names. It is all a component is: a config, a poll, an opinion, a
// collector, and one line in the table (below).

type pinnedConfig struct{ replicas float64 }

func (pinnedConfig) Claims() []quota.Claim { return nil }

var pinned = component.Component{
	Name: "pinned",
	Keys: []string{"pinnedReplicas"},
	Parse: func(m *meta.Map, _ component.Context) (component.Config, error) {
		v, ok, err := m.OptFloat("pinnedReplicas", 0, decide.Ceiling)
		if !ok || err != nil {
			return nil, err
		}
		return pinnedConfig{v}, nil
	},
	Configures: "pinnedReplicas",
	Replay: func(c component.Config, _ component.World) (decide.Opinion, error) {
		return decide.Opinion{Desired: decide.Ptr(c.(pinnedConfig).replicas)}, nil
	},
}

type pinnedHub struct {
	hub   *poll.Hub[float64, pinnedConfig, float64, float64]
	reads prometheus.Counter
}

func (h *pinnedHub) Source(r source.Request) registry.Source {
	c := r.Config.(pinnedConfig)
	return source.Of(pinned, h.hub.Acquire(c.replicas, c), func(v float64, _ time.Time) (decide.Opinion, error) {
		return decide.Opinion{Desired: decide.Ptr(v), Active: v > 0, Detail: map[string]float64{"pinned": v}}, nil
	})
}

func (h *pinnedHub) Close()                              { h.hub.Close() }
func (h *pinnedHub) Describe(ch chan<- *prometheus.Desc) { h.reads.Describe(ch) }
func (h *pinnedHub) Collect(ch chan<- prometheus.Metric) { h.reads.Collect(ch) }

// pinnedFlags is the component's own serve flag: --pinned-extra replicas
// added to every reading.
func pinnedFlags(fs *flag.FlagSet) source.Tuning {
	return fs.Float64("pinned-extra", 0, "replicas the pinned component adds")
}

func newPinnedHub(_ source.Options, t source.Tuning) source.Hub {
	extra := 0.0
	if v, ok := t.(*float64); ok {
		extra = *v
	}
	h := &pinnedHub{reads: prometheus.NewCounter(prometheus.CounterOpts{Name: "montage_scaler_pinned_reads_total", Help: "Reads of the pinned component."})}
	h.hub = poll.NewHub(func(_ float64, c pinnedConfig, _ func() []pinnedConfig) *poll.Poller[float64] {
		return poll.Start(func(context.Context) (float64, error) {
			h.reads.Inc()
			return c.replicas + extra, nil
		}, poll.Options{Interval: time.Hour})
	})
	return h
}

// TestAComponentIsOnePackageAndOneTableLine adds the pinned component to
// the binary's table with one line and finds it everywhere a component
// shows: its key parsed and known, its source made and decided on, its
// reading in the explanation, its own flag reaching its hub, its metrics
// exported, its replay in the
// simulator's readings, a metadata with only its key accepted as a source.
func TestAComponentIsOnePackageAndOneTableLine(t *testing.T) {
	table := append(components.Table(), source.Component{Component: pinned, Flags: pinnedFlags, NewHub: newPinnedHub}) // the one line

	md := map[string]string{"pinnedReplicas": "3", "maxReplicas": "8"}
	sp, err := spec.Parse(md, spec.Options{Table: source.Pure(table), StaleAfter: time.Minute})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(sp.Parts) != 1 || sp.Parts[0].Component.Name != "pinned" || len(sp.Unknown) != 0 {
		t.Fatalf("parts %+v, unknown %v: want the pinned component alone, its key known", sp.Parts, sp.Unknown)
	}
	if _, err := spec.Parse(map[string]string{"maxReplicas": "8"}, spec.Options{Table: source.Pure(table)}); err == nil || !strings.Contains(err.Error(), "pinnedReplicas") {
		t.Errorf("metadata with no source: error %v does not offer pinnedReplicas", err)
	}

	// Its own flag reaches its hub, as serve registers and parses them.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	tuning := source.RegisterFlags(table, fs)
	if err := fs.Parse([]string{"--pinned-extra", "1", "--poll-interval", "50ms"}); err != nil {
		t.Fatalf("the table's flags: %v", err)
	}
	set := source.New(table, source.Options{Tuning: tuning})
	defer set.Close()
	reg := registry.New(registry.Options{Sources: set, Parse: spec.Options{Table: source.Pure(table), StaleAfter: time.Minute}, FirstWait: 10 * time.Second})
	defer reg.Close()
	d, err := reg.Decide(t.Context(), "media", "worker", md)
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	if d.Desired == nil || *d.Desired != 4 || !d.Active || len(d.Components) != 1 || d.Components[0].Name != "pinned" {
		t.Fatalf("decision %+v: want 3 + 1 (--pinned-extra) replicas, active, from the pinned component", d)
	}
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(set.Collector())
	if err := testutil.GatherAndCompare(reg2, strings.NewReader(`# HELP montage_scaler_pinned_reads_total Reads of the pinned component.
# TYPE montage_scaler_pinned_reads_total counter
montage_scaler_pinned_reads_total 1
`), "montage_scaler_pinned_reads_total"); err != nil {
		t.Errorf("the hub's own collector, exported by the Set: %v", err)
	}
	op, err := pinned.Replay(sp.Parts[0].Config, component.World{})
	if err != nil || op.Desired == nil || *op.Desired != 3 {
		t.Errorf("replay: %+v, %v", op, err)
	}
}
