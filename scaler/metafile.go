package scaler

import (
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"
)

// MetadataFile is trigger metadata read from a file for check and explain.
type MetadataFile struct {
	Metadata map[string]string
	// Name and Namespace come from a ScaledObject's metadata, else are empty.
	Name, Namespace string
}

// ReadMetadataFile reads either a flat `key: value` map of trigger metadata or
// a ScaledObject YAML, whose external or external-push trigger's metadata is
// used.
func ReadMetadataFile(path string) (*MetadataFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metadata file: %w", err)
	}
	return ParseMetadataFile(b)
}

// ParseMetadataFile is ReadMetadataFile on bytes.
func ParseMetadataFile(b []byte) (*MetadataFile, error) {
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
	return &MetadataFile{Metadata: md}, nil
}

func fromScaledObject(doc map[string]any, kind string) (*MetadataFile, error) {
	if kind != "ScaledObject" {
		return nil, fmt.Errorf("metadata file: kind %q: want a ScaledObject or a flat map of trigger metadata", kind)
	}
	f := &MetadataFile{}
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
