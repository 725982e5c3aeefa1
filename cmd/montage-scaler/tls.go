package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/montage/montage-scaler/scaler/tlsconfig"
)

// checkTLSFlags says whether the TLS flags make sense together.
func checkTLSFlags(f serveFlags) error {
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	case f.tlsClientCA != "" && f.tlsCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
	case f.tlsReloadInterval <= 0:
		return errors.New("--tls-reload-interval must be positive")
	}
	return nil
}

// grpcCreds returns the gRPC server's transport credentials: plaintext
// without --tls-cert, else TLS (mutual with --tls-client-ca) from files that
// are re-read every --tls-reload-interval by the returned function, which
// runs until its context ends. The certificate's expiry and the reloads are
// exported on reg for alerts.
func grpcCreds(f serveFlags, logger *slog.Logger, reg prometheus.Registerer) (credentials.TransportCredentials, func(context.Context), error) {
	if f.tlsCert == "" {
		return insecure.NewCredentials(), func(context.Context) {}, nil
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "montage_scaler_tls_reloads_total",
		Help: "Changed TLS files seen, by result (ok: now served; error: the previous material is kept).",
	}, []string{"result"})
	reloads.WithLabelValues("ok")
	reloads.WithLabelValues("error")
	expiry := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "montage_scaler_tls_cert_not_after_timestamp_seconds",
		Help: "NotAfter of the served gRPC certificate, Unix seconds.",
	})
	var r *tlsconfig.Reloader
	r, err := tlsconfig.New(tlsconfig.Options{
		CertFile:     f.tlsCert,
		KeyFile:      f.tlsKey,
		ClientCAFile: f.tlsClientCA,
		Interval:     f.tlsReloadInterval,
		Now:          time.Now,
		Logger:       logger.With("component", "tls"),
		OnReload: func(err error) {
			if err != nil {
				reloads.WithLabelValues("error").Inc()
				return
			}
			reloads.WithLabelValues("ok").Inc()
			expiry.Set(float64(r.Certificate().NotAfter.Unix()))
		},
	})
	if err != nil {
		return nil, nil, err
	}
	expiry.Set(float64(r.Certificate().NotAfter.Unix()))
	if err := errors.Join(reg.Register(reloads), reg.Register(expiry)); err != nil {
		return nil, nil, err
	}
	logger.Info("gRPC over TLS", "cert", f.tlsCert, "notAfter", r.Certificate().NotAfter, "clientCertificates", f.tlsClientCA != "")
	return credentials.NewTLS(r.Config()), r.Run, nil
}
