// Command montage-scaler is a KEDA external scaler for the Montage video
// pipeline. Its commands: `serve` runs the gRPC server; `check` reads the
// sources once and prints the decision; `explain` asks a running server for
// its decision; `calendar` lists a feed's coming windows; `simulate` replays
// a load trace through the decision code and an HPA model; `forecast` shows
// or backtests the learned weekly pattern. This package only parses flags
// and wires the scaler/... packages together (see docs/architecture.md):
// each command is its flags, a build step that checks them and makes what
// it needs, and a run step (command.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/montage/montage-scaler/scaler/logthrottle"
	"github.com/montage/montage-scaler/scaler/suggest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), shutdownSignals()...)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv,
		stderrIsTerminal: func() bool { return term.IsTerminal(int(os.Stderr.Fd())) }})
	stop()
	os.Exit(code)
}

// shutdownSignals end a command gracefully (serve: streams ended, then
// GracefulStop): SIGTERM (Kubernetes), SIGINT (Ctrl-C) and SIGHUP. KEDA and
// Kubernetes never send SIGHUP; a terminal that hangs up does, and a serve
// started from it then has nobody watching its output: it shuts down as on
// SIGTERM, where by default the signal would kill it with its streams cut.
// Started under nohup (SIGHUP ignored), it keeps ignoring it.
func shutdownSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// env is what a run of the command sees of the world; tests fill it in.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	// onListen, if set, is told the bound gRPC and HTTP addresses (tests
	// listen on port 0).
	onListen func(grpcAddr, httpAddr string)
	// stderrIsTerminal says whether stderr is a terminal, for serve's
	// --log-format auto; nil is never (main asks the real stderr, tests
	// say what they test).
	stderrIsTerminal func() bool
}

const usage = `usage: montage-scaler <command> [flags]

commands:
  serve     run the KEDA external scaler (gRPC) and its HTTP endpoints
  check     read the sources once for a metadata file and print the decision
  explain   ask a running server for its decision on a metadata file
  calendar  list the coming windows of a metadata file's calendar feed
  simulate  replay a load trace through the decision code and an HPA model
  forecast  show or backtest the learned weekly pattern of a metadata file
  report    measure ADR-0002's KPIs of a Deployment from Prometheus
  version   print the version

Run "montage-scaler <command> -h" for a command's flags.
`

// newCommand is the command of that name with its flags unset; nil for
// none (version and help are run's own).
func newCommand(name string) command {
	switch name {
	case "serve":
		return new(serveFlags)
	case "check":
		return new(checkFlags)
	case "explain":
		return new(explainFlags)
	case "calendar":
		return new(calendarListFlags)
	case "simulate":
		return new(simulateFlags)
	case "forecast":
		return new(forecastFlags)
	case "report":
		return new(reportFlags)
	}
	return nil
}

// commands are the command names, for a mistyped one.
var commands = []string{"serve", "check", "explain", "calendar", "simulate", "forecast", "report", "version", "help"}

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	if c := newCommand(args[0]); c != nil {
		return runCommand(ctx, c, args[1:], e)
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintln(e.stdout, version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	}
	if near := suggest.Nearest(args[0], commands); near != "" {
		fmt.Fprintf(e.stderr, "montage-scaler: unknown command %q (did you mean %q?)\n", args[0], near)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "montage-scaler: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses args, then fills every flag not given on the command line
// from MONTAGE_SCALER_<FLAG> (dashes as underscores). -h prints the command's
// help on stdout and returns flag.ErrHelp. A bad flag is an error of one
// line, for the caller to say once: the flag package's own message and the
// help it prints after it are kept quiet.
func parseFlags(fs *flag.FlagSet, args []string, e env) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(e.stdout, fs)
		return err
	}
	if err != nil {
		return flagError(fs, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --; %s)", fs.Arg(0), helpHint(fs))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		if v, ok := e.getenv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				reason := err.Error()
				if reason == "parse error" || reason == "value out of range" { // the flag package's own words
					reason = flagWants(f)
				}
				errs = append(errs, fmt.Errorf("%s=%q (--%s): %s", name, v, f.Name, reason))
			}
		}
	})
	return errors.Join(errs...)
}

// printHelp writes a command's help: how to call it, the environment
// variables, its flags and its exit statuses.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	var example *flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if example == nil || f.Name == "grpc-addr" || (f.Name == "metadata" && example.Name != "grpc-addr") {
			example = f
		}
	})
	eg := ""
	if example != nil {
		eg = fmt.Sprintf(" (--%s: %s)", example.Name, envName(example.Name))
	}
	fmt.Fprintf(w, "usage: montage-scaler %s [flags]\n\n"+
		"Every flag can also be set as the environment variable MONTAGE_SCALER_<FLAG>,\n"+
		"upper case with dashes as underscores%s; the command line wins.\n\nflags:\n", fs.Name(), eg)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nexit status:\n")
	for _, s := range exitStatuses(fs.Name()) {
		fmt.Fprintf(w, "  %d  %s\n", s.code, s.meaning)
	}
}

// helpHint says where the flags are listed.
func helpHint(fs *flag.FlagSet) string {
	return fmt.Sprintf("\"montage-scaler %s -h\" lists the flags", fs.Name())
}

// flagError rewords the flag package's errors in one line that names the
// flag as it is written (--name), says what it wants and, for a flag that
// does not exist, the one meant when it is near enough.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if near := suggest.Nearest(name, names); near != "" {
			return fmt.Errorf("unknown flag --%s (did you mean --%s?)", name, near)
		}
		return fmt.Errorf("unknown flag --%s (%s)", name, helpHint(fs))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		name = strings.TrimLeft(name, "-")
		return fmt.Errorf("--%s needs a value: %s", name, flagWants(fs.Lookup(name)))
	}
	// invalid value "x" for flag -name: reason
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if i := strings.Index(rest, " for flag -"); i > 0 {
			value := rest[:i]
			name, reason, _ := strings.Cut(rest[i+len(" for flag -"):], ": ")
			if f := fs.Lookup(name); f != nil && (reason == "parse error" || reason == "value out of range") {
				reason = flagWants(f)
			}
			return fmt.Errorf("--%s %s: %s", name, value, reason)
		}
	}
	return fmt.Errorf("%s (%s)", msg, helpHint(fs))
}

// flagWants says what a flag takes, from its type and usage.
func flagWants(f *flag.Flag) string {
	if f == nil {
		return "see -h"
	}
	kind, usage := flag.UnquoteUsage(f)
	switch kind {
	case "duration":
		return "want a duration such as 30s, 2m or 1h"
	case "int", "uint":
		return "want a whole number"
	case "float":
		return "want a number"
	case "":
		return "want true or false"
	}
	return usage
}

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "MONTAGE_SCALER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// logFormatAuto is --log-format's default: text for a person at a
// terminal, JSON for a log collector (a pod's stderr is no terminal).
const logFormatAuto = "auto"

// resolveLogFormat is the log format a --log-format value means where e's
// stderr goes: auto is text on a terminal, JSON otherwise; json and text
// are themselves.
func resolveLogFormat(format string, e env) string {
	if format != logFormatAuto {
		return format
	}
	if e.stderrIsTerminal != nil && e.stderrIsTerminal() {
		return "text"
	}
	return "json"
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want auto, json or text", format)
	}
	// A flapping source repeats one error many times a minute: at most one
	// line per minute for each, with the count held back.
	return slog.New(logthrottle.New(h, logRepeatWindow, nil)), nil
}

// logRepeatWindow is how often one identical warning or error line is
// written at most (see package logthrottle).
const logRepeatWindow = time.Minute

// instant is an --at flag: an RFC3339 time, or unset (now).
type instant struct{ t *time.Time }

func (i *instant) String() string {
	if i.t == nil {
		return ""
	}
	return i.t.Format(time.RFC3339)
}

func (i *instant) Set(v string) error {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want RFC3339, like 2026-12-05T18:00:00+01:00")
	}
	i.t = &t
	return nil
}

// clock returns the fixed instant if set, else the real clock.
func (i *instant) clock() func() time.Time {
	if i.t == nil {
		return time.Now
	}
	t := *i.t
	return func() time.Time { return t }
}
