#!/usr/bin/env bash
# Builds the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl) and the test tools (kwok, csi-sanity, helm) from Go modules. Each binary is cached under
# $FF_CACHE/tools/<name>-<version> and only rebuilt when missing; $FF_BIN holds links to the
# current versions. Safe to run concurrently: a lock serializes builders.
#
# On request only (not built by default): `hack/build-tools.sh prometheus promtool` builds Prometheus
# $PROMETHEUS_VERSION for hack/prometheus.sh, with the build tags Prometheus's README documents to keep
# only the service discoveries it uses (kubernetes; file, http and static are always in) and without
# `builtinassets`: no web UI, the HTTP API is all there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$FF_CACHE/tools" "$FF_BIN"
exec 9>"$FF_CACHE/build.lock"
flock 9

command -v go >/dev/null || die "Go is required to build the control plane (https://go.dev)"

link() { ln -sfn "$FF_CACHE/tools/$1-$2" "$FF_BIN/$1"; }
have() { [ -x "$FF_CACHE/tools/$1-$2" ]; }

K8S_LDFLAGS=""
k8s_ldflags() {
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local v
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    v="-X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    v="$v -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    K8S_LDFLAGS="$K8S_LDFLAGS $v"
  done
}
k8s_ldflags

build_module_tool() { # name version package [ldflags]
  local name=$1 version=$2 pkg=$3 ldflags=${4:-}
  if ! have "$name" "$version"; then
    log "building $name $version (first build takes minutes)"
    (cd "$HACK_DIR/tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" \
      -o "$FF_CACHE/tools/$name-$version.tmp" "$pkg")
    mv "$FF_CACHE/tools/$name-$version.tmp" "$FF_CACHE/tools/$name-$version"
  fi
  link "$name" "$version"
}

go_install_tool() { # name version package@version
  local name=$1 version=$2 pkg=$3
  if ! have "$name" "$version"; then
    log "installing $name $version"
    local gobin; gobin=$(mktemp -d)
    CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "$pkg"
    mv "$gobin/$(basename "${pkg%@*}")" "$FF_CACHE/tools/$name-$version"
    rm -rf "$gobin"
  fi
  link "$name" "$version"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok csi-sanity helm)
for t in "${want[@]}"; do
  case "$t" in
    etcd) build_module_tool etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet)
      build_module_tool "$t" "$K8S_VERSION" "k8s.io/kubernetes/cmd/$t" "$K8S_LDFLAGS" ;;
    kwok) go_install_tool kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ;;
    csi-sanity) go_install_tool csi-sanity "$CSI_TEST_VERSION" \
      "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_TEST_VERSION" ;;
    helm) go_install_tool helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
    minio) go_install_tool minio "$MINIO_VERSION" "github.com/minio/minio@$MINIO_VERSION" ;;
    prometheus|promtool)
      if ! have "$t" "$PROMETHEUS_VERSION"; then
        log "installing $t $PROMETHEUS_VERSION (first build takes minutes)"
        pv=${PROMETHEUS_VERSION#v0.}; pv="3.$((${pv%%.*} - 300)).${pv#*.}" # v0.316.0 -> 3.16.0
        gobin=$(mktemp -d)
        CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
          -ldflags "-s -w -X github.com/prometheus/common/version.Version=$pv" \
          "github.com/prometheus/prometheus/cmd/$t@$PROMETHEUS_VERSION"
        mv "$gobin/$t" "$FF_CACHE/tools/$t-$PROMETHEUS_VERSION"
        rm -rf "$gobin"
      fi
      link "$t" "$PROMETHEUS_VERSION" ;;
    *) die "unknown tool $t" ;;
  esac
done
log "tools ready in $FF_BIN"
