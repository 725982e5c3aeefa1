package latency

import (
	"errors"
	"strings"
)

// Errors for an address that answers HTTP/1 with an HTTP/2 frame: a gRPC
// server such as the scaler itself, whose default port (9090) is also
// Prometheus's.
var (
	errPromIsGRPC   = errors.New("this address speaks HTTP/2 gRPC, not Prometheus's HTTP API — is it the scaler's own port?")
	errScrapeIsGRPC = errors.New("this address speaks HTTP/2 gRPC, not a /metrics endpoint — is it the scaler's own port?")
)

// speaksGRPC reports whether err is net/http's answer to a server that
// replied with an HTTP/2 frame (a gRPC server's SETTINGS frame: 3 length
// bytes, type 0x04) where an HTTP/1 status line was due. No HTTP/1
// response starts with a NUL byte.
func speaksGRPC(err error) bool {
	if err == nil {
		return false
	}
	const marker = `malformed HTTP response "\x00`
	msg := err.Error()
	i := strings.Index(msg, marker)
	if i < 0 {
		return false
	}
	// The frame header as Go quotes it: \x00\x00 then the length's low
	// byte (quoted as \xNN or one character), then the type \x04.
	head := msg[i+len(marker)-len(`\x00`):]
	return strings.HasPrefix(head, `\x00\x00`) && strings.Contains(head[:min(len(head), 20)], `\x04`)
}
