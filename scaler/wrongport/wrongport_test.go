package wrongport_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/montage/montage-scaler/scaler/wrongport"
	"github.com/montage/montage-scaler/test/servers"
)

// TestEachClientRecognisesTheOtherProtocol dials a real gRPC server over
// HTTP/1 and a real HTTP/1 server over gRPC, and neither over the right one.
func TestEachClientRecognisesTheOtherProtocol(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)

	httpGet := func(addr string) error {
		resp, err := http.Get("http://" + addr + "/api/v1/query")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	grpcCall := func(addr string) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}

	if err := httpGet(lis.Addr().String()); !wrongport.SpeaksGRPC(err) || wrongport.SpeaksHTTP1(err) {
		t.Errorf("HTTP/1 GET of a gRPC port: %v: want SpeaksGRPC alone", err)
	}
	if err := grpcCall(web.Listener.Addr().String()); !wrongport.SpeaksHTTP1(err) || wrongport.SpeaksGRPC(err) {
		t.Errorf("gRPC call of an HTTP/1 port: %v: want SpeaksHTTP1 alone", err)
	}
	if err := httpGet(web.Listener.Addr().String()); wrongport.SpeaksGRPC(err) || wrongport.SpeaksHTTP1(err) {
		t.Errorf("HTTP/1 GET of an HTTP/1 port: %v: neither", err)
	}
	if err := grpcCall(lis.Addr().String()); err != nil || wrongport.SpeaksHTTP1(err) {
		t.Errorf("gRPC call of a gRPC port: %v: neither", err)
	}
	if wrongport.SpeaksGRPC(errors.New(`malformed HTTP response "SSH-2.0-OpenSSH_9.6"`)) {
		t.Error("an SSH banner is not gRPC")
	}
}

func TestEveryMessageAsksTheSameQuestion(t *testing.T) {
	for _, err := range []error{wrongport.GRPCNotHTTP("Prometheus's HTTP API"), wrongport.HTTPNotGRPC()} {
		if want := "— " + wrongport.Hint; !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if got, want := wrongport.GRPCNotHTTP("a /metrics endpoint").Error(),
		"this address speaks HTTP/2 gRPC, not a /metrics endpoint — is it the scaler's own port?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// lostRace answers its first round trip with net/http's error for a
// greeting that landed before the request (the race net/http loses about
// once in 300 against a server that greets first; its timing cannot be
// forced from outside the transport), then passes requests on.
type lostRace struct {
	calls int
	next  http.RoundTripper
}

func (l *lostRace) RoundTrip(r *http.Request) (*http.Response, error) {
	if l.calls++; l.calls == 1 {
		return nil, errors.New("net/http: HTTP/1.x transport connection broken: readLoopPeekFailLocked: <nil>")
	}
	return l.next.RoundTrip(r)
}

// TestDoAsksAgainWhenTheGreetingWonTheRace: when a real gRPC server's
// greeting won the race, Do asks once more, body included, and the answer
// names the gRPC port; other errors are not asked twice.
func TestDoAsksAgainWhenTheGreetingWonTheRace(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	url := "http://" + lis.Addr().String() + "/api/v1/query"
	for _, tc := range []struct {
		name  string
		do    func(*http.Client, *http.Request) (*http.Response, error)
		want  func(error) bool
		calls int
	}{
		{"net/http alone", (*http.Client).Do, wrongport.Unsolicited, 1},
		{"wrongport.Do", wrongport.Do, wrongport.SpeaksGRPC, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &lostRace{next: &http.Transport{DisableKeepAlives: true}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("query=up"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tc.do(&http.Client{Transport: rt}, req)
			if err == nil {
				resp.Body.Close()
			}
			if !tc.want(err) || rt.calls != tc.calls {
				t.Fatalf("error %v after %d round trips, want %d", err, rt.calls, tc.calls)
			}
		})
	}
	// A refused connection is not asked twice.
	rt := &lostRace{calls: 1, next: &http.Transport{}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+servers.RefusedAddr(t), nil)
	if _, err := wrongport.Do(&http.Client{Transport: rt}, req); err == nil || rt.calls != 2 {
		t.Fatalf("a refused address: %v after %d round trips, want an error after 1", err, rt.calls-1)
	}
}
