package celery

import "github.com/montage/montage-scaler/scaler/quota"

// Claims are what a watch of c holds in the process (see package quota):
// its broker, one distinct upstream however many watches share it, and
// the lists it adds to that broker's shared poll. A broker is one
// connection key (Broker.Key): address, db, credentials and TLS, so two
// dbs of one Redis server are two brokers (each has a connection of its
// own); a sentinel:// broker is its sentinels, master name and db; a
// redis+socket:// broker its socket path and db.
func (c *Config) Claims() []quota.Claim {
	key, shown := c.Broker.Key(), c.Broker.Redacted()
	l := c.Layout.Normalize()
	return []quota.Claim{
		{Kind: quota.Brokers, Key: key, Shown: shown},
		{Kind: quota.Lists, Key: key, Shown: shown, Amount: len(l.Queues) * len(l.Lists(""))},
	}
}
