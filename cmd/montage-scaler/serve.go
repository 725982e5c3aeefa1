package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/kube"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/podcost"
	"github.com/montage/montage-scaler/scaler/registry"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/source"
	"github.com/montage/montage-scaler/scaler/spec"
)

type serveFlags struct {
	grpcAddr, httpAddr  string
	addrFile            string
	staleAfter          time.Duration
	logLevel, logFormat string
	idleAfter           time.Duration
	keepaliveTime       time.Duration
	keepaliveTimeout    time.Duration
	shutdownGrace       time.Duration
	firstAnswerWait     time.Duration
	redisTimeout        time.Duration
	tlsCert, tlsKey     string
	tlsClientCA         string
	tlsReloadInterval   time.Duration
	calendar            calendarFlags
	net                 netFlags
	limits              limitFlags
	kubeconfig          string
	podCost             bool
	// tuning are the components' own flags (source.RegisterFlags).
	tuning map[string]source.Tuning
}

func (f *serveFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":9090", "gRPC listen address (ExternalScaler, Inspector, health, reflection)")
	fs.StringVar(&f.httpAddr, "http-addr", ":8080", "HTTP listen address (/metrics, /healthz, /readyz)")
	fs.StringVar(&f.addrFile, "addr-file", "", `once serving, write the bound addresses to this file as JSON {"grpc":"host:port","http":"host:port"} (with port 0 in --grpc-addr/--http-addr: the ports the kernel chose); removed at shutdown`)
	fs.DurationVar(&f.staleAfter, "stale-after", 2*time.Minute, "default staleAfter: how long a failing source's last good reading is used")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", logFormatAuto, "json, text, or auto: text when stderr is a terminal, JSON otherwise")
	fs.DurationVar(&f.idleAfter, "idle-after", 10*time.Minute, "drop a ScaledObject's watch nobody asked about for this long")
	fs.DurationVar(&f.keepaliveTime, "keepalive-time", 30*time.Second, "server keepalive ping interval (KEDA's client sends none)")
	fs.DurationVar(&f.keepaliveTimeout, "keepalive-timeout", 10*time.Second, "close a connection whose ping is not answered in this time")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "GracefulStop's limit before a hard stop")
	fs.DurationVar(&f.firstAnswerWait, "first-answer-wait", 2*time.Second, "how long a new ScaledObject's first RPC waits for its first reading (KEDA's deadline is 3s)")
	fs.DurationVar(&f.redisTimeout, "redis-timeout", time.Second, "dial/read/write timeout of each Redis call")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) for gRPC over TLS; reloaded when the file changes (HTTP stays plaintext for the kubelet's probes)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "PEM CA bundle: require gRPC clients (KEDA) to present a certificate it signed (mutual TLS)")
	fs.DurationVar(&f.tlsReloadInterval, "tls-reload-interval", 10*time.Second, "how often the TLS files are checked for changes")
	f.calendar.register(fs)
	f.net.register(fs)
	f.limits.register(fs)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for the Kubernetes API, for a scaler run outside the cluster; default: the pod's service account")
	fs.BoolVar(&f.podCost, "pod-deletion-cost", false, "while a ScaledObject's decision is below its target's replicas, set each busy pod's controller.kubernetes.io/pod-deletion-cost to its worker's running tasks, so that a scale-down removes idle pods first (needs the pod-cost RBAC: deploy/overlays/pod-cost)")
	f.tuning = source.RegisterFlags(components.Table(), fs)
	return fs
}

// build checks serve's flags and makes its logger.
func (f *serveFlags) build(_ context.Context, e env) (runner, error) {
	logger, err := newLogger(e.stderr, f.logLevel, resolveLogFormat(f.logFormat, e))
	if err != nil {
		return nil, usageError(err)
	}
	if err := checkTLSFlags(*f); err != nil {
		return nil, usageError(err)
	}
	if _, err := f.limits.values(); err != nil {
		return nil, usageError(err)
	}
	return &serveCmd{f: *f, logger: logger}, nil
}

// serveCmd is a built serve: its flags, checked, and its logger, which
// says why it could not serve (exit status 1).
type serveCmd struct {
	f      serveFlags
	logger *slog.Logger
}

func (c *serveCmd) run(ctx context.Context, e env) error {
	if err := serveRun(ctx, c.f, c.logger, e); err != nil {
		c.logger.Error("serve failed", "err", err)
		return exitWith(exitNoDecision)
	}
	return nil
}

// redisLog sends go-redis's own messages (reconnects, dial failures) to our
// logger at debug level, as errors so that repeats are held back (a dead
// broker makes one per poll); the source errors that matter are logged and
// counted by the pollers.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "go-redis", "component", "go-redis", "err", fmt.Sprintf(format, v...))
}

// serveRun wires the pieces: metrics, the watches over the sources, the
// gRPC and HTTP servers; serves until ctx ends or a server fails; then shuts
// down in order.
func serveRun(ctx context.Context, f serveFlags, logger *slog.Logger, e env) error {
	redis.SetLogger(redisLog{logger}) // go-redis has one process-wide logger; main owns it
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(promReg)
	kc, err := kubeClient(logger, f.kubeconfig)
	if err != nil {
		return err
	}
	sources, reg := newWatches(f, logger, promReg, metrics, kc)
	s := &serverSet{logger: logger, grace: f.shutdownGrace, addrFile: f.addrFile, reg: reg, sources: sources}
	so := server.Options{Registry: reg, Metrics: metrics, Logger: logger}
	if f.podCost {
		if kc == nil {
			sources.Close()
			return errors.New("--pod-deletion-cost needs the Kubernetes API: run in a cluster (the pod's service account) or give --kubeconfig")
		}
		w := podcost.New(podcost.Options{Kube: kc, Logger: logger.With("component", "pod-cost"), Registerer: promReg})
		so.PodCosts = func(ns, name string) (any, bool) { return w.Report(ns, name) }
		s.background = append(s.background, func(ctx context.Context) { w.Run(ctx, podcost.DefaultEvery, podCostTargets(reg)) })
	}
	s.scaler = server.New(so)
	if err := s.open(f, promReg); err != nil {
		sources.Close()
		return err
	}
	return s.run(ctx, e)
}

// newWatches builds the sources (one hub per component) and the registry
// of watches over them, exporting their metrics on promReg.
func newWatches(f serveFlags, logger *slog.Logger, promReg *prometheus.Registry, metrics *server.Metrics, kc *kube.Client) (*source.Set, *registry.Registry) {
	var replicas latency.ReplicaLookup
	if kc != nil {
		replicas = kc // a nil *kube.Client would be a lookup that is not nil
	}
	limits, _ := f.limits.values() // checked by serve
	sources := source.New(components.Table(), source.Options{
		Logger:       logger,
		OnUpstream:   metrics.SourceRead,
		RedisTimeout: f.redisTimeout,
		Tuning:       f.tuning,
		Replicas:     replicas,
		Calendar:     f.net.calendar(f.calendar.Limits()),
		Policy:       f.net.policy(),
		Limits:       source.Limits(limits),
	})
	promReg.MustRegister(sources.Collector())
	reg := registry.New(registry.Options{
		Sources:   sources,
		Parse:     spec.Options{Table: components.Pure(), StaleAfter: f.staleAfter, ReplicaLookup: replicas != nil},
		IdleAfter: f.idleAfter,
		FirstWait: f.firstAnswerWait,
		Logger:    logger,
		OnDrop:    metrics.Forget,
	})
	promReg.MustRegister(server.SourceAges(reg, nil))
	return sources, reg
}

// kubeClient is the process's one Kubernetes client: from --kubeconfig
// when given (an unreadable file is an error), else from the pod's service
// account; nil outside a cluster, where the latency component finds current
// replicas only by a ScaledObject's replicasQuery.
func kubeClient(logger *slog.Logger, kubeconfig string) (*kube.Client, error) {
	if kubeconfig != "" {
		kc, err := kube.FromKubeconfig(kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
		return kc, nil
	}
	kc, err := kube.InCluster()
	if err != nil {
		// Said to whoever sets a latency trigger without replicasQuery
		// (its InvalidArgument); as a first line it is noise.
		logger.Debug("not in a cluster: latency triggers need replicasQuery", "reason", err.Error())
		return nil, nil
	}
	return kc, nil
}

// podCostTargets lists, for the pod-cost writer, each ScaledObject with the
// decision of the watch GetMetrics last answered from: the one the HPA acts
// on (explain or check with other metadata open watches of their own on
// the same name). A ScaledObject GetMetrics never answered for is left out.
func podCostTargets(reg *registry.Registry) func() []podcost.Target {
	return func() []podcost.Target {
		latest := map[[2]string]*registry.Watch{}
		reg.Each(func(w *registry.Watch) {
			k := [2]string{w.Namespace(), w.Name()}
			if at := w.MetricsAt(); !at.IsZero() && (latest[k] == nil || at.After(latest[k].MetricsAt())) {
				latest[k] = w
			}
		})
		ts := make([]podcost.Target, 0, len(latest))
		for _, w := range latest {
			ts = append(ts, podcost.Target{Namespace: w.Namespace(), Name: w.Name(), Decision: w.Decide(time.Now())})
		}
		return ts
	}
}

// newGRPCServer builds the gRPC server: ExternalScaler and Inspector on
// srv, health, reflection, keepalive pings, and the metrics, logging and
// recovery interceptors. reloadTLS runs until its ctx ends.
func newGRPCServer(f serveFlags, srv *server.Server, logger *slog.Logger, promReg *prometheus.Registry) (grpcServer *grpc.Server, healthServer *health.Server, reloadTLS func(context.Context), err error) {
	grpcMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	promReg.MustRegister(grpcMetrics)
	grpcLogger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		logger.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(func(c codes.Code) logging.Level {
			if c == codes.OK {
				return logging.LevelDebug
			}
			return logging.DefaultServerCodeToLevel(c)
		}),
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in RPC handler", "panic", p)
		return status.Errorf(codes.Internal, "internal error: %v", p)
	})
	creds, reloadTLS, err := grpcCreds(f, logger, promReg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("grpc credentials: %w", err)
	}
	grpcServer = grpc.NewServer(
		grpc.Creds(creds),
		// Metadata that is not UTF-8 is InvalidArgument naming the key,
		// not gRPC's Internal decoding error.
		grpc.ForceServerCodecV2(server.Codec()),
		// No MaxConnectionAge: it would end KEDA's push streams with an error.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: f.keepaliveTime, Timeout: f.keepaliveTimeout}),
		grpc.ChainUnaryInterceptor(
			grpcMetrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(grpcLogger, logOpts...),
			recovery.UnaryServerInterceptor(recoverOpt),
		),
		grpc.ChainStreamInterceptor(
			grpcMetrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(grpcLogger, logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
		),
	)
	pb.RegisterExternalScalerServer(grpcServer, srv)
	scalerv1.RegisterInspectorServer(grpcServer, srv)
	healthServer = health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	reflection.Register(grpcServer)
	grpcMetrics.InitializeMetrics(grpcServer)
	return grpcServer, healthServer, reloadTLS, nil
}

// newHTTPServer serves /metrics, /healthz and /readyz. Readiness says
// whether this server serves, never whether the sources are healthy: a
// Redis outage must not empty the Service.
func newHTTPServer(promReg *prometheus.Registry, serving *atomic.Bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{Registry: promReg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !serving.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// listen opens the gRPC and HTTP listeners.
func listen(f serveFlags) (grpcLis, httpLis net.Listener, err error) {
	if grpcLis, err = listenOn("--grpc-addr", f.grpcAddr); err != nil {
		return nil, nil, err
	}
	if httpLis, err = listenOn("--http-addr", f.httpAddr); err != nil {
		grpcLis.Close()
		return nil, nil, err
	}
	return grpcLis, httpLis, nil
}
