package forecast

import "github.com/montage/montage-scaler/scaler/quota"

// Claims are what a watch of c holds in the process (see package quota):
// the broker its history is kept in, counted like the celery component's
// (the same broker is the same upstream: it costs nothing more).
func (c *Config) Claims() []quota.Claim {
	return []quota.Claim{{Kind: quota.Brokers, Key: c.Broker.Key(), Shown: c.Broker.Redacted()}}
}
