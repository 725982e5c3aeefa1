package calendar

import "github.com/montage/montage-scaler/scaler/quota"

// Claims are what a watch of c holds in the process (see package quota):
// its feed, one distinct upstream however many watches share it.
func (c *Config) Claims() []quota.Claim {
	return []quota.Claim{{Kind: quota.Feeds, Key: c.URL.Raw(), Shown: c.URL.Redacted()}}
}
