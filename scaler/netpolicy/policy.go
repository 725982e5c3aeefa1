package netpolicy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Policy says which addresses one kind of upstream may be dialled at.
// Its methods never change it: one Policy serves every connection.
type Policy struct {
	// Open are the non-public classes dialled without a rule. Cloud
	// metadata is never opened by a class, only by a rule.
	Open []Class
	// Allow are explicit exceptions, whatever the class of the address
	// (cloud metadata included); a rule naming a host allows every
	// address that name resolves to.
	Allow []Rule
	// Hint names the flags that allow a refused address, for the error.
	Hint string
	// Resolver looks up the names to check; nil: net.DefaultResolver.
	Resolver Resolver
	// Dial opens a connection to an address already checked, host:port
	// with an IP literal (or a name a rule allows); nil: a net.Dialer with
	// the dial timeout whose Control hook checks the socket's address once
	// more. Tests give one that records what would have been dialled.
	Dial DialFunc
}

// Upstreams is the policy of brokerURL, prometheusURL and metricsURLs:
// loopback and private addresses are where a broker, a Prometheus and the
// pods live; link-local, cloud-metadata, unspecified and multicast
// addresses need a rule (--allow-host).
func Upstreams(allow []Rule) *Policy {
	return &Policy{Open: []Class{Loopback, Private}, Allow: allow, Hint: "--allow-host"}
}

// allowedName reports whether a rule allows host:port by name (or literal).
func (p *Policy) allowedName(host, port string) bool {
	host = normHost(host)
	for _, r := range p.Allow {
		if r.Host != "" && r.Host == host && (r.Port == "" || r.Port == port) {
			return true
		}
	}
	return false
}

// Refused returns the class that keeps addr:port from being dialled, or
// Public when it may be.
func (p *Policy) Refused(addr netip.Addr, port string) Class {
	addr = addr.Unmap().WithZone("")
	for _, r := range p.Allow {
		if r.Prefix.IsValid() && r.Prefix.Contains(addr) {
			return Public
		}
		if r.Host == addr.String() && (r.Port == "" || r.Port == port) {
			return Public
		}
	}
	c := Classify(addr)
	if c == Public || c != Metadata && slices.Contains(p.Open, c) {
		return Public
	}
	return c
}

func (p *Policy) refusal(host string, addr netip.Addr, port string) error {
	if c := p.Refused(addr, port); c != Public {
		return &RefusedError{Host: host, Addr: addr.Unmap().WithZone(""), Class: c, Hint: p.Hint}
	}
	return nil
}

// CheckHost judges host:port without any I/O: a literal address by its
// class, the names "localhost" and "*.localhost" as loopback. Other names
// pass here; their addresses are checked when they are resolved.
func (p *Policy) CheckHost(host, port string) error {
	if p.allowedName(host, port) {
		return nil
	}
	h := normHost(host)
	if a, err := netip.ParseAddr(h); err == nil {
		return p.refusal(h, a, port)
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return p.refusal(h, netip.IPv6Loopback(), port)
	}
	return nil
}

// resolve returns the addresses host stands for: itself when it is a
// literal, else the resolver's answer.
func (p *Policy) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a.Unmap()}, nil // an IPv6 zone is kept for the dial
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ipnet := "ip"
	switch network {
	case "tcp4", "udp4":
		ipnet = "ip4"
	case "tcp6", "udp6":
		ipnet = "ip6"
	}
	addrs, err := r.LookupNetIP(ctx, ipnet, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", normHost(host), err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", normHost(host))
	}
	return addrs, nil
}

// Check resolves host and refuses it when any of its addresses is refused
// (a name that answers with a metadata address beside a private one is not
// trusted with either). The check and calendar commands call it up front;
// connections check again when they dial.
func (p *Policy) Check(ctx context.Context, host, port string) error {
	if err := p.CheckHost(host, port); err != nil || p.allowedName(host, port) {
		return err
	}
	addrs, err := p.resolve(ctx, "tcp", host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := p.refusal(host, a, port); err != nil {
			return err
		}
	}
	return nil
}

// CheckURL is Check on an http(s) URL's host and port (80 or 443 when the
// URL names none).
func (p *Policy) CheckURL(ctx context.Context, u *url.URL) error {
	return p.Check(ctx, u.Hostname(), urlPort(u))
}

func urlPort(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}
