# montage-scaler container image: a static binary on distroless, as nonroot.
#   make image                      # docker build, tagged with git describe
#   make image IMAGE=ghcr.io/you/montage-scaler ENGINE=podman
# Stage 1 builds with the Go toolchain; stage 2 holds only the binary.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/montage-scaler ./cmd/montage-scaler

# distroless static: CA certificates and tzdata (calendarTimezone), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="montage-scaler" \
      org.opencontainers.image.description="KEDA external scaler for the Montage video pipeline" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/montage-scaler /montage-scaler
# 65532 is distroless's nonroot; deploy/base runs as that user too.
USER 65532:65532
EXPOSE 9090 8080
ENTRYPOINT ["/montage-scaler"]
CMD ["serve"]
