package prom

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeResult feeds arbitrary data to the decoding of a Prometheus
// answer: it never panics, its errors are valid UTF-8, and a number it
// accepts came from a value in the answer (a sample without one is an
// error, never a 0).
func FuzzDecodeResult(f *testing.F) {
	f.Add(`{"resultType":"vector","result":[{"metric":{},"value":[1,"0.05"]}]}`)
	f.Add(`{"resultType":"vector","result":null}`)
	f.Add(`{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"2"]]}]}`)
	f.Add(`{"resultType":"scalar","result":[1,"3"]}`)
	f.Add(`{"resultType":"vector","result":[{"metric":{}}]}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, data string) {
		v, err := decodeResult(json.RawMessage(data), "latencyQuery", "q")
		if err != nil {
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not UTF-8: %q", err)
			}
			return
		}
		if v.Empty || v.Labels == "scalar" {
			return
		}
		// One series was read: it must carry a value [time, "number"]
		// (keys matched as encoding/json matches them).
		var d struct {
			Result []struct {
				Value  []json.RawMessage   `json:"value"`
				Values [][]json.RawMessage `json:"values"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil || len(d.Result) != 1 {
			t.Fatalf("a value %v out of %q (%v)", v.Value, data, err)
		}
		r := d.Result[0]
		if len(r.Values) > 0 {
			r.Value = r.Values[len(r.Values)-1]
		}
		if len(r.Value) != 2 {
			t.Fatalf("a value %v out of a series without one: %q", v.Value, data)
		}
	})
}
