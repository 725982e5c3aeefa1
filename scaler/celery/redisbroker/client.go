package redisbroker

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// NewClient returns a Redis client for broker b, for other components
// that keep their own data there (the forecast's history), dialling
// through the address policy p (nil: netpolicy.Upstreams(nil)). TLS files
// are read now. The caller closes the client.
func NewClient(b celery.Broker, dialTimeout, readTimeout time.Duration, p *netpolicy.Policy) (*redis.Client, error) {
	return newClient(b, Options{DialTimeout: dialTimeout, ReadTimeout: readTimeout, Policy: p}.withDefaults())
}

// newClient builds the go-redis client for b: one connection does the job
// (a poll's rounds run one after the other; a subscription has its own),
// and each connection is a client slot of the broker the app needs too.
// Pipelines run on that one pool: go-redis's own pipeline pool would add
// up to 10 connections with 128 KiB buffers each (measured: 263 KiB of heap
// per client with it, 67 KiB without). A refused dial is not retried
// inside go-redis (its default is 5 attempts 100 ms apart, which made a
// down broker's poll take half a second, and its error a deadline on a
// loaded machine): the poller tries again, backing off. TLS files are read
// here, at the edge, not at parse time.
func newClient(b celery.Broker, o Options) (*redis.Client, error) {
	var tlsConf *tls.Config
	if t, ok := b.TLS(); ok {
		var err error
		if tlsConf, err = tlsConfig(b.Addrs()[0], t); err != nil {
			return nil, fmt.Errorf("celery: broker %s: %w", b.Redacted(), err)
		}
	}
	user, pass := b.Credentials()
	addrs := b.Addrs()
	switch b.Scheme() {
	case "sentinel":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			Dialer:           dialer(o, nil),
			MasterName:       b.Master(),
			SentinelAddrs:    addrs,
			Username:         user,
			Password:         pass,
			DB:               b.DB(),
			DialTimeout:      o.DialTimeout,
			ReadTimeout:      o.ReadTimeout,
			WriteTimeout:     o.ReadTimeout,
			MaxRetries:       1,
			DialerRetries:    1, // the poller tries again (see newClient's doc)
			PoolSize:         1,
			PipelinePoolSize: -1,
			DisableIdentity:  true,
		}), nil
	case "":
		return nil, fmt.Errorf("celery: zero Broker: use ParseBrokerURL")
	}
	network := "tcp"
	if b.Scheme() == "redis+socket" {
		network = "unix"
	}
	return redis.NewClient(&redis.Options{
		Dialer:           dialer(o, tlsConf),
		Network:          network,
		Addr:             addrs[0],
		Username:         user,
		Password:         pass,
		DB:               b.DB(),
		TLSConfig:        tlsConf,
		DialTimeout:      o.DialTimeout,
		ReadTimeout:      o.ReadTimeout,
		WriteTimeout:     o.ReadTimeout,
		MaxRetries:       1,
		DialerRetries:    1,
		PoolSize:         1,
		PipelinePoolSize: -1,
		Protocol:         2,
		DisableIdentity:  true,
	}), nil
}
