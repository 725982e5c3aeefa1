// Package metafile reads trigger metadata from a file, as the commands take
// it: a flat `key: value` map or a ScaledObject YAML, with xFromEnv keys
// resolved from the command's own environment as KEDA resolves them from the
// scale target's container.
package metafile

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/montage/montage-scaler/scaler/meta"
)

// File is trigger metadata read from a file.
type File struct {
	Metadata map[string]string
	// Name and Namespace come from a ScaledObject's metadata, else are empty.
	Name, Namespace string
}

// Read reads either a flat `key: value` map of trigger metadata or a
// ScaledObject YAML, whose external or external-push trigger's metadata is
// used.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metadata file: %w", err)
	}
	return Parse(b)
}

// Parse is Read on bytes.
func Parse(b []byte) (*File, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("metadata file: not YAML: %w", err)
	}
	if doc == nil {
		return nil, fmt.Errorf("metadata file: empty")
	}
	if kind, _ := doc["kind"].(string); kind != "" {
		return fromScaledObject(doc, kind)
	}
	md, err := stringMap(doc, "")
	if err != nil {
		return nil, err
	}
	return &File{Metadata: md}, nil
}

func fromScaledObject(doc map[string]any, kind string) (*File, error) {
	if kind != "ScaledObject" {
		return nil, fmt.Errorf("metadata file: kind %q: want a ScaledObject or a flat map of trigger metadata", kind)
	}
	f := &File{}
	if m, ok := doc["metadata"].(map[string]any); ok {
		f.Name, _ = m["name"].(string)
		f.Namespace, _ = m["namespace"].(string)
	}
	spec, _ := doc["spec"].(map[string]any)
	triggers, _ := spec["triggers"].([]any)
	for i, t := range triggers {
		tm, _ := t.(map[string]any)
		typ, _ := tm["type"].(string)
		if typ != "external" && typ != "external-push" {
			continue
		}
		raw, _ := tm["metadata"].(map[string]any)
		md, err := stringMap(raw, fmt.Sprintf("spec.triggers[%d].metadata.", i))
		if err != nil {
			return nil, err
		}
		f.Metadata = md
		return f, nil
	}
	return nil, fmt.Errorf("metadata file: ScaledObject %q has no trigger of type external or external-push", f.Name)
}

// stringMap turns YAML scalars into the strings KEDA would pass.
func stringMap(in map[string]any, where string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("metadata file: %s%s: want a string, got %T (KEDA metadata values are strings)", where, k, v)
		}
	}
	return out, nil
}

// Resolve replaces each xFromEnv value, which in a metadata file names an
// environment variable of the command, with that variable's value, as KEDA
// does with the scale target's container environment. An unset or empty
// variable is a *meta.Error naming the key.
func Resolve(md map[string]string, getenv func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(md))
	for k, v := range md {
		if strings.HasSuffix(k, "FromEnv") && strings.TrimSpace(v) != "" {
			val, ok := getenv(strings.TrimSpace(v))
			if !ok || strings.TrimSpace(val) == "" {
				return nil, &meta.Error{Key: k, Value: v, Allowed: "names an environment variable of this command that is not set or empty"}
			}
			v = val
		}
		out[k] = v
	}
	return out, nil
}
