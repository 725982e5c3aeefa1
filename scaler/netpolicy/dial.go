package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DialContext returns a dial function that opens connections only to
// addresses the policy allows. A name is resolved once and every address
// it gives is checked before anything is dialled; the connection is then
// opened to a checked address, never to the name, so a second DNS answer
// (rebinding) cannot slip past. A name a rule allows is dialled as is.
// Unix sockets are files of the scaler's own filesystem, not network
// addresses: they pass.
func (p *Policy) DialContext(timeout time.Duration) DialFunc {
	dial := p.Dial
	if dial == nil {
		dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(address)
			d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
			if !isUnix(network) && !p.allowedName(host, port) {
				d.Control = p.control(port)
			}
			return d.DialContext(ctx, network, address)
		}
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if isUnix(network) {
			return dial(ctx, network, address)
		}
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("dial %q: %w", address, err)
		}
		if p.allowedName(host, port) {
			return dial(ctx, network, address)
		}
		addrs, err := p.resolve(ctx, network, host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if err := p.refusal(host, a, port); err != nil {
				return nil, err
			}
		}
		var errs []error
		for _, a := range addrs {
			conn, err := dial(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}

// control checks the socket's own address just before connect: the last
// word, whatever resolved it.
func (p *Policy) control(port string) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable address %q, not dialled", ErrRefused, address)
		}
		return p.refusal(ap.Addr().String(), ap.Addr(), port)
	}
}

func isUnix(network string) bool {
	return network == "unix" || network == "unixgram" || network == "unixpacket"
}

// MaxRedirects bounds the redirects a client made by Client follows.
const MaxRedirects = 5

// Transport returns an HTTP transport that dials through the policy and
// never through a proxy from the environment (a proxy would dial on the
// scaler's behalf, unchecked).
func (p *Policy) Transport(dialTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         p.DialContext(dialTimeout),
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// CheckRedirect follows at most MaxRedirects redirects, to http and https
// only, and refuses a redirect to a literal address or a localhost name
// the policy refuses before asking for it (names are checked when dialled).
func (p *Policy) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("more than %d redirects", MaxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to scheme %q refused", req.URL.Scheme)
	}
	if err := p.CheckHost(req.URL.Hostname(), urlPort(req.URL)); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// NoRedirects is a CheckRedirect for APIs that never redirect: the
// redirect itself is the answer (its status is reported, its target is
// not asked).
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
