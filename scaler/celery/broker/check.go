package broker

import (
	"context"
	"fmt"
	"net"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// CheckAddresses resolves broker b's addresses (a sentinel's sentinels)
// and refuses them as its connections would, before any is dialled: for
// commands that check up front. A Unix socket passes.
func CheckAddresses(ctx context.Context, b celery.Broker, p *netpolicy.Policy) error {
	if b.Scheme() == "redis+socket" {
		return nil
	}
	for _, a := range b.Addrs() {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("brokerURL %s: %w", b.Redacted(), err)
		}
		if err := p.Check(ctx, host, port); err != nil {
			return fmt.Errorf("brokerURL %s: %w", b.Redacted(), err)
		}
	}
	return nil
}
