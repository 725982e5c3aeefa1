package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/montage/montage-scaler/scaler/decide"
	"github.com/montage/montage-scaler/scaler/podcost"
	"github.com/montage/montage-scaler/scaler/server"
)

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
	return writeJSONValue(w, server.FromProto(server.ToProto(d)))
}

// writeJSONValue prints v as every command's --format json does: indented
// by two spaces, a newline after it.
func writeJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFileWith creates path and writes it with write; the file's close error
// counts as write's.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// plotExt is the extension of a --plot file, which says its format;
// "" without one.
func plotExt(path string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if path != "" && ext != ".svg" && ext != ".png" {
		return "", fmt.Errorf("--plot %q: want a file name ending in .svg or .png", path)
	}
	return ext, nil
}

// writeText prints a decision for people: every replica count rounded as
// decide.FormatReplicas rounds it (JSON keeps full precision), each
// component's evidence as key=value words, and its error and warnings on
// lines of their own under its row.
func writeText(w io.Writer, d decide.Decision) error {
	if err := writeTextHeader(w, d); err != nil {
		return err
	}
	if err := writeTextComponents(w, d.Components); err != nil {
		return err
	}
	return writeTextPodCosts(w, d.PodCosts)
}

// writeTextPodCosts is the pod-cost writer's plan, a row per pod: the cost
// wanted (- for none), the worker's running tasks and why.
func writeTextPodCosts(w io.Writer, v any) error {
	if v == nil {
		return nil
	}
	var r podcost.Report
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return fmt.Errorf("pod costs: %w", err)
	}
	state := "not below the current replicas: no costs of ours"
	if r.Below {
		state = "below the current replicas: costs kept"
	}
	fmt.Fprintf(w, "pod costs: %s, decision %s of %d replicas, %s\n", r.Target, decide.FormatReplicas(r.Desired), r.Current, state)
	for _, s := range []string{r.Error, r.Warning} {
		if s != "" {
			fmt.Fprintf(w, "  warning: %s\n", s)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  POD\tCOST\tACTIVE\tWHY")
	for _, p := range r.Pods {
		cost, active := "-", "-"
		if p.Cost != nil {
			cost = strconv.FormatInt(*p.Cost, 10)
		}
		if p.Active != nil {
			active = strconv.FormatInt(*p.Active, 10)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Pod, cost, active, p.Why)
	}
	return tw.Flush()
}

// writeTextHeader is the decision, its instant and its warnings.
func writeTextHeader(w io.Writer, d decide.Decision) error {
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
	return tw.Flush()
}

// writeTextComponents is the table of the components, aligned on its own;
// each component's notes go under its row, indented to the second column.
func writeTextComponents(w io.Writer, components []decide.ComponentResult) error {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tASKS FOR\tACTIVE\tOBSERVED\tEVIDENCE")
	notes := make([][]string, len(components))
	for i, c := range components {
		var words []string
		words, notes[i] = componentText(c)
		asks := "no opinion"
		if c.Desired != nil {
			asks = decide.FormatReplicas(*c.Desired)
		}
		seen := "never"
		if observed(c) {
			seen = c.ObservedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", c.Name, asks, c.Active, seen, strings.Join(words, " "))
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

// componentText is a component's evidence words ("-" for none) and the
// notes under its row: its error, its warnings, what a word cannot say.
func componentText(c decide.ComponentResult) (words, notes []string) {
	words, more := evidenceOf(c.Name, c.Detail)
	if len(words) == 0 {
		words = []string{"-"}
	}
	if c.Error != "" {
		notes = append(notes, "error: "+withoutPrefix(c.Name, c.Error))
	}
	for _, warn := range c.Warnings {
		notes = append(notes, "warning: "+warn)
	}
	return words, append(notes, more...)
}
