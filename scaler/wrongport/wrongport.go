// Package wrongport recognises an address that speaks the other protocol —
// a gRPC port (the scaler's own, whose default 9090 is also Prometheus's)
// asked over HTTP/1, an HTTP/1 port asked over gRPC — from the error the
// client got, and words it once, so that check, explain and report say the
// same thing.
package wrongport

import (
	"fmt"
	"net/http"
	"strings"
)

// Hint is the question every message about a mixed-up port asks.
const Hint = "is it the scaler's own port?"

// Error is the message for an address that speaks one protocol where
// another was wanted: "this address speaks <speaks>, not <wanted> — <Hint>",
// with more advice after it when it is not empty.
func Error(speaks, wanted, more string) error {
	msg := fmt.Sprintf("this address speaks %s, not %s — %s", speaks, wanted, Hint)
	if more != "" {
		msg += " " + more
	}
	return fmt.Errorf("%s", msg)
}

// GRPCNotHTTP is the error for a gRPC port where an HTTP/1 server (what)
// was wanted: Prometheus's HTTP API, a /metrics endpoint.
func GRPCNotHTTP(what string) error { return Error("HTTP/2 gRPC", what, "") }

// HTTPNotGRPC is the error for an HTTP/1 port where montage-scaler's gRPC
// port was wanted (explain): its HTTP port, or a Prometheus on 9090.
func HTTPNotGRPC() error {
	return Error("HTTP/1.1", "gRPC", "explain wants serve's --grpc-addr (:9090 unless set), not its --http-addr (:8080) nor a Prometheus")
}

// SpeaksGRPC reports whether err is net/http's answer to a server that
// replied with an HTTP/2 frame (a gRPC server's SETTINGS frame: 3 length
// bytes, type 0x04) where an HTTP/1 status line was due. No HTTP/1
// response starts with a NUL byte.
func SpeaksGRPC(err error) bool {
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

// SpeaksHTTP1 reports whether err is a gRPC client's answer to a server
// that replied with an HTTP/1 status line where the HTTP/2 server preface
// was due: "HTTP/1.1 400" read as a frame header is a frame far too large,
// and the http2 package says what it looked like.
func SpeaksHTTP1(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "error reading server preface") &&
		(strings.Contains(msg, "looked like an HTTP/1.1 header") || strings.Contains(msg, "frame too large"))
}

// Unsolicited reports whether err is net/http's error for a connection on
// which the server spoke before the request was written (its "unsolicited
// response": readLoopPeekFailLocked). A server that greets first, as
// gRPC's SETTINGS frame or an SSH banner, wins that race now and then, and
// the error keeps none of the bytes SpeaksGRPC reads.
func Unsolicited(err error) bool {
	return err != nil && strings.Contains(err.Error(), "readLoopPeekFailLocked")
}

// Do is client.Do, asked once more on a new connection when the answer was
// Unsolicited, so that a server that greets first is named by what it said
// (SpeaksGRPC, or net/http's "malformed HTTP response") instead of an error
// that names nothing. A request whose body cannot be read again is not
// asked twice.
func Do(client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if !Unsolicited(err) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return resp, err
	}
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		body, berr := req.GetBody()
		if berr != nil {
			return resp, err
		}
		again.Body = body
	}
	return client.Do(again)
}
