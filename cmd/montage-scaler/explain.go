package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/server"
	"github.com/montage/montage-scaler/scaler/spec"
	"github.com/montage/montage-scaler/scaler/tlsconfig"
	"github.com/montage/montage-scaler/scaler/wrongport"
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
	l, code := loadMetadata(mdf, "explain", spec.Options{Table: components.Pure()}, e)
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
		if status.Code(err) == codes.InvalidArgument {
			complain(e, "explain", errors.New(status.Convert(err).Message()))
			return exitUsage
		}
		complain(e, "explain", fmt.Errorf("--addr %s: %w", *addr, callError(err, *timeout, tc != nil, *certFile != "")))
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

// callError says why an Explain call failed in the words of explain's
// flags, with what to do: the gRPC status's own text is for programs.
// useTLS and clientCert say which of --tls-ca and --tls-cert were given.
func callError(err error, timeout time.Duration, useTLS, clientCert bool) error {
	st := status.Convert(err)
	msg := st.Message()
	// The connection ended under the client before the server spoke:
	// over TLS 1.3 a server refusing a missing client certificate says
	// so in an alert the client may read, or cuts the connection while
	// the client writes.
	cut := st.Code() == codes.Unavailable && (strings.Contains(msg, "error reading server preface: EOF") ||
		strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "connection closed before server preface"))
	switch {
	case wrongport.SpeaksHTTP1(err):
		return wrongport.HTTPNotGRPC()
	case strings.Contains(msg, "connection refused"):
		return errors.New("nothing listens there (connection refused): is montage-scaler serve running, and is this its --grpc-addr?")
	case strings.Contains(msg, "produced zero addresses") || strings.Contains(msg, "no such host"):
		return errors.New("the host name does not resolve here: check its spelling, or give the address (host:port) the server listens on")
	case st.Code() == codes.DeadlineExceeded:
		return fmt.Errorf("no answer within --timeout %s: is this the address of a running montage-scaler serve (a firewall, or a stopped process, holds a connection without answering)?", timeout)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return errors.New("the server does not speak TLS: drop --tls-ca, --tls-cert and --tls-key (or start serve with --tls-cert and --tls-key)")
	case strings.Contains(msg, "certificate required") || useTLS && !clientCert && cut:
		return errors.New("the server asks for a client certificate (serve --tls-client-ca): give --tls-cert and --tls-key, signed by that CA")
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return errors.New("the server's certificate is not signed by --tls-ca: give the CA that signed it")
	case strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "cannot validate certificate for"):
		return fmt.Errorf("%s: give --tls-server-name with a name the certificate carries", tlsReason(msg))
	case !useTLS && cut:
		return errors.New("the server closed the connection before speaking gRPC: does it serve TLS (serve --tls-cert)? then give --tls-ca, and --tls-cert and --tls-key for mutual TLS")
	}
	return fmt.Errorf("%s (gRPC status %s)", msg, st.Code())
}

// tlsReason is the x509 part of a handshake error, without gRPC's framing.
func tlsReason(msg string) string {
	if i := strings.Index(msg, "x509: "); i >= 0 {
		return strings.TrimSuffix(msg[i:], `"`)
	}
	return msg
}
