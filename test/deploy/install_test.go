package deploy

import (
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/kustomize/v5/commands/edit"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// repoDir is the repository's root, seen from this package.
const repoDir = "../.."

// installSection returns README's "Install on Kubernetes" section.
func installSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n## Install on Kubernetes\n")
	if i < 0 {
		t.Fatal("README.md has no \"## Install on Kubernetes\" section")
	}
	section := readme[i+1:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j+1]
	}
	return section
}

// shellWords splits a command line as sh would for these steps: words
// separated by blanks, 'single quotes' kept together, a comment from " #".
func shellWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '#' && !inWord:
			i = len(line)
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// copyTree copies the directory src to dst on disk.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kustomizeEdit runs `kustomize edit ARGS` in dir, with the kustomize
// command's own code, wired as its binary wires it.
func kustomizeEdit(t *testing.T, dir string, args ...string) {
	t.Helper()
	t.Chdir(dir)
	pvd := provider.NewDefaultDepProvider()
	cmd := edit.NewCmdEdit(filesys.MakeFsOnDisk(), pvd.GetFieldValidator(), pvd.GetResourceFactory(), io.Discard)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("(cd %s && kustomize edit %s): %v", dir, strings.Join(args, " "), err)
	}
}

// moduleVersion returns the version go.mod requires of a module (the one
// this test is built with).
func moduleVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(path) + ` (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

// TestTheREADMEInstallPathRendersAndValidates follows README's numbered
// install steps on a fresh copy of deploy/, as written: the kustomize steps
// run (`kustomize edit set image` with kustomize's own command, then the
// build kubectl apply -k makes, every object decoded strictly), and the
// steps that need a cluster or a registry are held to what the manifests
// and the Makefile need — the CRDs of every kind the build holds, the
// namespaces KEDA and Prometheus go to, the Secrets and keys the app reads,
// the image make image tags and the tag git describe gives. A step this
// test does not know fails it: the README cannot grow a step that is not
// checked.
func TestTheREADMEInstallPathRendersAndValidates(t *testing.T) {
	section := installSection(t)
	// Steps are numbered 1, 2, … with nothing skipped.
	nums := regexp.MustCompile(`(?m)^(\d+)\. \*\*`).FindAllStringSubmatch(section, -1)
	for i, m := range nums {
		if m[1] != strconv.Itoa(i+1) {
			t.Fatalf("install step %d is numbered %s", i+1, m[1])
		}
	}
	if len(nums) < 4 {
		t.Fatalf("%d numbered install steps, want prerequisites, Secrets, images, apply at least", len(nums))
	}
	mk, err := os.ReadFile(filepath.Join(repoDir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	makefile := string(mk)
	gitVersion := regexp.MustCompile(`(?m)^VERSION +\?= \$\(shell (git describe [^)]*?) 2>/dev/null \|\| echo dev\)$`).FindStringSubmatch(makefile)
	if gitVersion == nil {
		t.Fatal("Makefile's VERSION is no longer git describe (or dev): update this test and README's image step")
	}
	if !strings.Contains(makefile, "\nimage:\n\t$(ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .\n") {
		t.Fatal("make image no longer tags $(IMAGE):$(VERSION)")
	}

	root, err := filepath.Abs(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir() // the clone: only deploy/ is read by the steps
	copyTree(t, filepath.Join(root, "deploy"), filepath.Join(work, "deploy"))

	const testTag = "v9.9.9-3-gabcdef0" // what git describe would say
	vars := map[string]string{}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Fatalf("$%s is used before the steps set it", k)
			}
			return v
		})
	}
	var (
		repos         = map[string]string{} // helm repo name → URL
		charts        = map[string]string{} // chart → namespace
		sets          = map[string][]string{}
		crds          []string
		namespaces    = map[string]bool{}
		secrets       = map[string]string{} // namespace/name → key
		built, pushed string
		setImages     = map[string]string{} // kustomization dir → image=ref
		o             objects
	)
	assignment := regexp.MustCompile(`^([A-Z_]+)=(.*)$`)
	subshell := regexp.MustCompile(`^\(cd (\S+) && kustomize (edit .*)\)$`)
	var lines []string
	for _, m := range regexp.MustCompile("(?ms)^ *```sh\n(.*?)^ *```\n").FindAllStringSubmatch(section, -1) {
		lines = append(lines, strings.Split(strings.TrimRight(m[1], "\n"), "\n")...)
	}
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		w := shellWords(line)
		switch {
		case len(w) == 0:
		case len(w) == 5 && w[0] == "helm" && w[1] == "repo" && w[2] == "add":
			if u, err := url.Parse(w[4]); err != nil || u.Scheme != "https" {
				t.Errorf("%q: not an https chart repository", line)
			}
			repos[w[3]] = w[4]
		case len(w) > 3 && w[0] == "helm" && w[1] == "install":
			chart := w[3]
			repo, _, _ := strings.Cut(chart, "/")
			if repos[repo] == "" {
				t.Errorf("%q: chart repository %s was not added before", line, repo)
			}
			for i := 4; i < len(w); i++ {
				switch w[i] {
				case "--namespace":
					i++
					charts[chart] = w[i]
					namespaces[w[i]] = true
				case "--create-namespace":
				case "--set":
					i++
					sets[chart] = append(sets[chart], w[i])
				default:
					t.Errorf("%q: flag %s this test does not know", line, w[i])
				}
			}
		case len(w) > 3 && w[0] == "kubectl" && w[1] == "get" && w[2] == "crd":
			crds = append(crds, w[3:]...)
		case len(w) == 4 && w[0] == "kubectl" && w[1] == "create" && w[2] == "namespace":
			namespaces[w[3]] = true
		case len(w) == 8 && w[0] == "kubectl" && w[1] == "-n" && w[3] == "create" && w[4] == "secret" && w[5] == "generic" && strings.HasPrefix(w[7], "--from-literal="):
			if !namespaces[w[2]] {
				t.Errorf("%q: namespace %s is not created before", line, w[2])
			}
			key, value, _ := strings.Cut(strings.TrimPrefix(w[7], "--from-literal="), "=")
			if value == "" {
				t.Errorf("%q: an empty value", line)
			}
			secrets[w[2]+"/"+w[6]] = key
		case assignment.MatchString(line):
			m := assignment.FindStringSubmatch(line)
			if strings.HasPrefix(m[2], "$(") {
				if m[2] != "$("+gitVersion[1]+")" {
					t.Errorf("%q: the tag is not Makefile's VERSION, $(%s)", line, gitVersion[1])
				}
				vars[m[1]] = testTag
				continue
			}
			vars[m[1]] = m[2]
		case len(w) >= 2 && w[0] == "make" && w[1] == "image":
			mv := map[string]string{"IMAGE": "ghcr.io/montage/montage-scaler", "VERSION": testTag}
			for _, a := range w[2:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || (k != "IMAGE" && k != "VERSION" && k != "ENGINE") {
					t.Errorf("%q: %s is not a variable of make image", line, a)
				}
				mv[k] = expand(v)
			}
			built = mv["IMAGE"] + ":" + mv["VERSION"]
		case len(w) == 3 && w[0] == "docker" && w[1] == "push":
			pushed = expand(w[2])
		case len(w) == 3 && w[0] == "go" && w[1] == "install" && strings.HasPrefix(w[2], "sigs.k8s.io/kustomize/kustomize/v5@"):
			if got, want := strings.TrimPrefix(w[2], "sigs.k8s.io/kustomize/kustomize/v5@"), moduleVersion(t, "sigs.k8s.io/kustomize/kustomize/v5"); got != want {
				t.Errorf("%q: kustomize %s, but this test edits with %s (go.mod)", line, got, want)
			}
		case strings.HasPrefix(line, `export PATH="$PATH:$(go env GOPATH)/bin"`):
		case subshell.MatchString(line):
			m := subshell.FindStringSubmatch(line)
			args := shellWords(expand(m[2]))
			if len(args) != 4 || args[1] != "set" || args[2] != "image" {
				t.Errorf("%q: only kustomize edit set image is known here", line)
				continue
			}
			kustomizeEdit(t, filepath.Join(work, m[1]), args[1:]...)
			setImages[m[1]] = args[3]
		case len(w) == 3 && w[0] == "kubectl" && w[1] == "apply" && w[2] == "-k":
			t.Errorf("%q: no directory", line)
		case len(w) == 4 && w[0] == "kubectl" && w[1] == "apply" && w[2] == "-k":
			dir := strings.TrimSuffix(w[3], "/")
			var err error
			o, err = buildPath(filesys.MakeFsOnDisk(), filepath.Join(work, dir), strings.TrimPrefix(dir, "deploy/"))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		case len(w) >= 5 && w[0] == "kubectl" && w[1] == "-n" && (w[3] == "rollout" || w[3] == "get"):
			if o == nil {
				t.Errorf("%q: verifies before anything is applied", line)
				continue
			}
			kinds := map[string]string{"deployment": "Deployment", "scaledobject": "ScaledObject"}
			target := w[len(w)-1]
			if w[3] == "get" {
				target = w[4] + "/" + w[5]
			}
			k, name, _ := strings.Cut(target, "/")
			if _, ok := o[key(kinds[k], w[2], name)]; !ok {
				t.Errorf("%q: the build has no %s %s/%s", line, kinds[k], w[2], name)
			}
		default:
			t.Errorf("README's install runs %q, which this test does not know: teach it the step", line)
		}
	}
	if o == nil {
		t.Fatal("no step applies a kustomization")
	}
	// Chdir back: the checks below read this package's relative paths.
	t.Chdir(filepath.Join(root, "test", "deploy"))

	// The image: what make image built and docker pushed, written into
	// deploy/base by kustomize edit; the app's image set too.
	if built == "" || pushed != built {
		t.Errorf("make image builds %q, docker push pushes %q", built, pushed)
	}
	if setImages["deploy/base"] != "montage-scaler="+built {
		t.Errorf("deploy/base's image is set to %q, want montage-scaler=%s (what make image built)", setImages["deploy/base"], built)
	}
	scaler := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	if got := scaler.Spec.Template.Spec.Containers[0].Image; got != built {
		t.Errorf("the applied scaler runs %q, want %q", got, built)
	}
	app := get[appsv1.Deployment](t, o, "Deployment", "montage", "montage")
	if _, ref, _ := strings.Cut(setImages["deploy/app"], "="); ref == "" || app.Spec.Template.Spec.Containers[0].Image != ref {
		t.Errorf("the applied app runs %q; README sets %q", app.Spec.Template.Spec.Containers[0].Image, setImages["deploy/app"])
	}

	// The Secrets: every one a Deployment reads, with its key, optional or not.
	for _, k := range o.Keys() {
		d, ok := o[k].(*appsv1.Deployment)
		if !ok {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if got, ok := secrets[d.Namespace+"/"+ref.Name]; !ok || got != ref.Key {
					t.Errorf("%s reads Secret %s/%s key %s (%s); README creates %v", k, d.Namespace, ref.Name, ref.Key, e.Name, secrets)
				}
			}
		}
	}

	// The CRDs: exactly those of the build's kinds that Kubernetes lacks.
	builtin := []string{"", "apps", "policy", "networking.k8s.io", "rbac.authorization.k8s.io", "autoscaling"}
	var need []string
	for _, k := range o.Keys() {
		kind, _, _ := strings.Cut(k, " ")
		group := map[string]string{"ScaledObject": "keda.sh", "TriggerAuthentication": "keda.sh",
			"ServiceMonitor": "monitoring.coreos.com", "PodMonitor": "monitoring.coreos.com", "PrometheusRule": "monitoring.coreos.com"}[kind]
		if slices.Contains(builtin, group) {
			continue // newObject decodes no other kind: a new one fails the build first
		}
		crd := strings.ToLower(kind) + "s." + group
		if !slices.Contains(need, crd) {
			need = append(need, crd)
		}
	}
	slices.Sort(need)
	got := slices.Clone(crds)
	slices.Sort(got)
	if !slices.Equal(got, need) {
		t.Errorf("README's kubectl get crd lists %v; the applied build needs %v", got, need)
	}

	// KEDA where the NetworkPolicy admits gRPC from, and a Prometheus where
	// the ScaledObject and the NetworkPolicy look for it, selecting every
	// release's monitoring objects.
	np := get[networkingv1.NetworkPolicy](t, o, "NetworkPolicy", ns, "montage-scaler")
	from := map[string]string{}
	for _, r := range np.Spec.Ingress {
		from[r.Ports[0].Port.String()] = r.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
	}
	if charts["kedacore/keda"] == "" || charts["kedacore/keda"] != from["grpc"] {
		t.Errorf("KEDA is installed in %q; the NetworkPolicy admits gRPC from %q", charts["kedacore/keda"], from["grpc"])
	}
	so := get[kedav1alpha1.ScaledObject](t, o, "ScaledObject", "montage", "montage")
	promURL, err := url.Parse(so.Spec.Triggers[0].Metadata["prometheusURL"])
	if err != nil {
		t.Fatal(err)
	}
	promNS := strings.Split(promURL.Hostname(), ".")[1]
	const stack = "prometheus-community/kube-prometheus-stack"
	if charts[stack] != promNS || promNS != from["http"] {
		t.Errorf("kube-prometheus-stack is installed in %q; the ScaledObject asks a Prometheus in %q, the NetworkPolicy admits scrapes from %q", charts[stack], promNS, from["http"])
	}
	for _, sel := range []string{"serviceMonitor", "podMonitor", "rule"} {
		if want := "prometheus.prometheusSpec." + sel + "SelectorNilUsesHelmValues=false"; !slices.Contains(sets[stack], want) {
			t.Errorf("kube-prometheus-stack is installed without --set %s: its Prometheus would ignore deploy/monitoring's objects", want)
		}
	}
}
