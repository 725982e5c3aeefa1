package redisbroker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// errNotRedis is what a broker connection says when the other end answers
// in another protocol: its answer is not quoted (go-redis would quote its
// first line, which may be another service's secrets).
var errNotRedis = errors.New("brokerURL: not a Redis answer (the address speaks another protocol; its answer is not shown)")

// dialer is the go-redis Dialer of a broker's clients: every address is
// checked by the address policy before it is dialled (a sentinel's master
// included, as it comes from the sentinel's answer), TLS goes on top, and
// a connection whose first byte is not RESP fails with errNotRedis.
func dialer(o Options, tlsConf *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	p := o.Policy
	if p == nil {
		p = netpolicy.Upstreams(nil)
	}
	dial := p.DialContext(o.DialTimeout)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			if errors.Is(err, netpolicy.ErrRefused) {
				return nil, fmt.Errorf("brokerURL: %w", err)
			}
			return nil, err
		}
		if tlsConf != nil {
			tc := tls.Client(conn, tlsConf)
			hctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		return &respConn{Conn: conn}, nil
	}
}

// respConn fails the first read whose first byte is not a RESP type.
type respConn struct {
	net.Conn
	checked atomic.Bool
}

// respTypes are the first bytes of RESP2 and RESP3 replies.
const respTypes = "+-:$*_,#!=(%~>|"

func (c *respConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.checked.Swap(true) && !strings.ContainsRune(respTypes, rune(p[0])) {
		return 0, errNotRedis
	}
	return n, err
}
