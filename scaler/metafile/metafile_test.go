package metafile

import (
	"maps"
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
			f, err := Parse([]byte(tc.in))
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
			_, err := Parse([]byte(tc.in))
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
	got, err := Resolve(map[string]string{"brokerURLFromEnv": "BROKER", "queues": "video"}, env)
	if err != nil || !maps.Equal(got, map[string]string{"brokerURLFromEnv": "redis://h:6379", "queues": "video"}) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	for _, name := range []string{"EMPTY", "UNSET"} {
		_, err := Resolve(map[string]string{"calendarURLFromEnv": name}, env)
		want := `metadata "calendarURLFromEnv": bad value "` + name + `": names an environment variable of this command that is not set or empty`
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
}
