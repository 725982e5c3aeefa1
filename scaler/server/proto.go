package server

import (
	"encoding/json"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	scalerv1 "github.com/montage/montage-scaler/proto/montage/scaler/v1"
	"github.com/montage/montage-scaler/scaler/decide"
)

// ToProto converts a decision to the Inspector's Explanation. Every text
// is made valid UTF-8 (proto strings must be): errors and warnings quote
// upstreams, whose bodies may be cut inside a character or binary. A
// component's detail that JSON cannot write (a non-finite number the
// component let through) is left out with a warning saying why: the
// decision is still explained, and `check` still prints it.
func ToProto(d decide.Decision) *scalerv1.Explanation {
	e := &scalerv1.Explanation{
		DesiredReplicas: d.Desired,
		Active:          d.Active,
		Bounds:          &scalerv1.Bounds{Min: d.Bounds.Min, Max: d.Bounds.Max},
		Warnings:        validUTF8(d.Warnings),
		Error:           strings.ToValidUTF8(d.Error, "\ufffd"),
		At:              timestamppb.New(d.At),
	}
	if d.PodCosts != nil {
		pc, err := toStruct(d.PodCosts)
		if err != nil {
			e.Warnings = append(e.Warnings, "pod costs not shown: "+err.Error())
		}
		e.PodCosts = pc
	}
	for _, c := range d.Components {
		warnings := c.Warnings
		detail, err := toStruct(c.Detail)
		if err != nil {
			warnings = append(slices.Clip(warnings), "detail not shown: "+err.Error())
			detail = nil
		}
		e.Components = append(e.Components, &scalerv1.Component{
			Name:            strings.ToValidUTF8(c.Name, "\ufffd"),
			DesiredReplicas: c.Desired,
			Active:          c.Active,
			Error:           strings.ToValidUTF8(c.Error, "\ufffd"),
			Warnings:        validUTF8(warnings),
			ObservedAt:      timestamppb.New(c.ObservedAt),
			Detail:          detail,
			Held:            c.Held,
			Stale:           c.Stale,
		})
	}
	return e
}

func validUTF8(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToValidUTF8(s, "\ufffd")
	}
	return out
}

// toStruct goes through JSON, which writes invalid UTF-8 as U+FFFD.
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
	if e.GetPodCosts() != nil {
		d.PodCosts = e.GetPodCosts().AsMap()
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
