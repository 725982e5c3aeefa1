package server

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/montage/montage-scaler/scaler/meta"
)

// Codec returns gRPC's proto codec with one difference: a request whose
// strings are not valid UTF-8 (proto3 requires it) is still decoded, with
// the bad bytes as U+FFFD, and marked, so that its handler answers
// InvalidArgument naming the metadata key (CheckRequest). gRPC's own codec
// fails such a request before any handler runs, as Internal. Install it
// with grpc.ForceServerCodecV2.
func Codec() encoding.CodecV2 {
	return codec{base: encoding.GetCodecV2(protocodec.Name)}
}

type codec struct{ base encoding.CodecV2 }

func (c codec) Name() string { return protocodec.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok || !strings.Contains(err.Error(), "invalid UTF-8") {
		return err
	}
	fixed, bad, rerr := repairUTF8(data.Materialize(), m.ProtoReflect().Descriptor())
	if rerr != nil || bad == nil {
		return err
	}
	proto.Reset(m)
	if uerr := proto.Unmarshal(fixed, m); uerr != nil {
		return err
	}
	r := m.ProtoReflect()
	mark := protowire.AppendTag(nil, markField, protowire.BytesType)
	mark = protowire.AppendString(mark, bad.key+"\x00"+bad.allowed)
	r.SetUnknown(append(r.GetUnknown(), mark...))
	return nil
}

// markField carries, as an unknown field of the request, which string was
// not UTF-8 (the highest field number: no message of ours uses it).
const markField protowire.Number = protowire.MaxValidNumber

// CheckRequest returns the InvalidArgument error of a request the codec
// marked (its strings were not valid UTF-8), else nil.
func CheckRequest(m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil
	}
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		vlen := protowire.ConsumeFieldValue(num, typ, b)
		if vlen < 0 {
			return nil
		}
		if num == markField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeString(b[:vlen])
			key, allowed, _ := strings.Cut(v, "\x00")
			return &meta.Error{Key: key, Allowed: allowed}
		}
		b = b[vlen:]
	}
	return nil
}

var errWire = errors.New("malformed wire data")

// badString names the first string of a request that was not UTF-8: a
// metadata entry by its key, any other field by its path.
type badString struct {
	key, allowed string
	metadata     bool
}

// repairUTF8 re-encodes wire data of a message of type md with every string
// made valid UTF-8, and says which was not (the first one).
func repairUTF8(b []byte, md protoreflect.MessageDescriptor) ([]byte, *badString, error) {
	var out []byte
	var bad *badString
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, errWire
		}
		vlen := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vlen < 0 {
			return nil, nil, errWire
		}
		field := b[:n+vlen]
		b = b[n+vlen:]
		fd := md.Fields().ByNumber(num)
		if fd == nil || typ != protowire.BytesType {
			out = append(out, field...)
			continue
		}
		content, _ := protowire.ConsumeBytes(field[n:])
		var found *badString
		switch {
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.Valid(content) {
				content = []byte(strings.ToValidUTF8(string(content), "\ufffd"))
				found = &badString{key: string(fd.Name()), allowed: fmt.Sprintf("the %s is not valid UTF-8", fd.Name())}
			}
		case fd.Kind() == protoreflect.MessageKind:
			var inner *badString
			var err error
			if content, inner, err = repairUTF8(content, fd.Message()); err != nil {
				return nil, nil, err
			}
			switch {
			case inner == nil || inner.metadata:
				found = inner
			case fd.IsMap():
				// Name the entry by its key, as the metadata errors do.
				found = &badString{key: mapKey(content), allowed: inner.allowed, metadata: true}
			default:
				found = &badString{key: string(fd.Name()) + "." + inner.key, allowed: inner.allowed}
			}
		}
		if bad == nil {
			bad = found
		}
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, content)
	}
	return out, bad, nil
}

// mapKey is the key (field 1) of a map entry's wire data.
func mapKey(entry []byte) string {
	for len(entry) > 0 {
		num, typ, n := protowire.ConsumeTag(entry)
		if n < 0 {
			return ""
		}
		vlen := protowire.ConsumeFieldValue(num, typ, entry[n:])
		if vlen < 0 {
			return ""
		}
		if num == 1 && typ == protowire.BytesType {
			k, _ := protowire.ConsumeString(entry[n:])
			return k
		}
		entry = entry[n+vlen:]
	}
	return ""
}
