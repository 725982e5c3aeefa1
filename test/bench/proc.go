package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/montage/montage-scaler/scaler/addrfile"
)

// scaler is a running `montage-scaler serve` with a client.
type scaler struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	exited             chan struct{} // closed when the process has exited
	conn               *grpc.ClientConn
	ks                 pb.ExternalScalerClient
	hc                 healthpb.HealthClient
}

// startScaler runs bin serve on loopback ports it binds itself (port 0,
// named in its --addr-file) with extra flags, its log to stderr, and waits
// until it serves.
func startScaler(ctx context.Context, bin string, stderr io.Writer, flags ...string) (*scaler, error) {
	dir, err := os.MkdirTemp("", "montage-bench-scaler-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // read once: the addresses stay in s
	addrPath := filepath.Join(dir, "addrs.json")
	s := &scaler{exited: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrPath}, flags...)...)
	s.cmd.Stderr = stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (make build): %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addrs, err := addrfile.Wait(wctx, addrPath, s.exited)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("scaler not serving: %w", err)
	}
	s.grpcAddr, s.httpAddr = addrs.GRPC, addrs.HTTP
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.conn, s.ks, s.hc = conn, pb.NewExternalScalerClient(conn), healthpb.NewHealthClient(conn)
	return s, nil
}

func (s *scaler) stop() {
	if s.conn != nil {
		s.conn.Close()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
}

// usage is what the scaler process holds: RSS from /proc, goroutines and
// heap from its /metrics.
type usage struct {
	rss, heap  int64
	goroutines int
}

func (u usage) String() string {
	return fmt.Sprintf("RSS %5.1f MiB, heap in use %5.1f MiB, %4d goroutines", float64(u.rss)/(1<<20), float64(u.heap)/(1<<20), u.goroutines)
}

// usage reads the scaler's usage; the goroutines are the least of three
// readings 100 ms apart, so that one in flight for a moment (the scrape's
// own connection, a finishing RPC) is not counted.
func (s *scaler) usage() usage {
	r, _ := rss(s.cmd.Process.Pid)
	m := scrape(s.httpAddr, "go_goroutines", "go_memstats_heap_inuse_bytes")
	u := usage{rss: r, heap: int64(m["go_memstats_heap_inuse_bytes"]), goroutines: int(m["go_goroutines"])}
	for range 2 {
		time.Sleep(100 * time.Millisecond)
		u.goroutines = min(u.goroutines, int(scrape(s.httpAddr, "go_goroutines")["go_goroutines"]))
	}
	return u
}

// scrape reads the value of unlabelled series from /metrics.
func scrape(httpAddr string, names ...string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		for _, n := range names {
			if f[0] == n {
				out[n], _ = strconv.ParseFloat(f[1], 64)
			}
		}
	}
	return out
}

// lineWriter copies what it is given to w and calls each on every
// complete line.
type lineWriter struct {
	w    io.Writer
	each func(line string)
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.each(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if l.w != nil {
		return l.w.Write(p)
	}
	return len(p), nil
}
