package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
)

// command is one subcommand in three steps: flagSet registers its flags
// into it, build checks them and makes what the command needs (a usage
// error there exits 2 before any source is read), and the runner it
// returns does the work. run owns what build made: it closes it.
type command interface {
	flagSet() *flag.FlagSet
	build(ctx context.Context, e env) (runner, error)
}

// runner is a built command.
type runner interface {
	run(ctx context.Context, e env) error
}

// runCommand parses args into c's flags, builds c and runs it. -h prints
// the command's help and exits 0; a bad flag exits 2; an error of build or
// run is said on stderr and exits with its status (see exitCode).
func runCommand(ctx context.Context, c command, args []string, e env) int {
	fs := c.flagSet()
	if err := parseFlags(fs, args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		complain(e, fs.Name(), err)
		return exitUsage
	}
	r, err := c.build(ctx, e)
	if err == nil {
		err = r.run(ctx, e)
	}
	return exitCode(e, fs.Name(), err)
}

// exitError ends a command with its exit status after saying err; a nil
// err has been said already (or needs no words).
type exitError struct {
	code int
	err  error
}

func (x *exitError) Error() string {
	if x.err == nil {
		return fmt.Sprintf("exit status %d", x.code)
	}
	return x.err.Error()
}

func (x *exitError) Unwrap() error { return x.err }

// usageError is err as a usage error: bad flags, metadata or input
// files, exit status 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// exitWith ends a command with code, its reason already on stderr; 0 is
// no error.
func exitWith(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitError{code: code}
}

// exitCode says err on stderr as cmd's and returns the exit status it
// ends the command with: 0 for none, an exitError's own, else 1 (the
// command could not do it).
func exitCode(e env, cmd string, err error) int {
	if err == nil {
		return exitOK
	}
	var x *exitError
	if !errors.As(err, &x) {
		complain(e, cmd, err)
		return exitNoDecision
	}
	if x.err != nil {
		complain(e, cmd, err)
	}
	return x.code
}

// complain prints err for people as "montage-scaler CMD: message", without
// saying CMD twice when the message starts with it (a package's prefix).
func complain(e env, cmd string, err error) {
	fmt.Fprintf(e.stderr, "montage-scaler %s: %s\n", cmd, strings.TrimPrefix(err.Error(), cmd+": "))
}

// oneOf checks a flag whose value is one of a few words, and says them
// in the order given ("--format \"x\": want table or json").
func oneOf(flag, value string, words ...string) error {
	for _, w := range words {
		if value == w {
			return nil
		}
	}
	want := words[len(words)-1]
	if len(words) > 1 {
		want = strings.Join(words[:len(words)-1], ", ") + " or " + want
	}
	return fmt.Errorf("%s %q: want %s", flag, value, want)
}
