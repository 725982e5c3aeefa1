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

// explainFlags are explain's flags: explain asks a running server
// (Inspector/Explain) for its decision on a metadata file and prints it as
// check does.
type explainFlags struct {
	addr                string
	md                  metadataFlags
	obj                 objectFlags
	format              string
	timeout             time.Duration
	caFile, certFile    string
	keyFile, serverName string
}

func (f *explainFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:9090", "address of a running montage-scaler serve")
	f.md.register(fs)
	f.obj.register(fs, "default", "explain")
	fs.StringVar(&f.format, "format", "json", "json or text")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "RPC deadline")
	fs.StringVar(&f.caFile, "tls-ca", "", "PEM CA that signed the server's certificate: talk TLS to a serve --tls-cert")
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM client certificate, for a serve --tls-client-ca (mutual TLS)")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&f.serverName, "tls-server-name", "", "name the server's certificate must carry, when --addr is not it (as grpcurl's -authority)")
	return fs
}

// explainRun is a built explain: the request and the connection to send
// it on.
type explainRun struct {
	f      *explainFlags
	req    *scalerv1.ExplainRequest
	conn   *grpc.ClientConn
	useTLS bool
}

func (f *explainFlags) build(_ context.Context, e env) (runner, error) {
	if err := oneOf("--format", f.format, "json", "text"); err != nil {
		return nil, usageError(err)
	}
	// The server reads every component: resolve every xFromEnv key.
	l, err := loadMetadata(f.md, "explain", spec.Options{Table: components.Pure()}, e)
	if err != nil {
		return nil, err
	}
	ns, name := f.obj.of(l.file)
	req := &scalerv1.ExplainRequest{Name: name, Namespace: ns, ScalerMetadata: l.md}
	tc, err := tlsconfig.Client(f.caFile, f.certFile, f.keyFile, f.serverName)
	if err != nil {
		return nil, usageError(err)
	}
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, usageError(fmt.Errorf("--addr %q: %v", f.addr, err))
	}
	return &explainRun{f: f, req: req, conn: conn, useTLS: tc != nil}, nil
}

func (r *explainRun) run(ctx context.Context, e env) error {
	defer r.conn.Close()
	ctx, cancel := context.WithTimeout(ctx, r.f.timeout)
	defer cancel()
	resp, err := scalerv1.NewInspectorClient(r.conn).Explain(ctx, r.req, grpc.WaitForReady(false))
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return usageError(errors.New(status.Convert(err).Message()))
		}
		return fmt.Errorf("--addr %s: %w", r.f.addr, callError(err, r.f.timeout, r.useTLS, r.f.certFile != ""))
	}
	return exitWith(printDecision(e, "explain", server.FromProto(resp), r.f.format))
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
