package celery

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient returns a Redis client for the broker, for other components
// that keep their own data there (the forecast's history). TLS files are
// read now. The caller closes the client.
func (b Broker) NewClient(dialTimeout, readTimeout time.Duration) (*redis.Client, error) {
	return b.newClient(HubOptions{DialTimeout: dialTimeout, ReadTimeout: readTimeout}.withDefaults())
}
