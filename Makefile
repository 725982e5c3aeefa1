# montage-scaler: see README.md. Every target works on a fresh machine.
GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
SOAK     ?= 10m
FLAP     ?= 1m

.PHONY: build test deps bench demo report-demo lint proto fuzz faults stress

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/montage-scaler ./cmd/montage-scaler

# Unit and integration tests; the harness starts its own redis-server, Celery
# workers and Prometheus on free loopback ports. deps installs the Debian
# packages they need when missing (apt-get; sudo when not root). The slowest
# package takes about 90 s on a busy 2-core machine: a hang fails at 10 min.
test: deps
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 10m ./...

# The fault matrix (test/faults, build tag faults): every source killed,
# hung, fed garbage and flapped under the real binary; about 3 minutes, its
# cells side by side. FAULTS_RUN picks cells (a go test -run pattern below
# TestFaultMatrix/cells, e.g. 'Redis/killed').
deps:
	@bash .ci/deps

FAULTS_RUN ?= .
faults: deps
	$(GO) test -tags faults -count=1 -timeout 20m -parallel 32 -v -run 'TestFaultMatrix/cells/$(FAULTS_RUN)' ./test/faults/

# The StreamIsActive tests as a loaded CI machine runs them: 6 processes of
# 300 runs each with -cpu 1,2,4, side by side, beside 4 busy loops.
stress:
	bash test/stress.sh

# Benchmarks print each figure beside a floor measured in the same run: RPC
# latency, round trips, push activation, RPC abuse (RSS and goroutines
# before and after), log volume during a broker flap of FLAP, and a soak of
# SOAK at 500 ScaledObjects (RSS and goroutines at its start and end).
bench: build
	$(GO) run ./test/bench --soak $(SOAK) --flap $(FLAP)
	$(GO) test -run '^$$' -bench . -benchtime 2s ./scaler/...

# A live demo: the scaler deciding as Celery tasks arrive and finish. It says
# what happens before building: a cold build prints nothing for minutes. The
# demo is built with the scaler's flags, so it reuses the scaler's packages.
demo:
	@echo "make demo: compiling bin/montage-scaler and bin/demo first. With a cold Go build cache"
	@echo "  this takes about 3 minutes on 2 cores and prints nothing meanwhile; later runs start in"
	@echo "  seconds. Then, for about 15 s: a Redis, montage-scaler serve, Celery tasks queued and"
	@echo "  run, and what KEDA is told after each step."
	@$(MAKE) --no-print-directory build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demo ./examples/demo
	bin/demo --scaler bin/montage-scaler

# report tried on a day simulate predicted: the series the cluster would
# have exported, backfilled with promtool into a Prometheus of the demo's own
# (port 0, read from its log), measured by report; about 5 s after the
# build. Needs only Debian's prometheus package (make test installs it).
# KEEP=1 leaves that Prometheus serving until Ctrl-C.
report-demo:
	@echo "make report-demo: compiling bin/montage-scaler and bin/report-demo first (a cold build takes minutes and"
	@echo "  prints nothing). Then: simulate a day, backfill it with promtool into a Prometheus of its own, run report."
	@$(MAKE) --no-print-directory build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/report-demo ./examples/reportdemo
	bin/report-demo --scaler bin/montage-scaler $(if $(KEEP),--keep)

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...

# Short fuzz runs of every fuzz target (their seeds also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME) ./scaler/spec/
	$(GO) test -run '^$$' -fuzz '^FuzzParseBrokerURL$$' -fuzztime $(FUZZTIME) ./scaler/celery/
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./scaler/celery/
	$(GO) test -run '^$$' -fuzz '^FuzzParseExposition$$' -fuzztime $(FUZZTIME) ./scaler/latency/prom/
	$(GO) test -run '^$$' -fuzz '^FuzzParseExpand$$' -fuzztime $(FUZZTIME) ./scaler/calendar/ical/
	$(GO) test -run '^$$' -fuzz '^FuzzRepairUTF8$$' -fuzztime $(FUZZTIME) ./scaler/server/
	$(GO) test -run '^$$' -fuzz '^FuzzRedact$$' -fuzztime $(FUZZTIME) ./scaler/meta/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResult$$' -fuzztime $(FUZZTIME) ./scaler/latency/prom/

# Regenerates proto/ from inspector.proto. Needs protoc (Debian's
# protobuf-compiler, which no test needs, so make test does not install it);
# installs the two Go plugins itself.
proto:
	@command -v protoc >/dev/null || { echo "make proto: needs protoc: apt-get install protobuf-compiler" >&2; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH="$(GOBIN):$$PATH" protoc -I proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/montage/scaler/v1/inspector.proto

# Container image (Dockerfile: static binary on distroless nonroot), tagged
# IMAGE:VERSION, VERSION being git describe as for the binary. deploy/base
# names it in its images: field; README's install writes there what was
# built (kustomize edit set image). Needs a container engine; nothing else in
# this Makefile or the tests does.
#   make image [IMAGE=ghcr.io/montage/montage-scaler] [VERSION=...] [ENGINE=docker|podman]
IMAGE  ?= ghcr.io/montage/montage-scaler
ENGINE ?= docker
.PHONY: image
image:
	$(ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .
	@echo "built $(IMAGE):$(VERSION): push it, then (cd deploy/base && kustomize edit set image montage-scaler=$(IMAGE):$(VERSION))"

# End to end under a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler), KEDA, and the live loop's KWOK,
# metrics-server and kube-state-metrics, built from their Go modules into a
# cache outside the repository (test/e2e/build/build.sh; cold about 2 hours
# on 2 cores, then reused). Needs root (the metrics adapter runs in a network
# namespace). E2E_RUN picks scenarios (a go test -run pattern). -parallel 12:
# the seven scenarios and the live loop's two run side by side.
E2E_CACHE ?= $(or $(MONTAGE_E2E_CACHE),$(HOME)/.cache/montage-scaler-e2e)
E2E_RUN   ?= .
.PHONY: e2e e2e-build
e2e-build:
	MONTAGE_E2E_CACHE='$(E2E_CACHE)' bash test/e2e/build/build.sh

e2e: e2e-build
	MONTAGE_E2E_CACHE='$(E2E_CACHE)' $(GO) test -tags e2e -count=1 -timeout 45m -parallel 12 -v -run 'TestE2E/$(E2E_RUN)' ./test/e2e/
