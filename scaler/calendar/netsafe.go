package calendar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress marks a feed address that the network policy refuses.
var ErrRefusedAddress = errors.New("refused address")

// metadataAddrs are cloud instance-metadata endpoints: AllowPrivate does not
// open them, only an explicit --calendar-allow-host does.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

var privateExtra = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, used by some pod networks
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
}

// policy decides which addresses a feed may be fetched from.
type policy struct {
	rules        []AllowRule
	allowPrivate bool
}

func newPolicy(l Limits) (policy, error) {
	p := policy{allowPrivate: l.AllowPrivate}
	for _, s := range l.AllowHosts {
		r, err := ParseAllowHost(s)
		if err != nil {
			return policy{}, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// hostAllowed reports whether host:port is explicitly allowed by name.
func (p policy) hostAllowed(host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	for _, r := range p.rules {
		if r.Host != "" && r.Host == host && (r.Port == "" || r.Port == port) {
			return true
		}
	}
	return false
}

// addrRefused returns why addr may not be dialled, or "" when it may.
func (p policy) addrRefused(addr netip.Addr, port string) string {
	addr = addr.Unmap()
	for _, r := range p.rules {
		if r.Prefix.IsValid() && r.Prefix.Contains(addr) {
			return ""
		}
		if r.Host == addr.String() && (r.Port == "" || r.Port == port) {
			return ""
		}
	}
	kind := classify(addr)
	switch {
	case kind == "":
		return ""
	case kind == "cloud-metadata":
		return kind
	case p.allowPrivate:
		return ""
	}
	return kind
}

// classify names the non-public class of addr, "" for a public address.
func classify(a netip.Addr) string {
	a = a.Unmap()
	for _, m := range metadataAddrs {
		if a == m {
			return "cloud-metadata"
		}
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range privateExtra {
		if p.Contains(a) {
			return "private"
		}
	}
	return ""
}

// dialer connects only to addresses the policy allows. The check runs in
// the Control hook on the address actually being connected, so a DNS answer
// that changes between a check and the dial (rebinding) cannot bypass it.
type dialer struct {
	p       policy
	timeout time.Duration
}

func (d dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("calendar: dial %q: %w", address, err)
	}
	nd := &net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}
	if !d.p.hostAllowed(host, port) {
		nd.Control = func(_, addr string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return fmt.Errorf("calendar: dial %s: %w: unparsable address", host, ErrRefusedAddress)
			}
			if why := d.p.addrRefused(ap.Addr(), port); why != "" {
				return fmt.Errorf("calendar: %w: %s resolves to %s address %s (allow it with --calendar-allow-host or --calendar-allow-private)",
					ErrRefusedAddress, host, why, ap.Addr())
			}
			return nil
		}
	}
	return nd.DialContext(ctx, network, address)
}

// checkURLHost refuses a literal address or a localhost name before any
// I/O; names are checked again on the resolved address at dial time.
func (p policy) checkHost(hostport string, scheme string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	if p.hostAllowed(host, port) {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if a, err := netip.ParseAddr(h); err == nil {
		if why := p.addrRefused(a, port); why != "" {
			return fmt.Errorf("calendar: %w: %s is a %s address (allow it with --calendar-allow-host or --calendar-allow-private)", ErrRefusedAddress, a.Unmap(), why)
		}
		return nil
	}
	if (h == "localhost" || strings.HasSuffix(h, ".localhost")) && !p.allowPrivate {
		return fmt.Errorf("calendar: %w: %s is a loopback name (allow it with --calendar-allow-host or --calendar-allow-private)", ErrRefusedAddress, h)
	}
	return nil
}

// CheckURL resolves the feed's host and refuses it when any of its
// addresses is loopback, private, link-local or cloud metadata and not
// allowed. serve and check call it up front; fetches check again at dial
// time and on every redirect.
func CheckURL(ctx context.Context, u FeedURL, l Limits) error {
	p, err := newPolicy(l)
	if err != nil {
		return err
	}
	if err := p.checkHost(u.u.Host, u.u.Scheme); err != nil {
		return err
	}
	host, port := u.u.Hostname(), u.u.Port()
	if port == "" {
		port = "443"
		if u.u.Scheme == "http" {
			port = "80"
		}
	}
	if p.hostAllowed(host, port) {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // literal, checked above
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("calendar: resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if why := p.addrRefused(a, port); why != "" {
			return fmt.Errorf("calendar: %w: %s resolves to %s address %s (allow it with --calendar-allow-host or --calendar-allow-private)",
				ErrRefusedAddress, host, why, a.Unmap())
		}
	}
	return nil
}

const maxRedirects = 5

// NewHTTPClient returns the client feeds are fetched with: no proxy from
// the environment (it would dial on our behalf unchecked), the policy
// enforced at dial time and on every redirect, the fetch timeout as a whole.
func NewHTTPClient(l Limits) (*http.Client, error) {
	l = l.withDefaults()
	p, err := newPolicy(l)
	if err != nil {
		return nil, err
	}
	d := dialer{p: p, timeout: min(l.FetchTimeout, 10*time.Second)}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: l.FetchTimeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   l.FetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("calendar: more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("calendar: redirect to scheme %q refused", req.URL.Scheme)
			}
			if err := p.checkHost(req.URL.Host, req.URL.Scheme); err != nil {
				return fmt.Errorf("redirect: %w", err)
			}
			return nil
		},
	}, nil
}
