// Package addrfile is serve's --addr-file: the addresses a server bound
// (port 0 included), written once it serves and read by whoever started it.
// A process that binds its own port and says which it got cannot lose a
// race for a port that a test probed free a moment before.
package addrfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Addrs are the bound addresses, host:port.
type Addrs struct {
	GRPC string `json:"grpc"`
	HTTP string `json:"http"`
}

// Write writes a to path atomically (a temporary file renamed over it), so
// that a reader never sees half of it.
func Write(path string, a Addrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("addr file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("addr file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("addr file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("addr file: %w", err)
	}
	return nil
}

// Read reads the addresses at path.
func Read(path string) (Addrs, error) {
	var a Addrs
	b, err := os.ReadFile(path)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("addr file %s: %w", path, err)
	}
	if a.GRPC == "" || a.HTTP == "" {
		return a, fmt.Errorf("addr file %s: an address is missing: %s", path, b)
	}
	return a, nil
}

// ErrExited says the process ended before it wrote its addresses.
var ErrExited = errors.New("the process exited before it wrote its addresses")

// Wait waits until path holds the addresses of a process that is still
// running: it returns ErrExited once exited is closed, and ctx's error when
// ctx ends first. Give each start of a process a path of its own (a file
// left by an earlier run would be taken for this one's).
func Wait(ctx context.Context, path string, exited <-chan struct{}) (Addrs, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		a, err := Read(path)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return a, err
		}
		select {
		case <-exited:
			return Addrs{}, ErrExited
		case <-ctx.Done():
			return Addrs{}, fmt.Errorf("addr file %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}
