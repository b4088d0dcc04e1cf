# syntax=docker/dockerfile:1
# ferrofluid images, built from the workspace root:
#   docker build --target controllers -t ghcr.io/ferrofluid/ferrofluid:0.1.0 .
#   docker build --target csi         -t ghcr.io/ferrofluid/ferrofluid-csi:0.1.0 .
# Both images carry all six binaries in /usr/local/bin; the chart runs each component by its command.
# The `csi` image adds the mount and FUSE tools the node plugin's host-side work relies on.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# Manifests and sources of every workspace member (cargo needs all member manifests, e2e included);
# the CSI protobufs are compiled in pure Rust (protox), so no protoc is needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/dataset-controller target/release/runtime-controller target/release/dataops-controller \
       target/release/metrics-collector target/release/webhook target/release/csi-plugin /out/

FROM debian:${DEBIAN_RELEASE}-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/ /usr/local/bin/

# The node plugin: runs privileged as root (the chart sets that); mount/umount (util-linux `mount`) and
# fuse3 (`fusermount3`) for inspecting and cleaning FUSE mounts on the node.
FROM base AS csi
RUN apt-get update \
 && apt-get install -y --no-install-recommends mount fuse3 \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/local/bin/csi-plugin"]

# The controllers, the metrics-collector and the webhook: unprivileged, read-only root file system in the
# chart (the webhook keeps its certificates in a Secret and in memory, never on disk).
FROM base AS controllers
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dataset-controller"]
