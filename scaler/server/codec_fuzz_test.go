package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// FuzzRepairUTF8 feeds arbitrary wire data to the request repair: it never
// panics, and what it returns decodes without a UTF-8 error, naming a key
// that is itself valid UTF-8.
func FuzzRepairUTF8(f *testing.F) {
	entry := func(k, v string) []byte {
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		return protowire.AppendString(e, v)
	}
	ref := protowire.AppendTag(nil, 1, protowire.BytesType)
	ref = protowire.AppendString(ref, "w\xff")
	ref = protowire.AppendTag(ref, 3, protowire.BytesType)
	ref = protowire.AppendBytes(ref, entry("queues", "video\xc3"))
	f.Add(ref)
	f.Add(entry("a", "b"))
	f.Add([]byte{0x1a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{&pb.ScaledObjectRef{}, &pb.GetMetricsRequest{}} {
			out, bad, err := repairUTF8(b, m.ProtoReflect().Descriptor())
			if err != nil {
				continue
			}
			if bad != nil && !utf8.ValidString(bad.key) {
				t.Fatalf("bad key %q is not UTF-8", bad.key)
			}
			if err := proto.Unmarshal(out, m); err != nil && strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("repaired data still fails: %v", err)
			}
		}
	})
}
