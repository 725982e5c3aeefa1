package feed

import (
	"net/netip"
	"testing"
)

func TestParseAllowHost(t *testing.T) {
	good := []struct {
		in   string
		want AllowRule
		str  string
	}{
		{"cal.internal", AllowRule{Host: "cal.internal"}, "cal.internal"},
		{"Cal.Internal:8443", AllowRule{Host: "cal.internal", Port: "8443"}, "cal.internal:8443"},
		{"10.0.0.5", AllowRule{Host: "10.0.0.5"}, "10.0.0.5"},
		{"[::1]:8080", AllowRule{Host: "::1", Port: "8080"}, "[::1]:8080"},
		{"::1", AllowRule{Host: "::1"}, "::1"},
		{"10.20.3.4/16", AllowRule{Prefix: netip.MustParsePrefix("10.20.0.0/16")}, "10.20.0.0/16"},
	}
	for _, tc := range good {
		t.Run(tc.in+" is accepted", func(t *testing.T) {
			r, err := ParseAllowHost(tc.in)
			if err != nil || r != tc.want || r.String() != tc.str {
				t.Errorf("ParseAllowHost(%q) = %+v (%s), %v; want %+v (%s)", tc.in, r, r, err, tc.want, tc.str)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"", `calendar: --calendar-allow-host "": empty`},
		{"10.0.0.0/33", `calendar: --calendar-allow-host "10.0.0.0/33": not a CIDR such as 10.0.0.0/8`},
		{"cal.internal:0", `calendar: --calendar-allow-host "cal.internal:0": port "0" is not 1-65535`},
		{"cal internal", `calendar: --calendar-allow-host "cal internal": not a host, host:port or CIDR`},
	}
	for _, tc := range bad {
		t.Run(tc.in+" is refused", func(t *testing.T) {
			if _, err := ParseAllowHost(tc.in); err == nil || err.Error() != tc.want {
				t.Errorf("ParseAllowHost(%q) error = %v, want %s", tc.in, err, tc.want)
			}
		})
	}
}
