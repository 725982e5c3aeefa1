package servers

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy relays TCP connections from its own 127.0.0.1 port to a target, so
// a test can take the path to a server down and up without touching the
// server: Down closes the listener (new connections are refused) and cuts
// every relayed connection; Up listens on the same port again.
type Proxy struct {
	target, addr string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

// StartProxy relays a free 127.0.0.1 port to target until t ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servers: proxy: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.Down()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Down refuses new connections and cuts the open ones.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Up listens on the proxy's port again (a no-op while it is up).
func (p *Proxy) Up(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	up, closed := p.ln != nil, p.closed
	p.mu.Unlock()
	if up || closed {
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; retry a brief clash
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("servers: proxy up again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(ln, in)
		}
	}()
}

// relay copies both ways between in and a new connection to the target,
// unless the listener that accepted in was taken down meanwhile.
func (p *Proxy) relay(ln net.Listener, in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.ln != ln {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, in)
		delete(p.conns, out)
		p.mu.Unlock()
		in.Close()
		out.Close()
	}()
	go func() { _, _ = io.Copy(out, in); out.Close() }()
	_, _ = io.Copy(in, out)
}
