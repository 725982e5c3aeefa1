package servers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrPortTaken says a process could not bind the port it was given: another
// took it between the probe that found it free and the bind.
var ErrPortTaken = errors.New("port taken")

// WaitStartLine waits until a starting process's own log (from byte offset
// on: a log that earlier starts appended to) says it listens: the first
// match of ready (its first submatch, if any, is returned). A line saying
// that an address is already in use gives ErrPortTaken. Only the process's
// own output is trusted: a probe of the port could be answered by whichever
// process took it. The process's exit (done) and the limit are errors that
// quote the log.
func WaitStartLine(logPath string, offset int64, done <-chan struct{}, limit time.Duration, ready *regexp.Regexp) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		exited := false
		select {
		case <-done:
			exited = true // read the log once more: it is complete now
		default:
		}
		b, _ := os.ReadFile(logPath)
		b = b[min(offset, int64(len(b))):]
		if m := ready.FindSubmatch(b); m != nil {
			if len(m) > 1 {
				return string(m[1]), nil
			}
			return "", nil
		}
		if strings.Contains(strings.ToLower(string(b)), "address already in use") {
			return "", fmt.Errorf("%w:\n%s", ErrPortTaken, b)
		}
		if exited {
			return "", fmt.Errorf("exited at start:\n%s", b)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("did not say it listens within %s:\n%s", limit, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RefusedAddr is a loopback host:port that refuses connections for the
// rest of the test: its port is bound and never listened on, so no other
// process can take it (a port closed after a probe could be answered by
// whichever process takes it next).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("servers: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("servers: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("servers: getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
