package addrfile

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitReturnsTheAddressesOnceWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "addrs.json")
	want := Addrs{GRPC: "127.0.0.1:41213", HTTP: "127.0.0.1:39805"}
	written := make(chan error, 1)
	go func() { written <- Write(path, want) }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := Wait(ctx, path, make(chan struct{}))
	if err != nil || got != want {
		t.Fatalf("Wait = %+v, %v; want %+v", got, err, want)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}

func TestWaitSaysSoWhenTheProcessExitedFirst(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	if _, err := Wait(t.Context(), filepath.Join(t.TempDir(), "addrs.json"), exited); !errors.Is(err, ErrExited) {
		t.Fatalf("Wait = %v, want ErrExited", err)
	}
}

func TestReadRefusesAFileWithoutBothAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "addrs.json")
	if err := Write(path, Addrs{GRPC: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Fatal("Read of a file without the HTTP address succeeded")
	}
}
