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

// detailNote is a component's detail for people: its explanation when it
// has one (worded, rounded as FormatReplicas rounds), else its JSON.
func detailNote(detail any) string {
	if detail == nil {
		return ""
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		if s, ok := m["explanation"].(string); ok && s != "" {
			return s
		}
	}
	return string(b)
}

// writeText prints a decision for people: every replica count rounded as
// decide.FormatReplicas rounds it (JSON keeps full precision).
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
	fmt.Fprintln(tw, "\nCOMPONENT\tASKS FOR\tACTIVE\tOBSERVED\tNOTES")
	for _, c := range d.Components {
		asks := "no opinion"
		if c.Desired != nil {
			asks = decide.FormatReplicas(*c.Desired)
		}
		seen := "never"
		if observed(c) {
			seen = c.ObservedAt.UTC().Format(time.RFC3339)
		}
		notes := append([]string{}, c.Warnings...)
		if c.Error != "" {
			notes = append(notes, "error: "+c.Error)
		}
		if note := detailNote(c.Detail); note != "" {
			notes = append(notes, note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", c.Name, asks, c.Active, seen, strings.Join(notes, "; "))
	}
	return tw.Flush()
}
