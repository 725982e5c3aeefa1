package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/montage/montage-scaler/scaler/addrfile"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/source"
)

// serverSet is what serve runs: the gRPC server (ExternalScaler and
// Inspector on scaler, health, reflection) and the HTTP server on their
// listeners, and the registry and sources behind them, which shutdown
// closes after the servers stopped.
type serverSet struct {
	logger       *slog.Logger
	grace        time.Duration // --shutdown-grace
	addrFile     string        // --addr-file; "" for none
	scaler       *server.Server
	grpcServer   *grpc.Server
	healthServer *health.Server
	reloadTLS    func(context.Context)
	httpServer   *http.Server
	serving      atomic.Bool // what /readyz says
	grpcLis      net.Listener
	httpLis      net.Listener
	reg          *registry.Registry
	sources      *source.Set
	// background runs beside the servers until shutdown (the pod-cost
	// writer).
	background []func(context.Context)
}

// open builds the gRPC and HTTP servers around s.scaler and opens their
// listeners.
func (s *serverSet) open(f serveFlags, promReg *prometheus.Registry) (err error) {
	if s.grpcServer, s.healthServer, s.reloadTLS, err = newGRPCServer(f, s.scaler, s.logger, promReg); err != nil {
		return err
	}
	s.httpServer = newHTTPServer(promReg, &s.serving)
	s.grpcLis, s.httpLis, err = listen(f)
	return err
}

// run serves gRPC and HTTP, says it is ready once both serve, and shuts
// down in order when ctx ends (nil) or a server fails (its error). The
// registry runs beside the servers until shutdown closes it, within the
// shutdown's bound.
func (s *serverSet) run(ctx context.Context, e env) error {
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	regDone := make(chan struct{})
	go func() { defer close(regDone); s.reg.Run(bg) }() // closes every watch when bg ends
	closeSources := func() {
		stopBG()
		<-regDone // the registry closes every watch, and so the pollers
		s.sources.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.reloadTLS(bg); return nil })
	for _, run := range s.background {
		g.Go(func() error { run(bg); return nil })
	}
	g.Go(func() error { return s.failed(s.serveGRPC()) })
	g.Go(func() error { return s.failed(s.serveHTTP()) })
	g.Go(func() error {
		err := s.ready(e)
		if err != nil {
			s.logger.Error("shutting down", "err", err)
		} else {
			<-gctx.Done() // ctx ended, or a server failed and said so
			if ctx.Err() != nil {
				s.logger.Info("shutting down", "reason", context.Cause(ctx).Error()) // the signal, from main
			}
		}
		s.shutdown(closeSources)
		return err
	})
	return g.Wait()
}

// serveGRPC serves gRPC until shutdown stops it (nil) or it fails.
func (s *serverSet) serveGRPC() error {
	if err := s.grpcServer.Serve(s.grpcLis); !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil // stopped before it served
}

// serveHTTP serves HTTP until shutdown stops it (nil) or it fails.
func (s *serverSet) serveHTTP() error {
	if err := s.httpServer.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// failed logs a server's failure, which shuts serve down; nil is none.
func (s *serverSet) failed(err error) error {
	if err != nil {
		s.logger.Error("server failed, shutting down", "err", err)
	}
	return err
}

// ready marks the servers ready (health SERVING, /readyz 200), says where
// they listen (the log, --addr-file, the test's onListen).
func (s *serverSet) ready(e env) error {
	s.serving.Store(true)
	s.healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	addrs := addrfile.Addrs{GRPC: s.grpcLis.Addr().String(), HTTP: s.httpLis.Addr().String()}
	s.logger.Info("serving", "grpc", addrs.GRPC, "http", addrs.HTTP, "version", version)
	if s.addrFile != "" {
		if err := addrfile.Write(s.addrFile, addrs); err != nil {
			return fmt.Errorf("--addr-file: %w", err)
		}
	}
	if e.onListen != nil {
		e.onListen(addrs.GRPC, addrs.HTTP)
	}
	return nil
}

// shutdown stops the servers (stopServers), then closes the sources with
// closeSources in what is left of the grace and shutdownMargin.
func (s *serverSet) shutdown(closeSources func()) {
	begin := time.Now()
	if s.addrFile != "" {
		// Gone while shutting down: whoever reads it next must not take
		// these addresses for a live server's.
		_ = os.Remove(s.addrFile)
	}
	s.stopServers()
	closeWithin(begin.Add(s.grace+shutdownMargin), s.logger, closeSources)
	s.logger.Info("shut down", "took", time.Since(begin).Round(time.Millisecond))
}

// shutdownMargin is how much longer than --shutdown-grace serve's exit may
// take: the sources close (pollers stop, clients close) in what is left of
// the grace after the servers stopped, and this margin. A poller waits for
// its read in flight, which a hung broker holds for --redis-timeout (1s).
const shutdownMargin = 2 * time.Second

// closeWithin runs closeAll and waits for it until deadline. Past it the
// process goes on to exit, saying so: the kernel closes whatever
// connections are left, and a broker that hangs cannot hold the exit.
func closeWithin(deadline time.Time, logger *slog.Logger, closeAll func()) {
	done := make(chan struct{})
	go func() { defer close(done); closeAll() }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		logger.Warn("the sources did not close in time; exiting without waiting for them",
			"limit", "--shutdown-grace + "+shutdownMargin.String())
	}
}

// stopServers stops in the order that matters: stop advertising (health
// NOT_SERVING, /readyz 503), end push streams cleanly (KEDA resets its
// reconnect backoff only on a clean end), drain with GracefulStop, stopping
// hard after the grace, then the HTTP server, within what is left of it.
func (s *serverSet) stopServers() {
	ctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	s.serving.Store(false)
	s.healthServer.Shutdown()
	s.scaler.EndStreams()
	stopped := make(chan struct{})
	go func() { s.grpcServer.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.logger.Warn("graceful stop timed out; stopping hard", "after", s.grace)
		s.grpcServer.Stop()
		<-stopped
	}
	if err := s.httpServer.Shutdown(ctx); err != nil {
		_ = s.httpServer.Close() // a scrape still running at the grace's end is cut
	}
}
