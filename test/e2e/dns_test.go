//go:build e2e

package e2e

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// startDNS serves, on UDP listenHost:0 until t ends, the A records of one
// name (what a headless Service's DNS answers: one record per ready pod);
// every other name is NXDOMAIN, and the name has no AAAA records. It
// returns host:port.
//
// KEDA dials scalerAddress with grpc.NewClient, whose target syntax lets the
// address name its DNS server: dns://HOST:PORT/NAME:PORT. So a test can give
// KEDA one DNS name for two scalers without touching /etc/hosts or
// resolv.conf, and no query leaves the machine (gRPC's TXT lookup of
// _grpc_config.NAME comes here too).
func startDNS(t testing.TB, listenHost, name string, addrs ...string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		t.Fatalf("e2e: dns: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	fqdn := strings.ToLower(strings.TrimSuffix(name, ".") + ".")
	var as [][4]byte
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a).As4())
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out, ok := dnsAnswer(buf[:n], fqdn, as); ok {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// dnsAnswer builds the reply to one query. Replies are authoritative: Go's
// resolver takes a non-authoritative empty answer for a lame referral.
func dnsAnswer(query []byte, fqdn string, addrs [][4]byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	match := strings.EqualFold(q.Name.String(), fqdn)
	if !match {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeNameError})
	}
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if match && q.Type == dnsmessage.TypeA {
		if err := b.StartAnswers(); err != nil {
			return nil, false
		}
		for _, a := range addrs {
			if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: a}); err != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
