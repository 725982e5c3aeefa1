package logthrottle

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newLogger(c *clock) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(New(h, time.Minute, c.now)), &buf
}

func TestIdenticalErrorsAreWrittenOncePerWindowWithTheCountHeldBack(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)}
	log, buf := newLogger(c)
	poll := log.With("component", "celery", "broker", "redis://127.0.0.1:6379/0")
	for i := range 100 {
		// A flapping source: the same fault, its port and counter differ.
		poll.Warn("read failing; keeping the last good reading", "err", fmt.Errorf("read tcp 127.0.0.1:%d->127.0.0.1:6379: i/o timeout", 40000+i), "failures", i+1)
		c.t = c.t.Add(time.Second)
	}
	// Another source's fault is its own line.
	log.With("component", "latency").Warn("read failing; no good reading yet", "err", errors.New("HTTP 503"))
	// Debug lines without an error (each finished RPC) are never held back.
	for range 3 {
		log.Debug("finished call", "grpc.code", "OK")
	}
	want := `level=WARN msg="read failing; keeping the last good reading" component=celery broker=redis://127.0.0.1:6379/0 err="read tcp 127.0.0.1:40000->127.0.0.1:6379: i/o timeout" failures=1
level=WARN msg="read failing; keeping the last good reading" component=celery broker=redis://127.0.0.1:6379/0 err="read tcp 127.0.0.1:40060->127.0.0.1:6379: i/o timeout" failures=61 suppressed=59
level=WARN msg="read failing; no good reading yet" component=latency err="HTTP 503"
level=DEBUG msg="finished call" grpc.code=OK
level=DEBUG msg="finished call" grpc.code=OK
level=DEBUG msg="finished call" grpc.code=OK
`
	if got := buf.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

func TestADebugLineWithAnErrorIsThrottledToo(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)}
	log, buf := newLogger(c)
	for range 1000 {
		log.Debug("go-redis", "err", "redis: connection pool: failed to dial after 5 attempts: dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines:\n%s", n, buf.String())
	}
}

func TestMemoryIsBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, nil), time.Minute, c.now).(*handler)
	log := slog.New(h)
	for i := range 3 * MaxTracked {
		log.Warn("distinct", "object", fmt.Sprintf("so-%c%c%c", 'a'+i%26, 'a'+i/26%26, 'a'+i/676%26))
	}
	if n := len(h.st.seen); n > MaxTracked {
		t.Fatalf("%d lines remembered, want at most %d", n, MaxTracked)
	}
	if n := strings.Count(buf.String(), "\n"); n != 3*MaxTracked {
		t.Fatalf("%d lines written, want every distinct one (%d)", n, 3*MaxTracked)
	}
}
