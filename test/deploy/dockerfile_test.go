package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// No container engine runs here; the Dockerfile's promises are read from it.
func TestDockerfileBuildsAStaticNonrootImageStampedWithTheVersion(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) != 2 {
		t.Fatalf("%d FROM lines, want a two-stage build", len(froms))
	}
	if got := froms[1][1]; got != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final base = %q, want distroless static nonroot", got)
	}
	for _, want := range []string{
		`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"`,
		"COPY --from=build /out/montage-scaler /montage-scaler",
		"USER 65532:65532",
		`ENTRYPOINT ["/montage-scaler"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The image's user is the one deploy/base runs as.
	o, _ := buildOverlay(t, "overlays/personal")
	d := get[appsv1.Deployment](t, o, "Deployment", ns, "montage-scaler")
	if u := d.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("deploy/base runAsUser = %v, want the image's 65532", u)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\nimage:\n\t$(ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .\n") {
		t.Error("Makefile has no `make image` target building the Dockerfile with the version")
	}
}
