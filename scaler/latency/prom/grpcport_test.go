package prom_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/montage/montage-scaler/scaler/latency"
	"github.com/montage/montage-scaler/scaler/latency/prom"
)

// startGRPC serves gRPC health on a free loopback port, as the scaler's
// own gRPC port does.
func startGRPC(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func TestAGRPCPortIsNamedForWhatItIs(t *testing.T) {
	addr := startGRPC(t)
	cases := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"prometheusURL on a gRPC port", map[string]string{"prometheusURL": "http://" + addr, "latencyQuery": "q"},
			"latency: prometheus http://" + addr + ": this address speaks HTTP/2 gRPC, not Prometheus's HTTP API — is it the scaler's own port?"},
		{"metricsURLs on a gRPC port", map[string]string{"metricsURLs": "http://" + addr + "/metrics", "latencyHistogram": "h"},
			"this address speaks HTTP/2 gRPC, not a /metrics endpoint — is it the scaler's own port?"},
	}
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1)})
	t.Cleanup(hub.Close)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := hub.Watch("ns", "api", parse(t, tc.md, true))
			defer w.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := w.First(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.md["prometheusURL"] != "" {
				if s.Err == nil || s.Err.Error() != tc.want {
					t.Fatalf("error\n got %v\nwant %s", s.Err, tc.want)
				}
				return
			}
			// A scrape reports each pod's failure in the reading's pods.
			if s.Err == nil || !strings.Contains(s.Err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", s.Err, tc.want)
			}
		})
	}
}

func TestAPortSpeakingAnotherProtocolIsNotCalledGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			// An SSH server's banner, written once the request has begun
			// (a banner that wins the race with the request is an
			// "unsolicited response" to net/http, whose error then names
			// nothing: 1 run in about 300), then the connection closed.
			go func() {
				_, _ = c.Read(make([]byte, 1))
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
				c.Close()
			}()
		}
	}()
	hub := prom.NewHub(prom.HubOptions{Interval: time.Hour, Replicas: latency.FixedReplicas(1)})
	t.Cleanup(hub.Close)
	w := hub.Watch("ns", "api", parse(t, map[string]string{"prometheusURL": "http://" + lis.Addr().String(), "latencyQuery": "q"}, true))
	defer w.Close()
	s, err := w.First(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Err == nil || strings.Contains(s.Err.Error(), "gRPC") || !strings.Contains(s.Err.Error(), `malformed HTTP response "SSH-2.0`) {
		t.Fatalf("error %v, want net/http's own", s.Err)
	}
}
