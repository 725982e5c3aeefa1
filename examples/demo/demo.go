package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
)

// demo is the running demo: the scaler's clients, the ScaledObject asked
// about and its metric, and the broker's client the tasks go through.
type demo struct {
	out    io.Writer
	ks     pb.ExternalScalerClient
	insp   scalerv1.InspectorClient
	ref    *pb.ScaledObjectRef
	metric string
	rdb    *redis.Client
}

// watch asks for the metric spec, then follows KEDA's push path: every
// state the stream sends is printed until ctx ends.
func (d *demo) watch(ctx context.Context) error {
	// The server serves once its addr file is there: no retry needed.
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	spec, err := d.ks.GetMetricSpec(cctx, d.ref)
	cancel()
	if err != nil {
		return fmt.Errorf("GetMetricSpec: %w", err)
	}
	d.metric = spec.MetricSpecs[0].MetricName
	fmt.Fprintf(d.out, "GetMetricSpec: metric %q, targetSizeFloat %g\n", d.metric, spec.MetricSpecs[0].TargetSizeFloat)
	stream, err := d.ks.StreamIsActive(ctx, d.ref)
	if err != nil {
		return err
	}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			fmt.Fprintf(d.out, "  >> StreamIsActive pushed active=%t\n", r.Result)
		}
	}()
	return nil
}

// play runs the story: tasks queued, taken and finished by a simulated
// worker, and after each step what KEDA is told. done is false when ctx
// ended first.
func (d *demo) play(ctx context.Context) (done bool, err error) {
	w := &worker{rdb: d.rdb, queues: []string{"celery", "video"}}
	steps := []struct {
		label string
		do    func() error
	}{
		{"idle", func() error { return nil }},
		{"creator uploads 23 videos", func() error { return enqueue(ctx, d.rdb, "celery", 23, 0) }},
		{"5 urgent thumbnails (priority 0)", func() error { return enqueue(ctx, d.rdb, "video", 5, 0) }},
		{"4 workers take tasks (acks_late)", func() error { return w.take(ctx, 4) }},
		{"workers finish 4, take 4", func() error { w.finish(ctx, 4); return w.take(ctx, 4) }},
		{"workers finish 4, take 4", func() error { w.finish(ctx, 4); return w.take(ctx, 4) }},
		{"workers finish 4, take 8", func() error { w.finish(ctx, 4); return w.take(ctx, 8) }},
		{"workers finish 8, take 8", func() error { w.finish(ctx, 8); return w.take(ctx, 8) }},
		{"workers finish 6, 2 long renders run", func() error { w.finish(ctx, 6); return nil }},
		{"all done", func() error { w.finish(ctx, 100); return nil }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return false, err
		}
		// One poll (250 ms) and a margin, then ask as KEDA would.
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(1200 * time.Millisecond):
		}
		if err := d.show(ctx, s.label); err != nil {
			return false, err
		}
	}
	return true, nil
}

// show prints what KEDA is told after a step: the metric, the HPA's
// replicas and whether the trigger is active, beside the backlog the
// Inspector explains it by.
func (d *demo) show(ctx context.Context, label string) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := d.ks.GetMetrics(cctx, &pb.GetMetricsRequest{ScaledObjectRef: d.ref, MetricName: d.metric})
	if err != nil {
		fmt.Fprintf(d.out, "%-38s GetMetrics error: %v\n", label, err)
		return nil
	}
	e, err := d.insp.Explain(cctx, &scalerv1.ExplainRequest{Name: d.ref.Name, Namespace: d.ref.Namespace, ScalerMetadata: d.ref.ScalerMetadata})
	if err != nil {
		return err
	}
	var queued, inFlight any
	for _, c := range e.Components {
		if c.Name == "celery" && c.Detail != nil {
			queued, inFlight = c.Detail.AsMap()["queued"], c.Detail.AsMap()["inFlight"]
		}
	}
	fmt.Fprintf(d.out, "%-38s queued=%-4v inFlight=%-3v -> desired %.1f replicas (HPA: %d), active=%t\n",
		label, queued, inFlight, m.MetricValues[0].MetricValueFloat, int(ceil(m.MetricValues[0].MetricValueFloat)), e.GetActive())
	return nil
}

// explain runs `montage-scaler explain` as a person asks the running
// server, on the same metadata, written to a file in dir.
func (d *demo) explain(ctx context.Context, bin, dir, grpcAddr string) error {
	mdPath := filepath.Join(dir, "demo.yaml")
	var md strings.Builder
	for _, k := range slices.Sorted(maps.Keys(d.ref.ScalerMetadata)) {
		fmt.Fprintf(&md, "%s: %q\n", k, d.ref.ScalerMetadata[k])
	}
	if err := os.WriteFile(mdPath, []byte(md.String()), 0o600); err != nil {
		return err
	}
	explain := []string{bin, "explain", "--addr", grpcAddr, "--metadata", mdPath, "--namespace", d.ref.Namespace, "--name", d.ref.Name, "--format", "text"}
	fmt.Fprintf(d.out, "\n$ %s\n", strings.Join(explain, " "))
	ex := exec.CommandContext(ctx, explain[0], explain[1:]...)
	ex.Stdout, ex.Stderr = d.out, d.out
	if err := ex.Run(); err != nil {
		fmt.Fprintf(d.out, "(explain: %v)\n", err)
	}
	return nil
}

// nextSteps is what the demo suggests last; every command in it runs as
// written (cmd/montage-scaler's TestTheDemosNextStepsRunAsWritten).
//
//go:embed next.txt
var nextSteps string
