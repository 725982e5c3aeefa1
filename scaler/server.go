// Package scaler serves KEDA's ExternalScaler and montage-scaler's Inspector
// over gRPC: it parses trigger metadata into specs, keeps one watch per
// ScaledObject over shared source pollers, and answers every RPC from the
// latest snapshot.
package scaler

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
)

var (
	_ pb.ExternalScalerServer  = (*Server)(nil)
	_ scalerv1.InspectorServer = (*Server)(nil)
)

// Server answers KEDA's ExternalScaler RPCs and Inspector/Explain.
type Server struct {
	pb.UnimplementedExternalScalerServer // StreamMetricSpec: Unimplemented makes KEDA stop asking
	scalerv1.UnimplementedInspectorServer

	reg     *Registry
	metrics *Metrics
	now     func() time.Time
	logger  *slog.Logger
	// streamTick re-evaluates open streams this often, so that time alone
	// (a calendar window opening, a reading going stale) is noticed.
	streamTick time.Duration
	done       chan struct{}
}

// ServerOptions configure a Server.
type ServerOptions struct {
	Registry   *Registry
	Metrics    *Metrics // nil: none
	Now        func() time.Time
	Logger     *slog.Logger
	StreamTick time.Duration // 1s
}

// NewServer returns a Server over a Registry.
func NewServer(o ServerOptions) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StreamTick <= 0 {
		o.StreamTick = time.Second
	}
	if o.Metrics != nil {
		o.Metrics.reg = o.Registry
	}
	return &Server{reg: o.Registry, metrics: o.Metrics, now: o.Now, logger: o.Logger, streamTick: o.StreamTick, done: make(chan struct{})}
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

// toStatus translates errors to gRPC codes, in one place.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case meta.IsError(err):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, decide.ErrNoDecision):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func (s *Server) watch(ctx context.Context, ref *pb.ScaledObjectRef) (*watch, error) {
	if ref == nil {
		return nil, &meta.Error{Key: "scaledObjectRef", Allowed: "the request names no ScaledObject"}
	}
	return s.reg.Get(ctx, ref.GetNamespace(), ref.GetName(), ref.GetScalerMetadata())
}

// decision computes and records the decision for a watch.
func (s *Server) decision(w *watch) decide.Decision {
	d := w.decide(s.now())
	if s.metrics != nil {
		ns, name := w.key.namespace, w.key.name
		if d.Desired != nil {
			s.metrics.decision.WithLabelValues(ns, name).Set(*d.Desired)
		}
		for _, c := range d.Components {
			if c.Desired != nil {
				s.metrics.component.WithLabelValues(ns, name, c.Name).Set(*c.Desired)
			} else {
				s.metrics.component.DeleteLabelValues(ns, name, c.Name)
			}
			if c.Name == decide.Forecast {
				s.metrics.forecastReplicas(ns, name, c)
			}
		}
	}
	return d
}

// GetMetricSpec names the one metric, "desired replicas", with target 1:
// with AverageValue the HPA then asks for ceil(value) replicas. It also starts
// the watch so the sources are warm when GetMetrics comes.
func (s *Server) GetMetricSpec(ctx context.Context, ref *pb.ScaledObjectRef) (*pb.GetMetricSpecResponse, error) {
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
	w, err := s.watch(ctx, req.GetScaledObjectRef())
	if err != nil {
		return nil, toStatus(err)
	}
	if name := req.GetMetricName(); name != "" && name != w.spec.MetricName {
		return nil, toStatus(&meta.Error{Key: "metricName", Value: name,
			Allowed: fmt.Sprintf("this trigger serves only %q", w.spec.MetricName)})
	}
	d := s.decision(w)
	if err := d.Err(); err != nil {
		return nil, toStatus(err)
	}
	v := *d.Desired
	return &pb.GetMetricsResponse{MetricValues: []*pb.MetricValue{{
		MetricName:       w.spec.MetricName,
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
	w.streams.Add(1)
	defer func() {
		w.lastUsed.Store(s.now().UnixNano())
		w.streams.Add(-1)
	}()
	ticker := time.NewTicker(s.streamTick)
	defer ticker.Stop()
	done := mergeDone(s.done, ctx.Done()) // its goroutine ends with the stream's ctx
	var sent, last bool
	for {
		d := s.decision(w)
		if d.Err() == nil && (!sent || d.Active != last) {
			if err := stream.Send(&pb.IsActiveResponse{Result: d.Active}); err != nil {
				return err
			}
			sent, last = true, d.Active
		}
		if !w.waitChange(done, ticker.C) {
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
	w, err := s.reg.Get(ctx, req.GetNamespace(), req.GetName(), req.GetScalerMetadata())
	if err != nil {
		return nil, toStatus(err)
	}
	e, err := ToProto(s.decision(w))
	if err != nil {
		return nil, toStatus(err)
	}
	return e, nil
}
