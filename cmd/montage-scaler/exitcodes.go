package main

import (
	"fmt"
	"strings"
)

// Exit statuses: one table for every command (README: "Exit status"; each
// command's -h prints its rows).
const (
	// exitOK: the command did what it was asked; for check and explain, a
	// decision with every component read.
	exitOK = 0
	// exitNoDecision: the command could not do it (no decision, a source
	// or the server unreachable, an output not written).
	exitNoDecision = 1
	// exitUsage: bad flags, metadata or input files; nothing was read.
	exitUsage = 2
	// exitDegraded: check and explain made a decision, but a component
	// failed (its error is in the output): a CI job catches a dead feed or
	// broker whose absence the decision survived.
	exitDegraded = 3
)

// exitStatus is what one exit status of one command means.
type exitStatus struct {
	code    int
	meaning string
}

// exitTable is every command's exit statuses, in README's order.
var exitTable = []struct {
	commands []string
	statuses []exitStatus
}{
	{[]string{"serve"}, []exitStatus{
		{exitOK, "stopped cleanly (SIGTERM, SIGINT or SIGHUP)"},
		{exitNoDecision, "could not serve: a listen address taken or invalid, TLS files unreadable, --addr-file not written, a server failed"},
		{exitUsage, "bad flags"},
	}},
	{[]string{"check", "explain"}, []exitStatus{
		{exitOK, "a decision, every component read"},
		{exitNoDecision, "no decision: a source failed with no reading to use or past staleAfter; explain: the server unreachable, or not a montage-scaler gRPC port"},
		{exitUsage, "bad flags or metadata (the server's InvalidArgument included), or an address the policy refuses; nothing was decided"},
		{exitDegraded, "a decision, but a component failed: a calendar with no copy, a reading held past a failing refresh, a forecast ask refused; the output names it"},
	}},
	{[]string{"calendar"}, []exitStatus{
		{exitOK, "the coming windows listed"},
		{exitNoDecision, "the feed could not be fetched, parsed or listed"},
		{exitUsage, "bad flags or metadata, no calendarURL, or a feed address the policy refuses"},
	}},
	{[]string{"simulate"}, []exitStatus{
		{exitOK, "the replay printed (and its --plot and --emit-openmetrics files written)"},
		{exitNoDecision, "an output could not be written"},
		{exitUsage, "bad flags, trace, metadata or calendar file"},
	}},
	{[]string{"forecast"}, []exitStatus{
		{exitOK, "the forecast (or backtest) printed"},
		{exitNoDecision, "the history could not be read from the broker, or the output written"},
		{exitUsage, "bad flags, metadata or trace (forecastMode disabled included)"},
	}},
	{[]string{"report"}, []exitStatus{
		{exitOK, "the KPIs printed (and the --plot written)"},
		{exitNoDecision, "Prometheus unreachable or not answering as Prometheus, a needed series with no sample in the window, or the plot not written"},
		{exitUsage, "bad flags"},
	}},
	{[]string{"version", "help"}, []exitStatus{
		{exitOK, "printed"},
		{exitUsage, "no command, or an unknown one (`montage-scaler` alone prints the commands)"},
	}},
}

// exitStatuses returns a command's exit statuses.
func exitStatuses(cmd string) []exitStatus {
	for _, row := range exitTable {
		for _, c := range row.commands {
			if c == cmd {
				return row.statuses
			}
		}
	}
	return nil
}

// exitTableMarkdown is README's "Exit status" table.
func exitTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| command | 0 | 1 | 2 | 3 |\n|---|---|---|---|---|\n")
	for _, row := range exitTable {
		cells := []string{"", "", "", ""}
		for i := range cells {
			cells[i] = "—"
		}
		for _, s := range row.statuses {
			cells[s.code] = s.meaning
		}
		names := make([]string, len(row.commands))
		for i, c := range row.commands {
			names[i] = "`" + c + "`"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", strings.Join(names, ", "), strings.Join(cells, " | "))
	}
	return b.String()
}
