package broker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/scaler/celery/broker"
	"github.com/montage/montage-scaler/scaler/celery/redisbroker"
	"github.com/montage/montage-scaler/scaler/netpolicy"
)

// notRedis listens on loopback and answers whatever it is sent with text
// that is not Redis's protocol, as an internal service would.
func notRedis(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := c.Write([]byte(answer)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A brokerURL pointing at a service that does not speak Redis: the error
// says so and quotes nothing of what it answered (go-redis would quote its
// first line).
func TestABrokerThatDoesNotSpeakRedisIsNeverQuoted(t *testing.T) {
	for name, answer := range map[string]string{
		"plain text":    "db_password=hunter2; aws_key=AKIAHOSTILE0EXAMPLE\r\n",
		"an HTTP error": "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\ndb_password=hunter2\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr := notRedis(t, answer)
			w := fastHub(t).Watch(mustBroker(t, "redis://"+addr+"/0"), layout("", time.Hour, true, "video"))
			defer w.Close()
			s, err := w.First(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if s.Err == nil {
				t.Fatalf("First = %+v, want an error", s)
			}
			msg := s.Err.Error()
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "AKIA") || strings.Contains(msg, "Bad Request") {
				t.Errorf("the error quotes the answer: %s", msg)
			}
			if want := "not a Redis answer"; !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		})
	}
}

// names answers the policy's lookups from a table.
type names map[string][]string

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range n[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// loopbackOnly dials loopback for real and records, without dialling,
// every other address the policy let through: no packet leaves the host.
type loopbackOnly struct {
	mu    sync.Mutex
	other []string
}

func (l *loopbackOnly) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr().IsLoopback() {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.other = append(l.other, address)
	return nil, errors.New("test: only loopback is dialled")
}

func (l *loopbackOnly) dialled() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.other...)
}

// fakeSentinel speaks just enough of Redis Sentinel to name a master.
func fakeSentinel(t *testing.T, masterHost, masterPort string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cmd, err := readCommand(r)
					if err != nil {
						return
					}
					var reply string
					switch {
					case len(cmd) > 1 && strings.EqualFold(cmd[0], "sentinel") && strings.EqualFold(cmd[1], "get-master-addr-by-name"):
						reply = "*2\r\n" + bulk(masterHost) + bulk(masterPort)
					case strings.EqualFold(cmd[0], "sentinel"):
						reply = "*0\r\n"
					case strings.EqualFold(cmd[0], "subscribe"):
						for i, ch := range cmd[1:] {
							reply += "*3\r\n" + bulk("subscribe") + bulk(ch) + fmt.Sprintf(":%d\r\n", i+1)
						}
					case strings.EqualFold(cmd[0], "ping"):
						reply = "+PONG\r\n"
					case strings.EqualFold(cmd[0], "hello"):
						reply = "-ERR unknown command 'HELLO'\r\n"
					default:
						reply = "+OK\r\n"
					}
					if _, err := c.Write([]byte(reply)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	out := make([]string, n)
	for i := range out {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		s, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		out[i] = strings.TrimRight(s, "\r\n")
	}
	return out, nil
}

// brokerURL on a link-local or cloud-metadata address is refused before it
// is dialled, naming the key and the flag: by name, and when a sentinel
// names such a master (the sentinel's answer is checked like a redirect).
func TestABrokerOnALinkLocalOrMetadataAddressIsRefusedBeforeDialling(t *testing.T) {
	sentinel := fakeSentinel(t, "169.254.169.254", "6379")
	tests := []struct {
		name, url, master, want string
	}{
		{name: "a broker whose name resolves to cloud metadata", url: "redis://metadata.google.internal:6379/0",
			want: "brokerURL: refused address: metadata.google.internal resolves to cloud-metadata address 169.254.169.254, not dialled (allow it with --allow-host)"},
		{name: "a link-local broker", url: "rediss://169.254.20.10:6380/0?ssl_cert_reqs=none",
			want: "brokerURL: refused address: 169.254.20.10 is a link-local address, not dialled (allow it with --allow-host)"},
		{name: "a sentinel naming a metadata master", url: "sentinel://" + sentinel + "/0", master: "montage",
			want: "brokerURL: refused address: 169.254.169.254 is a cloud-metadata address, not dialled (allow it with --allow-host)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lo loopbackOnly
			p := netpolicy.Upstreams(nil)
			p.Resolver, p.Dial = names{"metadata.google.internal": {"169.254.169.254"}}, lo.dial
			h := broker.NewHub(broker.HubOptions{PollInterval: time.Hour, Redis: redisbroker.Options{Policy: p}})
			t.Cleanup(h.Close)
			b, err := celery.ParseBrokerURL(tc.url, tc.master)
			if err != nil {
				t.Fatal(err)
			}
			w := h.Watch(b, layout("", time.Hour, true, "video"))
			defer w.Close()
			s, err := w.First(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if s.Err == nil || !strings.Contains(s.Err.Error(), tc.want) || !errors.Is(s.Err, netpolicy.ErrRefused) {
				t.Errorf("error %v, want a refusal saying %q", s.Err, tc.want)
			}
			if d := lo.dialled(); len(d) != 0 {
				t.Errorf("dialled %v", d)
			}
			if tc.master == "" {
				if err := broker.CheckAddresses(t.Context(), b, p); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "brokerURL: ")) {
					t.Errorf("CheckAddresses = %v, want %q", err, tc.want)
				}
			}
		})
	}
}
