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
	u := &upstreamBench{bin: bin, rs: rs, admin: admin}
	if err := u.distinctBrokers(ctx, brokers); err != nil {
		return err
	}
	return u.bigObjects(ctx, bigs)
}

// upstreamBench is the broker of the upstreams figures, with a client of
// its own that counts the others, and the binary each figure's scaler
// runs.
type upstreamBench struct {
	bin   string
	rs    *servers.Redis
	admin *redis.Client
}

// distinctBrokers adds brokers ScaledObjects to a scaler of their own,
// each naming a broker of its own (a db each, in a namespace each).
func (b *upstreamBench) distinctBrokers(ctx context.Context, brokers int) error {
	s, err := startScaler(ctx, b.bin, os.Stderr, "--log-level", "error")
	if err != nil {
		return err
	}
	defer s.stop()
	b.line(ctx, s, "upstreams: idle", s.usage())
	refused := 0
	for db := 1; db <= brokers; db++ {
		r := &pb.ScaledObjectRef{Namespace: fmt.Sprintf("tenant-%04d", db), Name: "app",
			ScalerMetadata: map[string]string{"brokerURL": b.rs.URL(db), "queues": "video"}}
		no, err := getMetricSpec(ctx, s, r)
		if err != nil {
			return fmt.Errorf("upstreams: db %d: %w", db, err)
		}
		if no {
			refused++
		}
	}
	time.Sleep(10 * time.Second) // every accepted watch connected and polling
	b.line(ctx, s, fmt.Sprintf("upstreams: %d distinct brokers (%d refused)", brokers, refused), s.usage())
	return nil
}

// bigObjects adds bigs ScaledObjects at the per-object limits beside a
// small one, on db 0, to a scaler of their own, and says whether the
// small object's polls failed meanwhile.
func (b *upstreamBench) bigObjects(ctx context.Context, bigs int) error {
	s, err := startScaler(ctx, b.bin, os.Stderr, "--log-level", "error")
	if err != nil {
		return err
	}
	defer s.stop()
	small := &pb.ScaledObjectRef{Namespace: "small", Name: "app", ScalerMetadata: map[string]string{"brokerURL": b.rs.URL(0), "queues": "video"}}
	if _, err := getMetricSpec(ctx, s, small); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	b.line(ctx, s, "lists: one small object", s.usage())
	errs0, reads0 := scrapeErrors(s.httpAddr), scrapeReads(s.httpAddr)
	refused := 0
	for i := range bigs {
		queues := make([]string, 100)
		for q := range queues {
			queues[q] = fmt.Sprintf("big%03d-%03d", i, q)
		}
		r := &pb.ScaledObjectRef{Namespace: fmt.Sprintf("tenant-%04d", i), Name: "big", ScalerMetadata: map[string]string{
			"brokerURL": b.rs.URL(0), "queues": strings.Join(queues, ","), "prioritySteps": "0,1,2,3,4,5,6,7,8,9"}}
		no, err := getMetricSpec(ctx, s, r)
		if err != nil {
			return fmt.Errorf("lists: object %d: %w", i, err)
		}
		if no {
			refused++
		}
	}
	time.Sleep(30 * time.Second)
	after := s.usage()
	smallState := freshness(ctx, s, small)
	b.line(ctx, s, fmt.Sprintf("lists: + %d objects at 1,000 lists (%d refused)", bigs, refused), after)
	fmt.Printf("%-44s %.0f of %.0f polls of the broker failed while they were added and 30 s after; the small object %s\n", "  the shared poll",
		scrapeErrors(s.httpAddr)-errs0, scrapeReads(s.httpAddr)-reads0, clip(smallState, 200))
	return nil
}

// getMetricSpec asks s for r's metric spec; refused is a ResourceExhausted
// answer (a process-wide limit), not an error.
func getMetricSpec(ctx context.Context, s *scaler, r *pb.ScaledObjectRef) (refused bool, err error) {
	_, err = s.ks.GetMetricSpec(ctx, r)
	if status.Code(err) == codes.ResourceExhausted {
		return true, nil
	}
	return false, err
}

// freshness says whether r's reading is fresh or held, and since when.
func freshness(ctx context.Context, s *scaler, r *pb.ScaledObjectRef) string {
	e, err := scalerv1.NewInspectorClient(s.conn).Explain(ctx, &scalerv1.ExplainRequest{Namespace: r.Namespace, Name: r.Name, ScalerMetadata: r.ScalerMetadata})
	switch {
	case err != nil:
		return "Explain: " + err.Error()
	case e.Components[0].Error != "":
		return fmt.Sprintf("is held %s old: %s", time.Since(e.Components[0].ObservedAt.AsTime()).Round(time.Second), e.Components[0].Error)
	}
	return "reads fresh"
}

// line prints s's usage u, its open files and the broker's clients.
func (b *upstreamBench) line(ctx context.Context, s *scaler, label string, u usage) {
	fmt.Printf("%-44s %s, %4d fds, %4d broker clients\n", label, u, fds(s.cmd.Process.Pid), b.clients(ctx))
}

// clients is the broker's connected clients but the bench's own; -1 when
// it cannot say.
func (b *upstreamBench) clients(ctx context.Context) int {
	info, err := b.admin.Info(ctx, "clients").Result()
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
