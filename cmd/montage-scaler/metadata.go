package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/montage/montage-scaler/scaler/components"
	"github.com/montage/montage-scaler/scaler/meta"
	"github.com/montage/montage-scaler/scaler/metafile"
	"github.com/montage/montage-scaler/scaler/spec"
)

// metadataFlags are --metadata and --trigger, shared by every command that
// reads a metadata file.
type metadataFlags struct {
	file, trigger string
}

func (m *metadataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.file, "metadata", "", "file with trigger metadata (flat key: value map) or a ScaledObject YAML")
	fs.StringVar(&m.trigger, "trigger", "", "which external trigger of a ScaledObject with several: its index in spec.triggers or its name")
}

// read reads the metadata file; its error is a usage error. The trigger a
// ScaledObject gave is named on stderr, so nobody reads another trigger's
// settings unawares.
func (m *metadataFlags) read(cmd string, e env) (*metafile.File, error) {
	if m.file == "" {
		return nil, usageError(errors.New("--metadata FILE is required"))
	}
	mf, err := metafile.Read(m.file, m.trigger)
	if err != nil {
		return nil, usageError(fmt.Errorf("--metadata %s: %v", m.file, err))
	}
	if mf.Trigger != "" {
		fmt.Fprintf(e.stderr, "montage-scaler %s: reading %s of ScaledObject %s\n", cmd, mf.Trigger, meta.ObjectRef(mf.Namespace, mf.Name))
	}
	return mf, nil
}

// loaded is a metadata file read for a command.
type loaded struct {
	file *metafile.File
	md   map[string]string // xFromEnv resolved from this command's environment
}

// loadMetadata reads the metadata file and resolves the xFromEnv keys that
// a command reading with o wants; its error is a usage error.
func loadMetadata(m metadataFlags, cmd string, o spec.Options, e env) (*loaded, error) {
	mf, err := m.read(cmd, e)
	if err != nil {
		return nil, err
	}
	md, err := metafile.Resolve(mf.Metadata, e.getenv, o.Wants)
	if err != nil {
		return nil, usageError(err)
	}
	return &loaded{file: mf, md: md}, nil
}

// specFromFile is loadMetadata plus parsing into a Spec.
func specFromFile(m metadataFlags, cmd string, o spec.Options, e env) (*spec.Spec, error) {
	l, err := loadMetadata(m, cmd, o, e)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Parse(l.md, o)
	if err != nil {
		return nil, usageError(err)
	}
	return sp, nil
}

// warnUnknown prints a line per unknown key of sp on stderr.
func warnUnknown(e env, sp *spec.Spec) {
	for _, k := range sp.Unknown {
		fmt.Fprintf(e.stderr, "warning: %s\n", spec.UnknownKeyWarning(components.Pure(), k))
	}
}

// objectFlags are --namespace and --name: the ScaledObject a command asks
// about, by default the one the metadata file is, else a fallback.
type objectFlags struct {
	namespace, name     string
	orNamespace, orName string // the fallbacks; "" for none
}

// register registers the two flags, with their fallbacks.
func (o *objectFlags) register(fs *flag.FlagSet, orNamespace, orName string) {
	o.orNamespace, o.orName = orNamespace, orName
	fs.StringVar(&o.name, "name", "", "ScaledObject name "+defaultFromFile(orName))
	fs.StringVar(&o.namespace, "namespace", "", "ScaledObject namespace "+defaultFromFile(orNamespace))
}

func defaultFromFile(fallback string) string {
	if fallback == "" {
		return "(default: the ScaledObject file's)"
	}
	return fmt.Sprintf("(default: from the ScaledObject file, else %q)", fallback)
}

// of is the ScaledObject asked about with metadata file f: the flags',
// else the file's, else the fallbacks.
func (o *objectFlags) of(f *metafile.File) (namespace, name string) {
	return firstNonEmpty(o.namespace, f.Namespace, o.orNamespace), firstNonEmpty(o.name, f.Name, o.orName)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
