// Package metafile reads trigger metadata from a file, as the commands take
// it: a flat `key: value` map or a ScaledObject YAML, with xFromEnv keys
// resolved from the command's own environment as KEDA resolves them from the
// scale target's container.
package metafile

import (
	"fmt"
	"maps"
	"os"
	"slices"
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
	// Trigger says which trigger of a ScaledObject the metadata is, as
	// `spec.triggers[1] "queue" (external-push)`; empty for a flat map.
	Trigger string
	// Push is true when that trigger is of type external-push.
	Push bool
	// Bytes are the file as read.
	Bytes []byte
}

// Read reads either a flat `key: value` map of trigger metadata or a
// ScaledObject YAML, whose external or external-push trigger's metadata is
// used. trigger picks one of several such triggers, by its index in
// spec.triggers or its name; empty, the ScaledObject must have exactly one.
func Read(path, trigger string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metadata file: %w", err)
	}
	return Parse(b, trigger)
}

// Parse is Read on bytes.
func Parse(b []byte, trigger string) (*File, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("metadata file: not YAML: %w", err)
	}
	if doc == nil {
		return nil, fmt.Errorf("metadata file: empty")
	}
	if kind, _ := doc["kind"].(string); kind != "" {
		f, err := fromScaledObject(doc, kind, trigger)
		if err != nil {
			return nil, err
		}
		f.Bytes = b
		return f, nil
	}
	if trigger != "" {
		return nil, fmt.Errorf("metadata file: --trigger %q: the file is a flat map of trigger metadata, not a ScaledObject", trigger)
	}
	md, err := stringMap(doc, "")
	if err != nil {
		return nil, err
	}
	return &File{Metadata: md, Bytes: b}, nil
}

// external is an external or external-push trigger of a ScaledObject.
type external struct {
	index      int
	name, typ  string
	metadata   map[string]any
	descriptor string
}

func fromScaledObject(doc map[string]any, kind, trigger string) (*File, error) {
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
	var found []external
	for i, t := range triggers {
		tm, _ := t.(map[string]any)
		typ, _ := tm["type"].(string)
		if typ != "external" && typ != "external-push" {
			continue
		}
		e := external{index: i, typ: typ}
		e.name, _ = tm["name"].(string)
		e.metadata, _ = tm["metadata"].(map[string]any)
		e.descriptor = fmt.Sprintf("spec.triggers[%d]", i)
		if e.name != "" {
			e.descriptor += fmt.Sprintf(" %q", e.name)
		}
		e.descriptor += " (" + typ + ")"
		found = append(found, e)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("metadata file: ScaledObject %q has no trigger of type external or external-push", f.Name)
	}
	e, err := pick(found, trigger, f.Name)
	if err != nil {
		return nil, err
	}
	md, err := stringMap(e.metadata, fmt.Sprintf("spec.triggers[%d].metadata.", e.index))
	if err != nil {
		return nil, err
	}
	f.Metadata, f.Trigger, f.Push = md, e.descriptor, e.typ == "external-push"
	return f, nil
}

// pick chooses the trigger named by sel (an index in spec.triggers or a
// trigger's name), or the only one when sel is empty: with two external
// triggers a guess would read the wrong scaler's settings.
func pick(found []external, sel, object string) (external, error) {
	list := func(es []external) string {
		d := make([]string, len(es))
		for i, e := range es {
			d[i] = e.descriptor
		}
		return strings.Join(d, ", ")
	}
	if sel == "" {
		if len(found) > 1 {
			return external{}, fmt.Errorf("metadata file: ScaledObject %q has %d external triggers: %s; pick one with --trigger N (its index in spec.triggers) or --trigger NAME",
				object, len(found), list(found))
		}
		return found[0], nil
	}
	var match []external
	n, numeric := strconv.Atoi(sel)
	for _, e := range found {
		if (numeric == nil && e.index == n) || e.name == sel {
			match = append(match, e)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return external{}, fmt.Errorf("metadata file: --trigger %q: no external trigger of ScaledObject %q has that index or name; it has %s", sel, object, list(found))
	}
	return external{}, fmt.Errorf("metadata file: --trigger %q: %s match; name the trigger by its index", sel, list(match))
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
// variable is a *meta.Error naming the key. Only the keys want accepts are
// resolved (a command resolves the keys of the components it reads: see
// spec.Options.Wants); the others are left naming their variable.
func Resolve(md map[string]string, getenv func(string) (string, bool), want func(key string) bool) (map[string]string, error) {
	out := make(map[string]string, len(md))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		v := md[k]
		if strings.HasSuffix(k, "FromEnv") && strings.TrimSpace(v) != "" && want(k) {
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
