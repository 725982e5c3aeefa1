package server_test

import (
	"testing"

	pb "github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
)

// rawCodec sends bytes as they are: a Go client refuses to marshal a
// string that is not UTF-8, a client in another language may not.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// wireRef encodes a ScaledObjectRef (and ExplainRequest: same fields)
// byte for byte.
func wireRef(name, namespace string, kv ...string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, namespace)
	for i := 0; i+1 < len(kv); i += 2 {
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendString(e, kv[i])
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, kv[i+1])
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}

func wireGetMetrics(ref []byte, metric string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, ref)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, metric)
}

// Metadata (or a name) that is not UTF-8 is InvalidArgument naming the
// key, not the Internal error gRPC's codec gives before any handler runs.
func TestRequestsThatAreNotUTF8AreInvalidArgumentNamingTheKey(t *testing.T) {
	f := newFixture(t)
	const broker = "redis://fake.invalid:6379/0"
	tests := []struct {
		name, method string
		req          []byte
		want         string
	}{
		{"a metadata value", pb.ExternalScaler_IsActive_FullMethodName,
			wireRef("w", "media", "brokerURL", broker, "queues", "video\xff"),
			`metadata "queues": the value is not valid UTF-8`},
		{"a metadata key", pb.ExternalScaler_GetMetricSpec_FullMethodName,
			wireRef("w", "media", "brokerURL", broker, "q\xc3", "1"),
			"metadata \"q\ufffd\": the key is not valid UTF-8"},
		{"the ScaledObject's name", pb.ExternalScaler_IsActive_FullMethodName,
			wireRef("w\xff", "media", "brokerURL", broker),
			`metadata "name": the name is not valid UTF-8`},
		{"a metadata value in GetMetrics", pb.ExternalScaler_GetMetrics_FullMethodName,
			wireGetMetrics(wireRef("w", "media", "brokerURL", "redis://h\xff:6379/0"), "m"),
			`metadata "brokerURL": the value is not valid UTF-8`},
		{"the name in GetMetrics", pb.ExternalScaler_GetMetrics_FullMethodName,
			wireGetMetrics(wireRef("w", "media\xfe", "brokerURL", broker), "m"),
			`metadata "scaledObjectRef.namespace": the namespace is not valid UTF-8`},
		{"the metric name", pb.ExternalScaler_GetMetrics_FullMethodName,
			wireGetMetrics(wireRef("w", "media", "brokerURL", broker), "m\xff"),
			`metadata "metricName": the metricName is not valid UTF-8`},
		{"a metadata value in Explain", scalerv1.Inspector_Explain_FullMethodName,
			wireRef("w", "media", "brokerURL", broker, "calendarURL", "https://c/\xff.ics"),
			`metadata "calendarURL": the value is not valid UTF-8`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var resp []byte
			err := f.conn.Invoke(t.Context(), tc.method, &tc.req, &resp, grpc.ForceCodecV2(rawCodec{}))
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != tc.want {
				t.Fatalf("%s = %v, want InvalidArgument %q", tc.method, err, tc.want)
			}
		})
	}
	t.Run("a metadata value in StreamIsActive", func(t *testing.T) {
		stream, err := f.conn.NewStream(t.Context(), &pb.ExternalScaler_ServiceDesc.Streams[0],
			pb.ExternalScaler_StreamIsActive_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		req := wireRef("w", "media", "brokerURL", broker, "queues", "\xff")
		if err := stream.SendMsg(&req); err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var resp []byte
		err = stream.RecvMsg(&resp)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != `metadata "queues": the value is not valid UTF-8` {
			t.Fatalf("StreamIsActive = %v, want InvalidArgument", err)
		}
	})
	if f.reg.Len() != 0 {
		t.Errorf("%d watches made from requests that are not UTF-8", f.reg.Len())
	}
}
