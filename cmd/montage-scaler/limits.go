package main

import (
	"flag"
	"fmt"

	"github.com/montage/montage-scaler/scaler/source"
)

// limitFlags are serve's process-wide limits (source.LimitFlags), by flag
// name.
type limitFlags map[string]*int

func (l *limitFlags) register(fs *flag.FlagSet) {
	*l = limitFlags{}
	for _, f := range source.LimitFlags() {
		v := new(int)
		fs.IntVar(v, f.Flag, f.Default, f.Usage+"; beyond it a new ScaledObject is ResourceExhausted (0: none)")
		(*l)[f.Flag] = v
	}
}

// values are the limits as given; a negative one is a usage error.
func (l limitFlags) values() (map[string]int, error) {
	out := make(map[string]int, len(l))
	for name, v := range l {
		if *v < 0 {
			return nil, fmt.Errorf("--%s %d: want 0 (no limit) or more", name, *v)
		}
		out[name] = *v
	}
	return out, nil
}
