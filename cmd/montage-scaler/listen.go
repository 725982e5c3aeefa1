package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listenOn listens on addr for the flag that named it; its error names the
// flag and the address once (net's own "listen tcp :9090" would say them
// again) and what to do.
func listenOn(flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s %s: address already in use: another process listens there (another serve?): give another address, or port 0 (127.0.0.1:0) for one the kernel picks, which the serving log line and --addr-file name", flag, addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s %s: permission denied: a port below 1024 needs root or CAP_NET_BIND_SERVICE; give a port above 1023", flag, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("%s %s: no interface of this machine has that address: give one of its own, or leave the host out (:9090) for all of them", flag, addr)
	}
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return nil, fmt.Errorf("%s %q: %s: want host:port, such as :9090, 127.0.0.1:9090 or 127.0.0.1:0", flag, addr, ae.Err)
	}
	return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
}
