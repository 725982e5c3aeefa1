package celery

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// NewClient returns a Redis client for the broker, for other components
// that keep their own data there (the forecast's history), dialling
// through the address policy p (nil: netpolicy.Upstreams(nil)). TLS files
// are read now. The caller closes the client.
func (b Broker) NewClient(dialTimeout, readTimeout time.Duration, p *netpolicy.Policy) (*redis.Client, error) {
	return b.newClient(HubOptions{DialTimeout: dialTimeout, ReadTimeout: readTimeout, Policy: p}.withDefaults())
}
