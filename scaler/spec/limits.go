package spec

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/montage/montage-scaler/scaler/meta"
)

// Limits on one trigger's metadata. KEDA sends the whole map with every
// RPC, and a watch keeps what it parsed from it: beyond these a request is
// refused (InvalidArgument naming a key) before anything is parsed or
// cached. The largest legitimate values are PEM bundles (prometheusCA).
const (
	// MaxKeys is how many keys one trigger may have (the scaler reads
	// about 50, KEDA adds 3).
	MaxKeys = 100
	// MaxKeyBytes bounds the length of one key.
	MaxKeyBytes = 128
	// MaxValueBytes bounds the length of one value.
	MaxValueBytes = 16 << 10
	// MaxMetadataBytes bounds the keys and values together.
	MaxMetadataBytes = 64 << 10
)

// CheckLimits refuses metadata beyond MaxKeys, MaxKeyBytes, MaxValueBytes or
// MaxMetadataBytes, or whose keys or values are not valid UTF-8, with a
// *meta.Error naming a key. It reads the map once and keeps nothing.
func CheckLimits(md map[string]string) error {
	if len(md) > MaxKeys {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return &meta.Error{Key: keys[MaxKeys], Allowed: fmt.Sprintf(
			"the metadata has %d keys, more than the %d allowed (this is the first one over)", len(md), MaxKeys)}
	}
	total, largest := 0, ""
	for k, v := range md {
		switch {
		case len(k) > MaxKeyBytes:
			return &meta.Error{Key: k, Allowed: fmt.Sprintf("a key of %d bytes, more than the %d allowed", len(k), MaxKeyBytes)}
		case !utf8.ValidString(k):
			return &meta.Error{Key: k, Allowed: "the key is not valid UTF-8"}
		case len(v) > MaxValueBytes:
			return &meta.Error{Key: k, Allowed: fmt.Sprintf("a value of %d bytes, more than the %d allowed", len(v), MaxValueBytes)}
		case !utf8.ValidString(v):
			return &meta.Error{Key: k, Allowed: "the value is not valid UTF-8"}
		}
		total += len(k) + len(v)
		if lv := len(md[largest]); largest == "" || len(v) > lv || (len(v) == lv && k < largest) {
			largest = k
		}
	}
	if total > MaxMetadataBytes {
		return &meta.Error{Key: largest, Allowed: fmt.Sprintf(
			"the metadata totals %d bytes, more than the %d allowed; this key's value is the largest (%d bytes)",
			total, MaxMetadataBytes, len(md[largest]))}
	}
	return nil
}
