package metafile

import (
	"maps"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in      string
		want          map[string]string
		wantName, wNS string
	}{
		{
			name: "a flat map, YAML scalars turned into KEDA's strings",
			in:   "brokerURL: redis://h:6379/0\ntasksPerReplica: 5\nacksLate: false\nqueues: celery,video\n",
			want: map[string]string{"brokerURL": "redis://h:6379/0", "tasksPerReplica": "5", "acksLate": "false", "queues": "celery,video"},
		},
		{
			name: "a ScaledObject: the external-push trigger's metadata, its name and namespace",
			in: `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: montage, namespace: prod}
spec:
  triggers:
    - type: cpu
      metadata: {value: "65"}
    - type: external-push
      metadata: {scalerAddress: "s:9090", brokerURL: "redis://h:6379/0"}
`,
			want:     map[string]string{"scalerAddress": "s:9090", "brokerURL": "redis://h:6379/0"},
			wantName: "montage", wNS: "prod",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.in), "")
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(f.Metadata, tc.want) || f.Name != tc.wantName || f.Namespace != tc.wNS {
				t.Fatalf("got %v %q/%q, want %v %q/%q", f.Metadata, f.Namespace, f.Name, tc.want, tc.wNS, tc.wantName)
			}
		})
	}
}

func TestParseMetadataFileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not YAML", "a: [", "metadata file: not YAML: error converting YAML to JSON: yaml: line 1: did not find expected node content"},
		{"a Deployment", "kind: Deployment\n", `metadata file: kind "Deployment": want a ScaledObject or a flat map of trigger metadata`},
		{"a ScaledObject without an external trigger", "kind: ScaledObject\nmetadata: {name: m}\nspec: {triggers: [{type: cpu}]}\n",
			`metadata file: ScaledObject "m" has no trigger of type external or external-push`},
		{"a nested value", "queues: [a, b]\n", "metadata file: queues: want a string, got []interface {} (KEDA metadata values are strings)"},
		{"an empty file", "", "metadata file: empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestResolveReadsFromEnvKeysFromTheCommandsEnvironment(t *testing.T) {
	env := func(k string) (string, bool) {
		switch k {
		case "BROKER":
			return "redis://h:6379", true
		case "EMPTY":
			return " ", true
		}
		return "", false
	}
	all := func(string) bool { return true }
	got, err := Resolve(map[string]string{"brokerURLFromEnv": "BROKER", "queues": "video"}, env, all)
	if err != nil || !maps.Equal(got, map[string]string{"brokerURLFromEnv": "redis://h:6379", "queues": "video"}) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	for _, name := range []string{"EMPTY", "UNSET"} {
		_, err := Resolve(map[string]string{"calendarURLFromEnv": name}, env, all)
		want := `metadata "calendarURLFromEnv": bad value "` + name + `": names an environment variable of this command that is not set or empty`
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
}

func TestResolveLeavesTheKeysACommandDoesNotWant(t *testing.T) {
	env := func(k string) (string, bool) {
		return map[string]string{"CAL": "https://c.example/x.ics"}[k], k == "CAL"
	}
	calendarOnly := func(k string) bool { return k == "calendarURLFromEnv" }
	got, err := Resolve(map[string]string{"brokerURLFromEnv": "UNSET", "calendarURLFromEnv": "CAL"}, env, calendarOnly)
	if err != nil || !maps.Equal(got, map[string]string{"brokerURLFromEnv": "UNSET", "calendarURLFromEnv": "https://c.example/x.ics"}) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
}

const twoTriggers = `kind: ScaledObject
metadata: {name: montage, namespace: prod}
spec:
  triggers:
    - type: external-push
      name: queue
      metadata: {brokerURL: "redis://h:6379/0"}
    - type: cpu
      metadata: {value: "65"}
    - type: external
      metadata: {prometheusURL: "http://p:9090", latencyQuery: "x"}
`

func TestParsePicksOneOfSeveralExternalTriggers(t *testing.T) {
	cases := []struct {
		name, sel, wantTrigger, wantKey string
		push                            bool
	}{
		{"by name", "queue", `spec.triggers[0] "queue" (external-push)`, "brokerURL", true},
		{"by index in spec.triggers", "2", "spec.triggers[2] (external)", "prometheusURL", false},
		{"by index, the named one", "0", `spec.triggers[0] "queue" (external-push)`, "brokerURL", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(twoTriggers), tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.Metadata[tc.wantKey]; !ok || f.Trigger != tc.wantTrigger || f.Push != tc.push {
				t.Fatalf("got %v from %q (push %t), want %s from %q", f.Metadata, f.Trigger, f.Push, tc.wantKey, tc.wantTrigger)
			}
		})
	}
	one, err := Parse([]byte(strings.Replace(twoTriggers, "type: external\n", "type: memory\n", 1)), "")
	if err != nil || one.Trigger != `spec.triggers[0] "queue" (external-push)` {
		t.Fatalf("the only external trigger: %+v, %v", one, err)
	}
}

func TestParseRefusesAnAmbiguousOrUnknownTrigger(t *testing.T) {
	cases := []struct{ name, in, sel, want string }{
		{"two external triggers and no choice", twoTriggers, "",
			`metadata file: ScaledObject "montage" has 2 external triggers: spec.triggers[0] "queue" (external-push), spec.triggers[2] (external); pick one with --trigger N (its index in spec.triggers) or --trigger NAME`},
		{"an index that is not an external trigger", twoTriggers, "1",
			`metadata file: --trigger "1": no external trigger of ScaledObject "montage" has that index or name; it has spec.triggers[0] "queue" (external-push), spec.triggers[2] (external)`},
		{"a name no trigger has", twoTriggers, "latency",
			`metadata file: --trigger "latency": no external trigger of ScaledObject "montage" has that index or name; it has spec.triggers[0] "queue" (external-push), spec.triggers[2] (external)`},
		{"a name two triggers share", strings.Replace(twoTriggers, "- type: external\n", "- type: external\n      name: queue\n", 1), "queue",
			`metadata file: --trigger "queue": spec.triggers[0] "queue" (external-push), spec.triggers[2] "queue" (external) match; name the trigger by its index`},
		{"a choice for a flat map", "brokerURL: redis://h\n", "0",
			`metadata file: --trigger "0": the file is a flat map of trigger metadata, not a ScaledObject`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), tc.sel)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}
