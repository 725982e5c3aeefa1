//go:build faults

package faults

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/test/servers"
)

// source is one upstream under test, set up good, as the scaler sees it.
type source struct {
	component string            // the name the scaler's errors give it
	metadata  map[string]string // the trigger metadata that reads it
	good      float64           // the decision while it is good
	interval  time.Duration     // how long the scaler may wait between reads during a fault (a broker: its backoff's cap; a calendar: the retry after a failure)
	timeout   time.Duration     // the bound of one read
	expires   bool              // past staleAfter its reading is no longer used (not a calendar's)
	// lastRead, if set, says when the source last served a read (the
	// calendar feed counts its fetches).
	lastRead func() time.Time
	// proxy is the path the scaler reaches the source by, for flapping.
	proxy *servers.Proxy
}

// clearFunc ends a fault, waits until the source serves again, and returns
// the decision the scaler should then give (a changed one when a held
// reading and a fresh one would look the same).
type clearFunc func(t *testing.T) float64

// faultFunc starts a fault on a good source and returns how to clear it.
type faultFunc func(t *testing.T) clearFunc

// --- Redis: a Celery broker -------------------------------------------------

// redisSource is 12 Celery tasks in queue celery (2.4 replicas at 5 per
// replica) on a redis-server whose data survives a kill (append-only file,
// written through).
type redisSource struct {
	src *source
	r   *servers.Redis
	rdb *redis.Client
}

func startRedis(t *testing.T, viaProxy bool) *redisSource {
	t.Helper()
	r := servers.StartRedisWith(t, servers.RedisOptions{Persist: true})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rs := &redisSource{r: r, rdb: rdb}
	rs.push(t, 12)
	addr := r.Addr()
	var proxy *servers.Proxy
	if viaProxy {
		proxy = servers.StartProxy(t, addr)
		addr = proxy.Addr()
	}
	rs.src = &source{component: "celery", good: 2.4, interval: pollMaxBackoff, timeout: redisTimeout, expires: true, proxy: proxy,
		metadata: map[string]string{"brokerURL": "redis://" + addr + "/0", "queues": "celery", "tasksPerReplica": "5"}}
	return rs
}

// push LPUSHes n kombu-format messages to queue celery, as a Celery
// producer would.
func (rs *redisSource) push(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("t-%d-%d", time.Now().UnixNano(), i)
		msg := fmt.Sprintf(`{"body":"W10=","headers":{"id":%q,"task":"x","eta":null},"properties":{"delivery_tag":%q,"priority":0,"delivery_info":{"exchange":"","routing_key":"celery"}}}`, id, id)
		if err := rs.rdb.LPush(context.Background(), "celery", msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func (rs *redisSource) faults() map[string]faultFunc {
	ctx := context.Background()
	return map[string]faultFunc{
		"killed": func(t *testing.T) clearFunc {
			rs.r.Stop()
			return func(t *testing.T) float64 { rs.r.Restart(t); return 2.4 }
		},
		"hung": func(t *testing.T) clearFunc {
			rs.r.Pause(t)
			return func(t *testing.T) float64 { rs.r.Resume(t); return 2.4 }
		},
		"garbage: the queue list is a string": func(t *testing.T) clearFunc {
			if err := rs.rdb.Del(ctx, "celery").Err(); err != nil {
				t.Fatal(err)
			}
			if err := rs.rdb.Set(ctx, "celery", "not a list", 0).Err(); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) float64 {
				if err := rs.rdb.Del(ctx, "celery").Err(); err != nil {
					t.Fatal(err)
				}
				rs.push(t, 12)
				return 2.4
			}
		},
		"garbage: the unacked hash is a string": func(t *testing.T) clearFunc {
			if err := rs.rdb.Set(ctx, "unacked", "not a hash", 0).Err(); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) float64 {
				if err := rs.rdb.Del(ctx, "unacked").Err(); err != nil {
					t.Fatal(err)
				}
				return 2.4
			}
		},
		"flapping": func(t *testing.T) clearFunc {
			flap(t, rs.src.proxy)
			return func(t *testing.T) float64 { rs.push(t, 5); return 3.4 }
		},
	}
}

// --- Prometheus ---------------------------------------------------------------

// The latency trigger of every Prometheus cell: P95 0.16 s against an 80 ms
// target at 2 replicas asks for 2 × 0.16 / 0.08 = 4.
const (
	p95Query      = "max(montage_fault_p95_seconds)"
	replicasQuery = "max(montage_fault_replicas)"
)

func latencyMetadata(promURL string) map[string]string {
	return map[string]string{"prometheusURL": promURL, "latencyQuery": p95Query, "replicasQuery": replicasQuery,
		"latencyTarget": "80ms", "latencyTimeout": latencyTimeout.String()}
}

// promSource is a real Prometheus scraping a process that exposes the P95
// and the replicas as gauges the test sets.
type promSource struct {
	src  *source
	prom *servers.Prometheus
	p95  atomic.Value // string
}

func startPrometheus(t *testing.T, viaProxy bool) *promSource {
	t.Helper()
	ps := &promSource{}
	ps.p95.Store("0.16")
	expo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE montage_fault_p95_seconds gauge\nmontage_fault_p95_seconds %s\n# TYPE montage_fault_replicas gauge\nmontage_fault_replicas 2\n", ps.p95.Load())
	}))
	t.Cleanup(expo.Close)
	ps.prom = servers.StartPrometheus(t, []string{strings.TrimPrefix(expo.URL, "http://")}, time.Second)
	ps.prom.WaitFor(t, p95Query, 2*time.Minute, func(v float64) bool { return v == 0.16 })
	ps.prom.WaitFor(t, replicasQuery, 2*time.Minute, func(v float64) bool { return v == 2 })
	url := ps.prom.URL
	var proxy *servers.Proxy
	if viaProxy {
		proxy = servers.StartProxy(t, strings.TrimPrefix(url, "http://"))
		url = "http://" + proxy.Addr()
	}
	ps.src = &source{component: "latency", good: 4, interval: latencyInterval, timeout: latencyTimeout, expires: true, proxy: proxy,
		metadata: latencyMetadata(url)}
	return ps
}

func (ps *promSource) faults() map[string]faultFunc {
	return map[string]faultFunc{
		"killed": func(t *testing.T) clearFunc {
			ps.prom.Kill()
			return func(t *testing.T) float64 { ps.prom.Restart(t); return 4 }
		},
		"hung": func(t *testing.T) clearFunc {
			ps.prom.Pause()
			return func(t *testing.T) float64 { ps.prom.Resume(); return 4 }
		},
		"flapping": func(t *testing.T) clearFunc {
			flap(t, ps.src.proxy)
			return func(t *testing.T) float64 {
				// A new P95 (6 replicas), once Prometheus itself has scraped it.
				ps.p95.Store("0.24")
				ps.prom.WaitFor(t, p95Query, time.Minute, func(v float64) bool { return v == 0.24 })
				return 6
			}
		},
	}
}

// fakeProm answers the Prometheus query API itself, so it can turn to
// garbage: what a proxy, a misconfigured URL or a broken server returns.
type fakeProm struct {
	src  *source
	mode atomic.Value // string: "good" or one of the garbage modes
}

func startFakeProm(t *testing.T) *fakeProm {
	t.Helper()
	fp := &fakeProm{}
	fp.mode.Store("good")
	srv := httptest.NewServer(http.HandlerFunc(fp.serve))
	t.Cleanup(srv.Close)
	fp.src = &source{component: "latency", good: 4, interval: latencyInterval, timeout: latencyTimeout, expires: true,
		metadata: latencyMetadata(srv.URL)}
	return fp
}

func (fp *fakeProm) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	value := "0.16"
	if r.Form.Get("query") == replicasQuery {
		value = "2"
	}
	now := float64(time.Now().UnixMilli()) / 1000
	series := func(i int) string {
		return fmt.Sprintf(`{"metric":{"pod":"p%d"},"value":[%.3f,%q]}`, i, now, value)
	}
	switch fp.mode.Load() {
	case "good":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, series(0))
	case "HTML":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action=/login>…</form></body></html>")
	case "invalid JSON":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s`, series(0))
	case "status error":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}`)
	case "three series":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s,%s,%s]}}`, series(0), series(1), series(2))
	}
}

func (fp *fakeProm) faults() map[string]faultFunc {
	out := map[string]faultFunc{}
	for _, mode := range []string{"HTML", "invalid JSON", "status error", "three series"} {
		out["garbage: "+mode] = func(t *testing.T) clearFunc {
			fp.mode.Store(mode)
			return func(t *testing.T) float64 { fp.mode.Store("good"); return 4 }
		}
	}
	return out
}

// --- Calendar feed ------------------------------------------------------------

// feedServer serves an iCalendar feed whose one event is open now and asks
// for `replicas` replicas (4 replicas while good); it can be killed (its
// listener and connections closed) and started again on the same port.
type feedServer struct {
	src      *source
	addr     string
	start    time.Time
	mode     atomic.Value // string: "good", "hung" or a garbage mode
	replicas atomic.Int64

	mu      sync.Mutex
	srv     *http.Server
	fetches []time.Time
}

func startFeed(t *testing.T, viaProxy bool) *feedServer {
	t.Helper()
	fs := &feedServer{start: time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)}
	fs.mode.Store("good")
	fs.replicas.Store(4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs.addr = ln.Addr().String()
	fs.serve(ln)
	t.Cleanup(fs.kill)
	addr := fs.addr
	var proxy *servers.Proxy
	if viaProxy {
		proxy = servers.StartProxy(t, addr)
		addr = proxy.Addr()
	}
	fs.src = &source{component: "calendar", good: 4, interval: calendarRetry, timeout: calendarFetchTimeout, expires: false, proxy: proxy,
		lastRead: fs.lastFetch,
		metadata: map[string]string{"calendarURL": "http://" + addr + "/private-7d3c0e5a9b214f68/basic.ics"}}
	return fs
}

func (fs *feedServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(fs.handle), ReadHeaderTimeout: 5 * time.Second}
	fs.mu.Lock()
	fs.srv = srv
	fs.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the server's listener and every connection.
func (fs *feedServer) kill() {
	fs.mu.Lock()
	srv := fs.srv
	fs.mu.Unlock()
	_ = srv.Close()
}

// restart serves again on the same port.
func (fs *feedServer) restart(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", fs.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("feed server on %s again: %v", fs.addr, err)
	}
	fs.serve(ln)
}

func (fs *feedServer) lastFetch() time.Time {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.fetches) == 0 {
		return time.Time{}
	}
	return fs.fetches[len(fs.fetches)-1]
}

// feed is the good feed: one event from an hour ago for three hours, and a
// refresh interval of one minute (the least the scaler honours).
func (fs *feedServer) feed() string {
	ts := func(t time.Time) string { return t.Format("20060102T150405Z") }
	return strings.ReplaceAll(fmt.Sprintf(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//montage//faults//EN
REFRESH-INTERVAL;VALUE=DURATION:PT1M
BEGIN:VEVENT
UID:render-night@montage
DTSTAMP:%s
DTSTART:%s
DTEND:%s
SUMMARY:Render night
X-MONTAGE-REPLICAS:%d
END:VEVENT
END:VCALENDAR
`, ts(fs.start), ts(fs.start), ts(fs.start.Add(3*time.Hour)), fs.replicas.Load()), "\n", "\r\n")
}

func (fs *feedServer) handle(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.fetches = append(fs.fetches, time.Now())
	fs.mu.Unlock()
	switch fs.mode.Load() {
	case "good":
		w.Header().Set("Content-Type", "text/calendar")
		fmt.Fprint(w, fs.feed())
	case "hung":
		<-r.Context().Done() // accepted, never answered
	case "binary":
		b := make([]byte, 64<<10)
		_, _ = rand.Read(b)
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write(b)
	case "50 MB":
		// Streamed without a length, as a runaway server would: only the
		// scaler's read limit stops it.
		w.Header().Set("Content-Type", "text/calendar")
		chunk := []byte(strings.Repeat("X-FILLER:0123456789abcdef0123456789abcdef0123456789abcdef01234567\r\n", 1<<14))
		for sent := 0; sent < 50<<20; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case "404":
		http.NotFound(w, r)
	case "invalid":
		// The good feed cut inside its event, as a half-written file is.
		f := fs.feed()
		w.Header().Set("Content-Type", "text/calendar")
		fmt.Fprint(w, f[:strings.Index(f, "SUMMARY")])
	}
}

func (fs *feedServer) faults() map[string]faultFunc {
	good := func(t *testing.T) float64 { fs.replicas.Store(6); fs.mode.Store("good"); return 6 }
	out := map[string]faultFunc{
		"killed": func(t *testing.T) clearFunc {
			fs.kill()
			return func(t *testing.T) float64 { fs.restart(t); return good(t) }
		},
		"hung": func(t *testing.T) clearFunc {
			fs.mode.Store("hung")
			return good
		},
		"flapping": func(t *testing.T) clearFunc {
			// The feed is read once a minute: start the flap so that the
			// next read falls in a down phase (14 s in), or the flap would
			// go unseen.
			wait := time.Until(fs.lastFetch().Add(calendarRetry - 14*time.Second))
			time.Sleep(max(wait, 0))
			flap(t, fs.src.proxy)
			return good
		},
	}
	for _, mode := range []string{"binary", "50 MB", "404"} {
		out["garbage: "+mode] = func(t *testing.T) clearFunc { fs.mode.Store(mode); return good }
	}
	out["garbage: a valid feed turns invalid"] = func(t *testing.T) clearFunc { fs.mode.Store("invalid"); return good }
	return out
}

// firstSight404 is the cell whose feed answers 404 from the scaler's first
// read on.
const firstSight404 = "404 from the first read, beside a queue"

// feedBesideQueue is a trigger with a queue (12 tasks: 2.4 replicas) and a
// calendar feed that fails from the start: the calendar has no opinion
// until its first good copy, and the queue decides.
type feedBesideQueue struct {
	src *source
	fs  *feedServer
}

func startFeedBesideQueue(t *testing.T) *feedBesideQueue {
	t.Helper()
	rs, fs := startRedis(t, false), startFeed(t, false)
	md := map[string]string{}
	for k, v := range rs.src.metadata {
		md[k] = v
	}
	for k, v := range fs.src.metadata {
		md[k] = v
	}
	src := *fs.src
	src.metadata, src.good = md, rs.src.good
	return &feedBesideQueue{src: &src, fs: fs}
}

func (fq *feedBesideQueue) faults() map[string]faultFunc {
	return map[string]faultFunc{firstSight404: func(t *testing.T) clearFunc {
		fq.fs.mode.Store("404")
		return func(t *testing.T) float64 { fq.fs.replicas.Store(6); fq.fs.mode.Store("good"); return 6 }
	}}
}

// flap takes the proxy down and up every flapPeriod for flapFor, ending up.
func flap(t *testing.T, p *servers.Proxy) {
	t.Helper()
	if p == nil {
		t.Fatal("flapping needs the source behind a proxy")
	}
	end := time.Now().Add(flapFor)
	for down := true; time.Now().Before(end); down = !down {
		if down {
			p.Down()
		} else {
			p.Up(t)
		}
		time.Sleep(min(flapPeriod, time.Until(end)))
	}
	p.Up(t)
}
