// Package netpolicy is the scaler's one address policy for the upstreams
// metadata names (brokerURL, prometheusURL, metricsURLs, calendarURL): which
// classes of address each key may reach, and the explicit exceptions flags
// add. The check runs on the addresses a name resolves to, before anything
// is dialled, on every redirect, and once more on the socket's own address.
package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrRefused marks an address the policy refuses; errors.Is finds it in a
// *RefusedError.
var ErrRefused = errors.New("refused address")

// Class names the kind of a non-public address; Public is the empty one.
type Class string

// The classes of address.
const (
	Public      Class = ""
	Loopback    Class = "loopback"
	Private     Class = "private"
	LinkLocal   Class = "link-local"
	Metadata    Class = "cloud-metadata"
	Unspecified Class = "unspecified"
	Multicast   Class = "multicast"
)

// metadataAddrs are cloud instance-metadata endpoints: no class opens them,
// only an explicit rule does.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// privateExtra are special-purpose ranges no upstream of the public
// internet uses: treated as private.
var privateExtra = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, used by some pod networks
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Classify names the class of a.
func Classify(a netip.Addr) Class {
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		// The gateway dials the embedded IPv4 address: judge that one, and
		// never call a translated address public.
		b := a.As16()
		if c := Classify(netip.AddrFrom4([4]byte(b[12:]))); c != Public {
			return c
		}
		return Private
	}
	for _, m := range metadataAddrs {
		if a == m {
			return Metadata
		}
	}
	switch {
	case a.IsLoopback():
		return Loopback
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return LinkLocal
	case a.IsPrivate():
		return Private
	case a.IsUnspecified():
		return Unspecified
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return Multicast
	}
	for _, p := range privateExtra {
		if p.Contains(a) {
			return Private
		}
	}
	return Public
}

// Rule is one explicit exception: a host name or address (any port, or
// one), or a CIDR.
type Rule struct {
	// Host is a lower-case host name or IP literal; empty for a CIDR rule.
	Host string
	// Port is empty when any port is allowed.
	Port string
	// Prefix is set for a CIDR rule.
	Prefix netip.Prefix
}

// ParseRule parses an allow-host flag value: a host ("prom.internal",
// "169.254.20.10"), a host:port ("[fe80::1]:9090") or a CIDR
// ("169.254.0.0/16"). Its errors quote s; the caller names the flag.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Rule{}, fmt.Errorf("%q: empty", s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: not a CIDR such as 10.0.0.0/8", s)
		}
		return Rule{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return Rule{Host: a.Unmap().String()}, nil
	}
	host, port := s, ""
	if i := strings.LastIndex(s, ":"); i >= 0 {
		host, port = s[:i], s[i+1:]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Rule{}, fmt.Errorf("%q: port %q is not 1-65535", s, port)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	} else if !validHostname(host) {
		return Rule{}, fmt.Errorf("%q: not a host, host:port or CIDR", s)
	}
	return Rule{Host: strings.ToLower(host), Port: port}, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// String is the rule as the flag spells it.
func (r Rule) String() string {
	if r.Prefix.IsValid() {
		return r.Prefix.String()
	}
	if r.Port == "" {
		return r.Host
	}
	if strings.Contains(r.Host, ":") {
		return "[" + r.Host + "]:" + r.Port
	}
	return r.Host + ":" + r.Port
}

// RefusedError says which address was refused and how to allow it.
type RefusedError struct {
	// Host is the name (or literal) that was to be dialled.
	Host string
	// Addr is the refused address Host is or resolves to.
	Addr  netip.Addr
	Class Class
	// Hint names the flags that allow it.
	Hint string
}

func (e *RefusedError) Error() string {
	article := "a"
	if strings.HasPrefix(string(e.Class), "u") {
		article = "an"
	}
	what := fmt.Sprintf("%s is %s %s address", e.Addr, article, e.Class)
	if h := normHost(e.Host); h != e.Addr.String() {
		what = fmt.Sprintf("%s resolves to %s address %s", h, e.Class, e.Addr)
	}
	if e.Hint == "" {
		return fmt.Sprintf("%v: %s, not dialled", ErrRefused, what)
	}
	return fmt.Sprintf("%v: %s, not dialled (allow it with %s)", ErrRefused, what, e.Hint)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// normHost is host lower-cased, without brackets, a trailing dot or an
// IPv4-mapped prefix, as rules spell it.
func normHost(host string) string {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}
