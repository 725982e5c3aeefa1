package netpolicy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAddressClasses(t *testing.T) {
	tests := []struct {
		addr string
		want Class
	}{
		{"8.8.8.8", Public},
		{"2001:4860:4860::8888", Public},
		{"127.0.0.1", Loopback},
		{"::1", Loopback},
		{"10.1.2.3", Private},
		{"172.16.0.1", Private},
		{"192.168.1.1", Private},
		{"fd12::1", Private},
		{"100.64.0.1", Private},
		{"169.254.10.10", LinkLocal},
		{"fe80::1", LinkLocal},
		{"fe80::1%eth0", LinkLocal},
		{"169.254.169.254", Metadata},
		{"169.254.170.2", Metadata},
		{"fd00:ec2::254", Metadata},
		{"100.100.100.200", Metadata},
		{"::ffff:169.254.169.254", Metadata},
		{"::ffff:10.0.0.1", Private},
		{"64:ff9b::a9fe:a9fe", Metadata}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", Loopback},
		{"64:ff9b::808:808", Private}, // a translated public address is still not called public
		{"0.0.0.0", Unspecified},
		{"0.1.2.3", Private},
		{"::", Unspecified},
		{"224.0.0.251", LinkLocal},
		{"239.1.2.3", Multicast},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			if got := Classify(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func TestParseRule(t *testing.T) {
	good := []struct {
		in   string
		want Rule
		str  string
	}{
		{"prom.internal", Rule{Host: "prom.internal"}, "prom.internal"},
		{"Prom.Internal:9090", Rule{Host: "prom.internal", Port: "9090"}, "prom.internal:9090"},
		{"169.254.20.10", Rule{Host: "169.254.20.10"}, "169.254.20.10"},
		{"[fe80::1]:8080", Rule{Host: "fe80::1", Port: "8080"}, "[fe80::1]:8080"},
		{"::1", Rule{Host: "::1"}, "::1"},
		{"169.254.3.4/16", Rule{Prefix: netip.MustParsePrefix("169.254.0.0/16")}, "169.254.0.0/16"},
	}
	for _, tc := range good {
		t.Run(tc.in+" is accepted", func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if err != nil || r != tc.want || r.String() != tc.str {
				t.Errorf("ParseRule(%q) = %+v (%s), %v; want %+v (%s)", tc.in, r, r, err, tc.want, tc.str)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"", `"": empty`},
		{"10.0.0.0/33", `"10.0.0.0/33": not a CIDR such as 10.0.0.0/8`},
		{"prom.internal:0", `"prom.internal:0": port "0" is not 1-65535`},
		{"prom internal", `"prom internal": not a host, host:port or CIDR`},
	}
	for _, tc := range bad {
		t.Run(tc.in+" is refused", func(t *testing.T) {
			if _, err := ParseRule(tc.in); err == nil || err.Error() != tc.want {
				t.Errorf("ParseRule(%q) error = %v, want %s", tc.in, err, tc.want)
			}
		})
	}
}

// fakeResolver answers from a table; a name it does not know fails.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// dialRecorder stands in for the network: it records every address it is
// asked to dial and dials nothing.
type dialRecorder struct {
	mu    sync.Mutex
	dials []string
}

var errNotDialled = errors.New("test: not dialled")

func (d *dialRecorder) Dial(_ context.Context, _, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials = append(d.dials, address)
	return nil, errNotDialled
}

func (d *dialRecorder) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dials...)
}

var resolver = fakeResolver{
	"metadata.google.internal": {"169.254.169.254"},
	"imds.test":                {"fd00:ec2::254"},
	"nodelocal.test":           {"169.254.20.10"},
	"prometheus.monitoring":    {"10.96.0.12"},
	"pods.montage":             {"10.0.0.5", "10.0.0.6"},
	"rebind.test":              {"10.0.0.7", "169.254.169.254"},
	"nat64.test":               {"64:ff9b::a9fe:a9fe"},
	"public.test":              {"203.0.113.10"},
}

func TestTheUpstreamPolicyRefusesLinkLocalAndMetadataBeforeDialling(t *testing.T) {
	tests := []struct {
		name    string
		address string
		allow   []string
		// wantErr is the refusal; empty: dialled at wantDials.
		wantErr   string
		wantDials []string
	}{
		{name: "a name resolving to cloud metadata is refused", address: "metadata.google.internal:80",
			wantErr: "refused address: metadata.google.internal resolves to cloud-metadata address 169.254.169.254, not dialled (allow it with --allow-host)"},
		{name: "the AWS IPv6 metadata address is refused", address: "imds.test:80",
			wantErr: "refused address: imds.test resolves to cloud-metadata address fd00:ec2::254, not dialled (allow it with --allow-host)"},
		{name: "a literal metadata address is refused", address: "169.254.169.254:80",
			wantErr: "refused address: 169.254.169.254 is a cloud-metadata address, not dialled (allow it with --allow-host)"},
		{name: "an IPv4-mapped metadata address is refused", address: "[::ffff:169.254.169.254]:80",
			wantErr: "refused address: 169.254.169.254 is a cloud-metadata address, not dialled (allow it with --allow-host)"},
		{name: "metadata through NAT64 is refused", address: "nat64.test:80",
			wantErr: "refused address: nat64.test resolves to cloud-metadata address 64:ff9b::a9fe:a9fe, not dialled (allow it with --allow-host)"},
		{name: "a link-local address is refused", address: "nodelocal.test:9090",
			wantErr: "refused address: nodelocal.test resolves to link-local address 169.254.20.10, not dialled (allow it with --allow-host)"},
		{name: "a link-local IPv6 literal with a zone is refused", address: "[fe80::1%eth0]:9090",
			wantErr: "refused address: fe80::1 is a link-local address, not dialled (allow it with --allow-host)"},
		{name: "the unspecified address is refused", address: "0.0.0.0:9090",
			wantErr: "refused address: 0.0.0.0 is an unspecified address, not dialled (allow it with --allow-host)"},
		{name: "a name with one metadata address among private ones is refused whole", address: "rebind.test:80",
			wantErr: "refused address: rebind.test resolves to cloud-metadata address 169.254.169.254, not dialled (allow it with --allow-host)"},
		{name: "a private name is dialled at its checked address, not by name", address: "prometheus.monitoring:9090",
			wantDials: []string{"10.96.0.12:9090"}},
		{name: "every address of a name is tried", address: "pods.montage:8000",
			wantDials: []string{"10.0.0.5:8000", "10.0.0.6:8000"}},
		{name: "loopback is allowed", address: "127.0.0.1:9090", wantDials: []string{"127.0.0.1:9090"}},
		{name: "a public address is allowed", address: "public.test:443", wantDials: []string{"203.0.113.10:443"}},
		{name: "a rule opens a link-local IPv6 literal, dialled with its zone", address: "[fe80::1%eth0]:9090", allow: []string{"fe80::/10"},
			wantDials: []string{"[fe80::1%eth0]:9090"}},
		{name: "a rule by address opens a link-local address", address: "nodelocal.test:9090", allow: []string{"169.254.20.10"},
			wantDials: []string{"169.254.20.10:9090"}},
		{name: "a CIDR rule opens cloud metadata", address: "169.254.169.254:80", allow: []string{"169.254.169.254/32"},
			wantDials: []string{"169.254.169.254:80"}},
		{name: "a rule by name dials the name", address: "metadata.google.internal:80", allow: []string{"metadata.google.internal:80"},
			wantDials: []string{"metadata.google.internal:80"}},
		{name: "a rule for another port does not open it", address: "metadata.google.internal:8080", allow: []string{"metadata.google.internal:80"},
			wantErr: "refused address: metadata.google.internal resolves to cloud-metadata address 169.254.169.254"},
		{name: "an unknown name is a resolver error, not a dial", address: "nowhere.test:80",
			wantErr: "resolve nowhere.test: lookup nowhere.test: no such host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rules []Rule
			for _, s := range tc.allow {
				r, err := ParseRule(s)
				if err != nil {
					t.Fatal(err)
				}
				rules = append(rules, r)
			}
			var rec dialRecorder
			p := Upstreams(rules)
			p.Resolver, p.Dial = resolver, rec.Dial
			_, err := p.DialContext(time.Second)(t.Context(), "tcp", tc.address)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dial error = %v, want %q", err, tc.wantErr)
				}
				if strings.HasPrefix(tc.wantErr, "refused") && !errors.Is(err, ErrRefused) {
					t.Errorf("errors.Is(%v, ErrRefused) = false", err)
				}
				if d := rec.got(); len(d) != 0 {
					t.Errorf("dialled %v, want nothing dialled", d)
				}
				return
			}
			if !errors.Is(err, errNotDialled) {
				t.Fatalf("dial error = %v, want the recorder's", err)
			}
			if d := rec.got(); strings.Join(d, " ") != strings.Join(tc.wantDials, " ") {
				t.Errorf("dialled %v, want %v", d, tc.wantDials)
			}
		})
	}
}

func TestTheCalendarsStricterPolicyRefusesPrivateAndLoopback(t *testing.T) {
	var rec dialRecorder
	p := &Policy{Hint: "--calendar-allow-host", Resolver: resolver, Dial: rec.Dial}
	for _, addr := range []string{"prometheus.monitoring:443", "127.0.0.1:443", "[::1]:443"} {
		if _, err := p.DialContext(time.Second)(t.Context(), "tcp", addr); !errors.Is(err, ErrRefused) {
			t.Errorf("dial %s: %v, want a refusal", addr, err)
		}
	}
	if d := rec.got(); len(d) != 0 {
		t.Errorf("dialled %v", d)
	}
	// Opening private does not open cloud metadata.
	p.Open = []Class{Loopback, Private, LinkLocal}
	if err := p.Check(t.Context(), "metadata.google.internal", "80"); !errors.Is(err, ErrRefused) {
		t.Errorf("Check = %v, want a refusal", err)
	}
}

func TestTheSocketsOwnAddressIsCheckedOnceMore(t *testing.T) {
	p := Upstreams(nil)
	ctl := p.control("80")
	if err := ctl("tcp4", "169.254.169.254:80", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("control(169.254.169.254) = %v, want a refusal", err)
	}
	if err := ctl("tcp4", "10.0.0.1:80", nil); err != nil {
		t.Errorf("control(10.0.0.1) = %v, want nil", err)
	}
}

func TestCheckNeedsNoDialAndCheckHostNoLookup(t *testing.T) {
	p := Upstreams(nil)
	p.Resolver = resolver
	if err := p.Check(t.Context(), "metadata.google.internal", "80"); !errors.Is(err, ErrRefused) {
		t.Errorf("Check(metadata.google.internal) = %v, want a refusal", err)
	}
	if err := p.Check(t.Context(), "prometheus.monitoring", "9090"); err != nil {
		t.Errorf("Check(prometheus.monitoring) = %v", err)
	}
	u, _ := url.Parse("http://[fd00:ec2::254]/latest")
	if err := p.CheckURL(t.Context(), u); !errors.Is(err, ErrRefused) {
		t.Errorf("CheckURL(%s) = %v, want a refusal", u, err)
	}
	cal := &Policy{}
	if err := cal.CheckHost("app.localhost", "443"); err == nil || err.Error() != "refused address: app.localhost resolves to loopback address ::1, not dialled" {
		t.Errorf("CheckHost(app.localhost) = %v", err)
	}
	if err := p.CheckHost("metadata.google.internal", "80"); err != nil {
		t.Errorf("CheckHost of a name = %v: it is judged when resolved", err)
	}
}

func TestRedirectsAreCheckedBeforeTheyAreFollowed(t *testing.T) {
	p := Upstreams(nil)
	req := func(s string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		to   string
		via  int
		want string
	}{
		{"http://169.254.169.254/latest/meta-data/", 1, "redirect: refused address: 169.254.169.254 is a cloud-metadata address"},
		{"http://[::ffff:169.254.169.254]/", 1, "redirect: refused address: 169.254.169.254 is a cloud-metadata address"},
		{"file:///etc/passwd", 1, `redirect to scheme "file" refused`},
		{"http://10.0.0.1/", MaxRedirects, "more than 5 redirects"},
		{"http://10.0.0.1/", 1, ""},
	}
	for _, tc := range tests {
		err := p.CheckRedirect(req(tc.to), make([]*http.Request, tc.via))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("redirect to %s after %d: %v, want %q", tc.to, tc.via, err, tc.want)
		}
	}
}

// Through a real loopback server: the transport refuses before any
// request reaches it, and a rule lets it through.
func TestATransportRefusesBeforeTheServerSeesARequest(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HTTP_PROXY", "http://proxy.invalid:3128") // never used
	strict := &Policy{Hint: "--calendar-allow-host"}
	c := &http.Client{Transport: strict.Transport(time.Second), CheckRedirect: strict.CheckRedirect}
	resp, err := c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET through the strict policy succeeded")
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("GET = %v, want a refusal", err)
	}
	mu.Lock()
	if hits != 0 {
		t.Errorf("the server got %d requests", hits)
	}
	mu.Unlock()
	u, _ := url.Parse(srv.URL)
	r, _ := ParseRule(u.Host)
	open := &Policy{Allow: []Rule{r}}
	c = &http.Client{Transport: open.Transport(time.Second), CheckRedirect: open.CheckRedirect}
	resp, err = c.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with a rule for %s: %v", u.Host, err)
	}
	resp.Body.Close()
}
