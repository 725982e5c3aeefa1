// Package main is a small HTTP process exposing one Prometheus histogram
// that a test drives: POST /observe?v=0.03&n=50 records n observations of v,
// POST /reset starts the histogram again from zero (a restarted pod's counter
// reset). It prints "LISTEN <addr>" once it accepts connections.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() { os.Exit(run()) }

func run() int {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	name := flag.String("name", "http_request_duration_seconds", "histogram family name")
	bucketList := flag.String("buckets", "0.05,0.1,0.25,0.5,1", "bucket upper bounds")
	flag.Parse()
	var buckets []float64
	for b := range strings.SplitSeq(*bucketList, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err != nil {
			log.Printf("histproc: bad bucket %q: %v", b, err)
			return 2
		}
		buckets = append(buckets, f)
	}
	s := &server{name: *name, buckets: buckets}
	s.reset()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		reg := s.reg
		s.mu.Unlock()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /observe", func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseFloat(r.FormValue("v"), 64)
		if err != nil {
			http.Error(w, "bad v", http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(r.FormValue("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		for range n {
			s.h.Observe(v)
		}
		s.mu.Unlock()
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) { s.reset() })
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Printf("histproc: %v", err)
		return 1
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	if err := http.Serve(ln, mux); err != nil {
		log.Printf("histproc: %v", err)
		return 1
	}
	return 0
}

type server struct {
	name    string
	buckets []float64

	mu  sync.Mutex
	reg *prometheus.Registry
	h   prometheus.Histogram
}

func (s *server) reset() {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: s.name, Help: "Request latency driven by the test.", Buckets: s.buckets})
	reg.MustRegister(h)
	s.mu.Lock()
	s.reg, s.h = reg, h
	s.mu.Unlock()
}
