// Package dashboard reads the Grafana dashboard JSON that deploy/monitoring
// ships, for the tests that check its variables and run its queries.
package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Ref is a Grafana datasource reference.
type Ref struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string `json:"refId"`
	Datasource   *Ref   `json:"datasource"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}

// Panel is a dashboard panel (rows included, with no targets).
type Panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Datasource  *Ref     `json:"datasource"`
	Targets     []Target `json:"targets"`
}

// Variable is a templating variable.
type Variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Datasource *Ref   `json:"datasource"`
	// Query is a string for datasource and custom variables, an object
	// for query variables.
	Query json.RawMessage `json:"query"`
}

// QueryString is the variable's query: the string itself, or the query
// field of a query variable's object.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// Annotation is an annotation query.
type Annotation struct {
	Name       string `json:"name"`
	Datasource *Ref   `json:"datasource"`
	Expr       string `json:"expr"`
	Enable     bool   `json:"enable"`
	BuiltIn    int    `json:"builtIn"`
}

// Dashboard is the part of a Grafana dashboard the tests read.
type Dashboard struct {
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Annotations struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// Parse decodes a dashboard.
func Parse(b []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return &d, nil
}

// Read reads and decodes a dashboard file.
func Read(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Variable returns the variable named name, or nil.
func (d *Dashboard) Variable(name string) *Variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// Query is one PromQL query of the dashboard: a panel's target or an
// annotation.
type Query struct {
	// Where names it: the panel's title and the target's refId, or
	// "annotation <name>".
	Where string
	Expr  string
}

var varRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// Queries returns every panel target's and annotation's PromQL with the
// variables replaced from vars; a variable missing from vars is an error.
func (d *Dashboard) Queries(vars map[string]string) ([]Query, error) {
	var out []Query
	var missing []string
	subst := func(s string) string {
		return varRE.ReplaceAllStringFunc(s, func(m string) string {
			name := varRE.FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok {
				missing = append(missing, name)
				return m
			}
			return v
		})
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, Query{Where: fmt.Sprintf("panel %q target %s", p.Title, t.RefID), Expr: subst(t.Expr)})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, Query{Where: fmt.Sprintf("annotation %q", a.Name), Expr: subst(a.Expr)})
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, fmt.Errorf("dashboard: no value for variables %s", strings.Join(missing, ", "))
	}
	return out, nil
}
