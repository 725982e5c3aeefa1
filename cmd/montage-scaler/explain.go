package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/spec"
	"github.com/montage/montage-scaler/scaler/tlsconfig"
)

// explain asks a running server (Inspector/Explain) for its decision on a
// metadata file and prints it as check does.
func explain(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address of a running montage-scaler serve")
	var mdf metadataFlags
	mdf.register(fs)
	name := fs.String("name", "", "ScaledObject name (default: from the ScaledObject file, else \"explain\")")
	namespace := fs.String("namespace", "", "ScaledObject namespace (default: from the ScaledObject file, else \"default\")")
	format := fs.String("format", "json", "json or text")
	timeout := fs.Duration("timeout", 10*time.Second, "RPC deadline")
	caFile := fs.String("tls-ca", "", "PEM CA that signed the server's certificate: talk TLS to a serve --tls-cert")
	certFile := fs.String("tls-cert", "", "PEM client certificate, for a serve --tls-client-ca (mutual TLS)")
	keyFile := fs.String("tls-key", "", "PEM key of --tls-cert")
	serverName := fs.String("tls-server-name", "", "name the server's certificate must carry, when --addr is not it (as grpcurl's -authority)")
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, "explain", err)
		return exitUsage
	}
	if err := checkFormat(*format); err != nil {
		complain(e, "explain", err)
		return exitUsage
	}
	// The server reads every component: resolve every xFromEnv key.
	l, code := loadMetadata(mdf, "explain", spec.Options{}, e)
	if l == nil {
		return code
	}
	req := &scalerv1.ExplainRequest{Name: firstNonEmpty(*name, l.file.Name, "explain"), Namespace: firstNonEmpty(*namespace, l.file.Namespace, "default"), ScalerMetadata: l.md}

	tc, err := tlsconfig.Client(*caFile, *certFile, *keyFile, *serverName)
	if err != nil {
		complain(e, "explain", err)
		return exitUsage
	}
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
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
		complain(e, "explain", err)
		if status.Code(err) == codes.InvalidArgument {
			return exitUsage
		}
		return exitNoDecision
	}
	return printDecision(e, "explain", server.FromProto(resp), *format)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
