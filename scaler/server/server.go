// Package server serves KEDA's ExternalScaler and montage-scaler's
// Inspector over gRPC from a registry of watches: every RPC is answered from
// the sources' latest snapshots, errors are translated to gRPC codes in one
// place, and the decisions are exported as Prometheus metrics.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/quota"
	"github.com/montage/montage-scaler/scaler/registry"
)

var (
	_ pb.ExternalScalerServer  = (*Server)(nil)
	_ scalerv1.InspectorServer = (*Server)(nil)
)

// Server answers KEDA's ExternalScaler RPCs and Inspector/Explain.
type Server struct {
	pb.UnimplementedExternalScalerServer // StreamMetricSpec: Unimplemented makes KEDA stop asking
	scalerv1.UnimplementedInspectorServer

	reg      *registry.Registry
	metrics  *Metrics
	podCosts func(namespace, name string) (any, bool)
	now      func() time.Time
	logger   *slog.Logger
	// streamTick re-evaluates open streams this often, so that time alone
	// (a calendar window opening, a reading going stale) is noticed.
	streamTick time.Duration
	done       chan struct{}
}

// Options configure a Server.
type Options struct {
	Registry   *registry.Registry
	Metrics    *Metrics // nil: none
	Now        func() time.Time
	Logger     *slog.Logger
	StreamTick time.Duration // 1s
	// PodCosts returns the pod-cost writer's latest plan for a ScaledObject,
	// which Explain shows; nil: the writer is off.
	PodCosts func(namespace, name string) (any, bool)
}

// New returns a Server over a Registry.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StreamTick <= 0 {
		o.StreamTick = time.Second
	}
	return &Server{reg: o.Registry, metrics: o.Metrics, podCosts: o.PodCosts, now: o.Now, logger: o.Logger, streamTick: o.StreamTick, done: make(chan struct{})}
}

// EndStreams makes every open StreamIsActive return cleanly (nil), which is
// what resets KEDA's reconnect backoff; call it before GracefulStop.
func (s *Server) EndStreams() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// maxMessage bounds an RPC error's message; an error naming several
// failing sources stays well under it.
const maxMessage = 4 << 10

// toStatus translates errors to gRPC codes, in one place. The message is
// valid UTF-8 (an upstream's error body may be cut inside a character, or
// binary) and bounded.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	msg := meta.Clip(err.Error(), maxMessage)
	switch {
	case meta.IsError(err):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, quota.ErrExhausted):
		// A process-wide limit refused a new watch; the running ones go on.
		return status.Error(codes.ResourceExhausted, msg)
	case errors.Is(err, decide.ErrNoDecision):
		return status.Error(codes.Unavailable, msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.Unavailable, msg)
	default:
		return status.Error(codes.Internal, msg)
	}
}

func (s *Server) watch(ctx context.Context, ref *pb.ScaledObjectRef) (*registry.Watch, error) {
	if err := CheckRequest(ref); err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, &meta.Error{Key: "scaledObjectRef", Allowed: "the request names no ScaledObject"}
	}
	return s.reg.Get(ctx, ref.GetNamespace(), ref.GetName(), ref.GetScalerMetadata())
}

// decision computes and records the decision for a watch.
func (s *Server) decision(w *registry.Watch) decide.Decision {
	d := w.Decide(s.now())
	if s.metrics != nil {
		s.metrics.record(w.Namespace(), w.Name(), d)
	}
	return d
}

// GetMetricSpec names the one metric, "desired replicas", with target 1:
// with AverageValue the HPA then asks for ceil(value) replicas. It also starts
// the watch so the sources are warm when GetMetrics comes.
func (s *Server) GetMetricSpec(ctx context.Context, ref *pb.ScaledObjectRef) (*pb.GetMetricSpecResponse, error) {
	if err := CheckRequest(ref); err != nil {
		return nil, toStatus(err)
	}
	if ref == nil {
		return nil, toStatus(&meta.Error{Key: "scaledObjectRef", Allowed: "the request names no ScaledObject"})
	}
	spec, err := s.reg.Spec(ref.GetScalerMetadata())
	if err != nil {
		return nil, toStatus(err)
	}
	// Start the watch without waiting for its first reading.
	noWait, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.reg.Get(noWait, ref.GetNamespace(), ref.GetName(), ref.GetScalerMetadata()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetMetricSpecResponse{MetricSpecs: []*pb.MetricSpec{{
		MetricName:      spec.MetricName,
		TargetSize:      1,
		TargetSizeFloat: 1,
	}}}, nil
}

// GetMetrics answers the decision as the metric value.
func (s *Server) GetMetrics(ctx context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	if err := CheckRequest(req); err != nil {
		return nil, toStatus(err)
	}
	w, err := s.watch(ctx, req.GetScaledObjectRef())
	if err != nil {
		return nil, toStatus(err)
	}
	metric := w.Spec().MetricName
	if name := req.GetMetricName(); name != "" && name != metric {
		return nil, toStatus(&meta.Error{Key: "metricName", Value: name,
			Allowed: fmt.Sprintf("this trigger serves only %q", metric)})
	}
	d := s.decision(w)
	if err := d.Err(); err != nil {
		return nil, toStatus(err)
	}
	w.MarkMetrics(s.now())
	v := *d.Desired
	return &pb.GetMetricsResponse{MetricValues: []*pb.MetricValue{{
		MetricName:       metric,
		MetricValue:      int64(math.Ceil(v)),
		MetricValueFloat: v,
	}}}, nil
}

// IsActive answers from the same snapshot as GetMetrics.
func (s *Server) IsActive(ctx context.Context, ref *pb.ScaledObjectRef) (*pb.IsActiveResponse, error) {
	w, err := s.watch(ctx, ref)
	if err != nil {
		return nil, toStatus(err)
	}
	d := s.decision(w)
	if err := d.Err(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.IsActiveResponse{Result: d.Active}, nil
}

// StreamIsActive sends the current state when it opens, then each change.
// While the decision is unavailable it keeps the stream open without sending.
// It ends cleanly (nil) on shutdown, which resets KEDA's reconnect backoff.
func (s *Server) StreamIsActive(ref *pb.ScaledObjectRef, stream grpc.ServerStreamingServer[pb.IsActiveResponse]) error {
	ctx := stream.Context()
	w, err := s.watch(ctx, ref)
	if err != nil {
		return toStatus(err)
	}
	defer w.OpenStream(s.now)()
	ticker := time.NewTicker(s.streamTick)
	defer ticker.Stop()
	done := mergeDone(s.done, ctx.Done()) // its goroutine ends with the stream's ctx
	var sent, last bool
	for {
		// The channels first, then the decision: a reading that lands
		// while the decision is read wakes Wait at once.
		changes := w.Changes()
		d := s.decision(w)
		if d.Err() == nil && (!sent || d.Active != last) {
			if err := stream.Send(&pb.IsActiveResponse{Result: d.Active}); err != nil {
				return err
			}
			sent, last = true, d.Active
		}
		if !changes.Wait(done, ticker.C) {
			return nil
		}
	}
}

// mergeDone is closed when either a or b is.
func mergeDone(a, b <-chan struct{}) <-chan struct{} {
	select {
	case <-a:
		return a
	case <-b:
		return b
	default:
	}
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-a:
		case <-b:
		}
	}()
	return out
}

// Explain returns the decision with every component's evidence. A failing
// source is reported in the explanation, not as an RPC error.
func (s *Server) Explain(ctx context.Context, req *scalerv1.ExplainRequest) (*scalerv1.Explanation, error) {
	if err := CheckRequest(req); err != nil {
		return nil, toStatus(err)
	}
	w, err := s.reg.Get(ctx, req.GetNamespace(), req.GetName(), req.GetScalerMetadata())
	if err != nil {
		return nil, toStatus(err)
	}
	d := s.decision(w)
	if s.podCosts != nil {
		if pc, ok := s.podCosts(w.Namespace(), w.Name()); ok {
			d.PodCosts = pc
		}
	}
	return ToProto(d), nil
}
