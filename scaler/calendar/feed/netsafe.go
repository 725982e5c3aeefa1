package feed

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/montage/montage-scaler/scaler/calendar"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// ErrRefusedAddress marks a feed address that the network policy refuses.
var ErrRefusedAddress = netpolicy.ErrRefused

// AllowRule is one parsed --calendar-allow-host value.
type AllowRule = netpolicy.Rule

// ParseAllowHost parses a --calendar-allow-host value: a host
// ("cal.internal", "10.0.0.5"), a host:port ("[::1]:8443") or a CIDR
// ("10.20.0.0/16").
func ParseAllowHost(s string) (AllowRule, error) {
	r, err := netpolicy.ParseRule(s)
	if err != nil {
		return AllowRule{}, fmt.Errorf("calendar: --calendar-allow-host %w", err)
	}
	return r, nil
}

// policy is l's address policy for feeds, stricter than the other URL-valued
// keys': a feed comes from the internet, so loopback and private addresses
// are refused too unless AllowPrivate opens them (cloud metadata never:
// only a rule opens it).
func policy(l calendar.Limits) (*netpolicy.Policy, error) {
	p := &netpolicy.Policy{Hint: "--calendar-allow-host or --calendar-allow-private"}
	if l.AllowPrivate {
		p.Open = []netpolicy.Class{netpolicy.Loopback, netpolicy.Private, netpolicy.LinkLocal, netpolicy.Unspecified, netpolicy.Multicast}
	}
	for _, s := range l.AllowHosts {
		r, err := ParseAllowHost(s)
		if err != nil {
			return nil, err
		}
		p.Allow = append(p.Allow, r)
	}
	return p, nil
}

// CheckURL resolves the feed's host and refuses it when any of its
// addresses is loopback, private, link-local or cloud metadata and not
// allowed. check and calendar call it up front; fetches check again at
// dial time and on every redirect.
func CheckURL(ctx context.Context, u calendar.FeedURL, l calendar.Limits) error {
	p, err := policy(l)
	if err != nil {
		return err
	}
	if err := p.CheckURL(ctx, u.URL()); err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	return nil
}

// NewHTTPClient returns the client feeds are fetched with: the policy
// enforced after DNS, at dial time and on every redirect, no proxy from
// the environment, the fetch timeout as a whole.
func NewHTTPClient(l calendar.Limits) (*http.Client, error) {
	l = l.WithDefaults()
	p, err := policy(l)
	if err != nil {
		return nil, err
	}
	tr := p.Transport(min(l.FetchTimeout, 10*time.Second))
	tr.MaxIdleConns = 16
	tr.ResponseHeaderTimeout = l.FetchTimeout
	return &http.Client{Transport: tr, Timeout: l.FetchTimeout, CheckRedirect: p.CheckRedirect}, nil
}
