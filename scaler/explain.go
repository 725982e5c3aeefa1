package scaler

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/decide"
)

// ToProto converts a decision to the Inspector's Explanation.
func ToProto(d decide.Decision) (*scalerv1.Explanation, error) {
	e := &scalerv1.Explanation{
		DesiredReplicas: d.Desired,
		Active:          d.Active,
		Bounds:          &scalerv1.Bounds{Min: d.Bounds.Min, Max: d.Bounds.Max},
		Warnings:        d.Warnings,
		Error:           d.Error,
		At:              timestamppb.New(d.At),
	}
	for _, c := range d.Components {
		detail, err := toStruct(c.Detail)
		if err != nil {
			return nil, fmt.Errorf("explain %s detail: %w", c.Name, err)
		}
		e.Components = append(e.Components, &scalerv1.Component{
			Name:            c.Name,
			DesiredReplicas: c.Desired,
			Active:          c.Active,
			Error:           c.Error,
			Warnings:        c.Warnings,
			ObservedAt:      timestamppb.New(c.ObservedAt),
			Detail:          detail,
			Held:            c.Held,
			Stale:           c.Stale,
		})
	}
	return e, nil
}

func toStruct(v any) (*structpb.Struct, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return structpb.NewStruct(m)
}

// FromProto converts an Explanation back to a decision, for printing.
func FromProto(e *scalerv1.Explanation) decide.Decision {
	d := decide.Decision{
		Desired:    e.DesiredReplicas,
		Active:     e.GetActive(),
		Bounds:     decide.Bounds{Min: e.GetBounds().GetMin(), Max: e.GetBounds().Max},
		Components: []decide.ComponentResult{},
		Warnings:   nonNil(e.GetWarnings()),
		Error:      e.GetError(),
		At:         e.GetAt().AsTime(),
	}
	for _, c := range e.GetComponents() {
		var detail any
		if c.GetDetail() != nil {
			detail = c.GetDetail().AsMap()
		}
		d.Components = append(d.Components, decide.ComponentResult{
			Name:       c.GetName(),
			Desired:    c.DesiredReplicas,
			Active:     c.GetActive(),
			Error:      c.GetError(),
			Warnings:   nonNil(c.GetWarnings()),
			ObservedAt: c.GetObservedAt().AsTime(),
			Detail:     detail,
			Held:       c.GetHeld(),
			Stale:      c.GetStale(),
		})
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteJSON prints a decision as check and explain both do. Detail goes
// through the same JSON→map round trip as Explain's, so both print alike.
func WriteJSON(w io.Writer, d decide.Decision) error {
	for i, c := range d.Components {
		if c.Detail == nil {
			continue
		}
		s, err := toStruct(c.Detail)
		if err != nil {
			return fmt.Errorf("explain %s detail: %w", c.Name, err)
		}
		d.Components[i].Detail = s.AsMap()
	}
	d.At = d.At.UTC()
	for i := range d.Components {
		d.Components[i].ObservedAt = d.Components[i].ObservedAt.UTC()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// WriteText prints a decision for people.
func WriteText(w io.Writer, d decide.Decision) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	max := "none"
	if d.Bounds.Max != nil {
		max = fmt.Sprintf("%g", *d.Bounds.Max)
	}
	if d.Desired != nil {
		fmt.Fprintf(tw, "decision:\t%g replicas, active=%t (bounds %g..%s)\n", *d.Desired, d.Active, d.Bounds.Min, max)
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
			asks = fmt.Sprintf("%g", *c.Desired)
		}
		observed := "never"
		if !c.ObservedAt.IsZero() && c.ObservedAt.Unix() > 0 {
			observed = c.ObservedAt.UTC().Format(time.RFC3339)
		}
		notes := append([]string{}, c.Warnings...)
		if c.Error != "" {
			notes = append(notes, "error: "+c.Error)
		}
		if b, err := json.Marshal(c.Detail); err == nil && c.Detail != nil {
			notes = append(notes, string(b))
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", c.Name, asks, c.Active, observed, strings.Join(notes, "; "))
	}
	return tw.Flush()
}
