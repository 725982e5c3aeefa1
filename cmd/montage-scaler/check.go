package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler"
	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/forecast"
	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/meta"
)

// printDecision writes d in the chosen format and returns the exit status.
func printDecision(e env, d decide.Decision, format string) int {
	var err error
	if format == "text" {
		err = scaler.WriteText(e.stdout, d)
	} else {
		err = scaler.WriteJSON(e.stdout, d)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler: print: %v\n", err)
		return exitNoDecision
	}
	if d.Desired == nil {
		return exitNoDecision
	}
	return exitOK
}

func checkFormat(format string) error {
	if format != "json" && format != "text" {
		return fmt.Errorf("--format %q: want json or text", format)
	}
	return nil
}

func check(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	file := fs.String("metadata", "", "file with trigger metadata (flat key: value map) or a ScaledObject YAML")
	var at instant
	fs.Var(&at, "at", "evaluate at this instant (RFC3339); default now")
	format := fs.String("format", "json", "json or text")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the sources' first reading")
	staleAfter := fs.Duration("stale-after", 2*time.Minute, "default staleAfter")
	currentReplicas := fs.Int("current-replicas", -1, "current replicas of the Deployment, for the latency component (instead of the Kubernetes API or replicasQuery)")
	var cf calendarFlags
	cf.register(fs)
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
		return exitUsage
	}
	now := at.clock()
	if err := checkFormat(*format); err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
		return exitUsage
	}
	l, code := loadMetadata(*file, "check", e)
	if l == nil {
		return code
	}
	var replicas latency.ReplicaLookup
	if *currentReplicas >= 0 {
		replicas = latency.FixedReplicas(*currentReplicas)
	}
	parse := scaler.ParseOptions{StaleAfter: *staleAfter, ReplicaLookup: replicas != nil}
	spec, err := scaler.ParseSpec(l.md, parse)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
		return exitUsage
	}
	limits := cf.Limits()
	if spec.Calendar != nil {
		if err := calendar.CheckURL(ctx, spec.Calendar.URL, limits); err != nil {
			fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
			return exitUsage
		}
	}

	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	celeryHub := celery.NewHub(celery.HubOptions{PollInterval: 250 * time.Millisecond, Now: now, Logger: logger, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	defer celeryHub.Close()
	latencyHub := latency.NewHub(latency.HubOptions{Now: now, Logger: logger, Replicas: replicas})
	defer latencyHub.Close()
	calendarHub := calendar.NewHub(calendar.HubOptions{Now: now, Logger: logger, Limits: limits})
	defer calendarHub.Close()
	forecastHub := forecast.NewHub(forecast.HubOptions{Now: now, Logger: logger, ReadOnly: true})
	defer forecastHub.Close()
	reg := scaler.NewRegistry(scaler.RegistryOptions{
		Hubs:      scaler.Hubs{Celery: celeryHub, Latency: latencyHub, Calendar: calendarHub, Forecast: forecastHub},
		Parse:     parse,
		Now:       now,
		FirstWait: *timeout,
		Logger:    logger,
	})
	d, err := reg.Decide(ctx, l.file.Namespace, l.file.Name, l.md)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler check: %v\n", err)
		return exitUsage
	}
	return printDecision(e, d, *format)
}

// loaded is a metadata file read for check, explain and calendar.
type loaded struct {
	file *scaler.MetadataFile
	md   map[string]string // xFromEnv resolved from this command's environment
}

// loadMetadata reads FILE and resolves its xFromEnv keys; a nil result comes
// with the exit status (the message is on stderr).
func loadMetadata(file, cmd string, e env) (*loaded, int) {
	if file == "" {
		fmt.Fprintf(e.stderr, "montage-scaler %s: --metadata FILE is required\n", cmd)
		return nil, exitUsage
	}
	mf, err := scaler.ReadMetadataFile(file)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler %s: %v\n", cmd, err)
		return nil, exitUsage
	}
	md, err := resolveFromEnv(mf.Metadata, e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler %s: %v\n", cmd, err)
		return nil, exitUsage
	}
	return &loaded{file: mf, md: md}, exitOK
}

// specFromFile is loadMetadata plus parsing into a Spec.
func specFromFile(file, cmd string, o scaler.ParseOptions, e env) (*scaler.Spec, int) {
	l, code := loadMetadata(file, cmd, e)
	if l == nil {
		return nil, code
	}
	spec, err := scaler.ParseSpec(l.md, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler %s: %v\n", cmd, err)
		return nil, exitUsage
	}
	return spec, exitOK
}

// resolveFromEnv replaces each xFromEnv value, which in check and explain
// names a variable of this command's environment, with that variable's value,
// as KEDA does with the scale target's container environment.
func resolveFromEnv(md map[string]string, getenv func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(md))
	for k, v := range md {
		if strings.HasSuffix(k, "FromEnv") && strings.TrimSpace(v) != "" {
			val, ok := getenv(strings.TrimSpace(v))
			if !ok || strings.TrimSpace(val) == "" {
				return nil, &meta.Error{Key: k, Value: v, Allowed: "names an environment variable of this command that is not set or empty"}
			}
			v = val
		}
		out[k] = v
	}
	return out, nil
}

func explain(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address of a running montage-scaler serve")
	file := fs.String("metadata", "", "file with trigger metadata (flat key: value map) or a ScaledObject YAML")
	name := fs.String("name", "", "ScaledObject name (default: from the ScaledObject file, else \"explain\")")
	namespace := fs.String("namespace", "", "ScaledObject namespace (default: from the ScaledObject file, else \"default\")")
	format := fs.String("format", "json", "json or text")
	timeout := fs.Duration("timeout", 10*time.Second, "RPC deadline")
	caFile := fs.String("tls-ca", "", "PEM CA that signed the server's certificate: talk TLS to a serve --tls-cert")
	certFile := fs.String("tls-cert", "", "PEM client certificate, for a serve --tls-client-ca (mutual TLS)")
	keyFile := fs.String("tls-key", "", "PEM key of --tls-cert")
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(e.stderr, "montage-scaler explain: %v\n", err)
		return exitUsage
	}
	if err := checkFormat(*format); err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler explain: %v\n", err)
		return exitUsage
	}
	l, code := loadMetadata(*file, "explain", e)
	if l == nil {
		return code
	}
	req := &scalerv1.ExplainRequest{Name: firstNonEmpty(*name, l.file.Name, "explain"), Namespace: firstNonEmpty(*namespace, l.file.Namespace, "default"), ScalerMetadata: l.md}

	creds, err := clientCreds(*caFile, *certFile, *keyFile)
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler explain: %v\n", err)
		return exitUsage
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler explain: --addr %q: %v\n", *addr, err)
		return exitUsage
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := scalerv1.NewInspectorClient(conn).Explain(ctx, req, grpc.WaitForReady(false))
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler explain: %v\n", err)
		if status.Code(err) == codes.InvalidArgument {
			return exitUsage
		}
		return exitNoDecision
	}
	return printDecision(e, scaler.FromProto(resp), *format)
}

// clientCreds is plaintext without --tls-ca, else TLS verified against that
// CA, presenting the client certificate when one is given.
func clientCreds(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	if caFile == "" {
		if certFile != "" || keyFile != "" {
			return nil, errors.New("--tls-cert and --tls-key need --tls-ca (the CA of the server's certificate)")
		}
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
