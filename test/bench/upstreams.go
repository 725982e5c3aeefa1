package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/test/servers"
)

// upstreams measures what many upstreams cost a scaler of its own, with
// its default limits: brokers ScaledObjects, each naming a broker of its
// own (one db each of one redis-server, each in a namespace of its own),
// then bigs ScaledObjects at the per-object limits (1,000 lists each) on
// one broker beside a small one. It prints the goroutines, open files,
// the broker's clients, RSS and heap in use before and after, how many
// objects were refused (ResourceExhausted) and, for the second, whether
// the small object's polls failed.
func upstreams(ctx context.Context, bin, dir string, brokers, bigs int) error {
	rs, err := servers.RunRedisWith(dir, servers.RedisOptions{Args: []string{"--databases", strconv.Itoa(brokers + 1), "--maxclients", "10000"}})
	if err != nil {
		return err
	}
	defer rs.Stop()
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 1})
	defer admin.Close()
	s, err := startScaler(ctx, bin, os.Stderr, "--log-level", "error")
	if err != nil {
		return err
	}
	clients := func() int {
		info, err := admin.Info(ctx, "clients").Result()
		if err != nil {
			return -1
		}
		for l := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "connected_clients:"); ok {
				n, _ := strconv.Atoi(v)
				return n - 1 // the bench's own
			}
		}
		return -1
	}
	line := func(label string, u usage) {
		fmt.Printf("%-44s %s, %4d fds, %4d broker clients\n", label, u, fds(s.cmd.Process.Pid), clients())
	}
	call := func(r *pb.ScaledObjectRef) (refused bool, err error) {
		_, err = s.ks.GetMetricSpec(ctx, r)
		if status.Code(err) == codes.ResourceExhausted {
			return true, nil
		}
		return false, err
	}
	line("upstreams: idle", s.usage())
	stopped := false
	defer func() {
		if !stopped {
			s.stop()
		}
	}()
	refused := 0
	for db := 1; db <= brokers; db++ {
		r := &pb.ScaledObjectRef{Namespace: fmt.Sprintf("tenant-%04d", db), Name: "app",
			ScalerMetadata: map[string]string{"brokerURL": rs.URL(db), "queues": "video"}}
		no, err := call(r)
		if err != nil {
			return fmt.Errorf("upstreams: db %d: %w", db, err)
		}
		if no {
			refused++
		}
	}
	time.Sleep(10 * time.Second) // every accepted watch connected and polling
	line(fmt.Sprintf("upstreams: %d distinct brokers (%d refused)", brokers, refused), s.usage())
	s.stop()
	stopped = true

	// Objects at the per-object limits beside a small one, on db 0.
	if s, err = startScaler(ctx, bin, os.Stderr, "--log-level", "error"); err != nil {
		return err
	}
	defer s.stop()
	small := &pb.ScaledObjectRef{Namespace: "small", Name: "app", ScalerMetadata: map[string]string{"brokerURL": rs.URL(0), "queues": "video"}}
	if _, err := call(small); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	before := s.usage()
	line("lists: one small object", before)
	errs0, reads0 := scrapeErrors(s.httpAddr), scrapeReads(s.httpAddr)
	refused = 0
	for i := range bigs {
		queues := make([]string, 100)
		for q := range queues {
			queues[q] = fmt.Sprintf("big%03d-%03d", i, q)
		}
		r := &pb.ScaledObjectRef{Namespace: fmt.Sprintf("tenant-%04d", i), Name: "big", ScalerMetadata: map[string]string{
			"brokerURL": rs.URL(0), "queues": strings.Join(queues, ","), "prioritySteps": "0,1,2,3,4,5,6,7,8,9"}}
		no, err := call(r)
		if err != nil {
			return fmt.Errorf("lists: object %d: %w", i, err)
		}
		if no {
			refused++
		}
	}
	time.Sleep(30 * time.Second)
	after := s.usage()
	e, err := scalerv1.NewInspectorClient(s.conn).Explain(ctx, &scalerv1.ExplainRequest{Namespace: small.Namespace, Name: small.Name, ScalerMetadata: small.ScalerMetadata})
	smallState := "reads fresh"
	switch {
	case err != nil:
		smallState = "Explain: " + err.Error()
	case e.Components[0].Error != "":
		smallState = fmt.Sprintf("is held %s old: %s", time.Since(e.Components[0].ObservedAt.AsTime()).Round(time.Second), e.Components[0].Error)
	}
	line(fmt.Sprintf("lists: + %d objects at 1,000 lists (%d refused)", bigs, refused), after)
	fmt.Printf("%-44s %.0f of %.0f polls of the broker failed while they were added and 30 s after; the small object %s\n", "  the shared poll",
		scrapeErrors(s.httpAddr)-errs0, scrapeReads(s.httpAddr)-reads0, clip(smallState, 200))
	return nil
}

// fds counts the process's open files.
func fds(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// scrapeErrors and scrapeReads are montage_scaler_source_errors_total
// and montage_scaler_source_reads_total of the celery component.
func scrapeErrors(httpAddr string) float64 {
	return scrapeLabelled(httpAddr, "montage_scaler_source_errors_total", `component="celery"`)
}

func scrapeReads(httpAddr string) float64 {
	return scrapeLabelled(httpAddr, "montage_scaler_source_reads_total", `component="celery"`)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// scrapeLabelled sums the series of name whose labels contain label.
func scrapeLabelled(httpAddr, name, label string) float64 {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total := 0.0
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") || !strings.Contains(l, label) {
			continue
		}
		f := strings.Fields(l)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		total += v
	}
	return total
}
