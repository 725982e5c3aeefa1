package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/server"
)

// checkFormat validates the --format of check and explain.
func checkFormat(format string) error {
	if format != "json" && format != "text" {
		return fmt.Errorf("--format %q: want json or text", format)
	}
	return nil
}

// printDecision writes d in the chosen format and returns the exit status:
// 0 with a decision from every component, 3 with a decision that some
// component failed (failedComponents), 1 without one.
func printDecision(e env, cmd string, d decide.Decision, format string) int {
	var err error
	if format == "text" {
		err = writeText(e.stdout, d)
	} else {
		err = writeJSON(e.stdout, d)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "montage-scaler: print: %v\n", err)
		return exitNoDecision
	}
	if d.Desired == nil {
		return exitNoDecision
	}
	if failed := failedComponents(d); len(failed) > 0 {
		fmt.Fprintf(e.stderr, "montage-scaler %s: decided, but %s failed (its error is in the output): exit status %d\n",
			cmd, strings.Join(failed, " and "), exitDegraded)
		return exitDegraded
	}
	return exitOK
}

// failedComponents names the components of a decision that failed while
// the decision was still made: a read that failed (a held reading, a
// calendar whose fetch failed), an ask refused, or an optional source
// with no reading yet.
func failedComponents(d decide.Decision) []string {
	var out []string
	for _, c := range d.Components {
		if c.Error != "" || !observed(c) {
			out = append(out, c.Name)
		}
	}
	return out
}

// observed reports whether a component has had a good reading (a time that
// went through the Inspector's proto is the Unix epoch when it had none).
func observed(c decide.ComponentResult) bool {
	return !c.ObservedAt.IsZero() && c.ObservedAt.Unix() > 0
}

// writeJSON prints a decision as check and explain both do: check's local
// decision goes through the Inspector's wire form too, so both print alike.
func writeJSON(w io.Writer, d decide.Decision) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(server.FromProto(server.ToProto(d)))
}

// writeText prints a decision for people: every replica count rounded as
// decide.FormatReplicas rounds it (JSON keeps full precision), each
// component's evidence as key=value words, and its error and warnings on
// lines of their own under its row.
func writeText(w io.Writer, d decide.Decision) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	max := "none"
	if d.Bounds.Max != nil {
		max = decide.FormatReplicas(*d.Bounds.Max)
	}
	if d.Desired != nil {
		fmt.Fprintf(tw, "decision:\t%s replicas, active=%t (bounds %s..%s)\n", decide.FormatReplicas(*d.Desired), d.Active, decide.FormatReplicas(d.Bounds.Min), max)
	} else {
		fmt.Fprintf(tw, "decision:\tNONE (%s)\n", d.Error)
	}
	fmt.Fprintf(tw, "at:\t%s\n", d.At.UTC().Format(time.RFC3339))
	for _, warn := range d.Warnings {
		fmt.Fprintf(tw, "warning:\t%s\n", warn)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// The table, aligned on its own; then each component's notes go under
	// its row, indented to the second column.
	var table strings.Builder
	tw = tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tASKS FOR\tACTIVE\tOBSERVED\tEVIDENCE")
	notes := make([][]string, len(d.Components))
	for i, c := range d.Components {
		asks := "no opinion"
		if c.Desired != nil {
			asks = decide.FormatReplicas(*c.Desired)
		}
		seen := "never"
		if observed(c) {
			seen = c.ObservedAt.UTC().Format(time.RFC3339)
		}
		words, more := evidenceOf(c.Name, c.Detail)
		if len(words) == 0 {
			words = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", c.Name, asks, c.Active, seen, strings.Join(words, " "))
		if c.Error != "" {
			notes[i] = append(notes[i], "error: "+withoutPrefix(c.Name, c.Error))
		}
		for _, warn := range c.Warnings {
			notes[i] = append(notes[i], "warning: "+warn)
		}
		notes[i] = append(notes[i], more...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	indent := strings.Repeat(" ", strings.Index(lines[0], "ASKS FOR"))
	var b strings.Builder
	b.WriteString("\n" + lines[0] + "\n")
	for i, line := range lines[1:] {
		b.WriteString(line + "\n")
		for _, n := range notes[i] {
			b.WriteString(indent + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
