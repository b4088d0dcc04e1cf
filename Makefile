# ferrofluid — every target installs what it needs first (hack/setup.sh), idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup tools build crds lint test test-unit test-real images real-up real-down csi-sanity bench bench-csi bench-webhook cluster-up cluster-down cluster-status demo up down

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: ## install Debian packages, Rust components, and build the Go tools (cached)
	hack/setup.sh

tools: ## build only the Go tools (etcd, kube-*, kubectl, kwok, csi-sanity, helm) into ~/.cache/ferrofluid
	hack/build-tools.sh

build: ## build every binary
	cargo build --locked --workspace --bins

crds: ## regenerate charts/ferrofluid/crds from the Rust types
	cargo run --locked -q -p ferrofluid-api --bin crdgen -- charts/ferrofluid/crds

lint: ## rustfmt and clippy, as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test-unit: ## unit tests only (no cluster)
	cargo test --locked

test: ## everything: lint, unit tests, cluster tests on a real local control plane
	hack/test.sh

test-real: ## the real-node tests: kubelet + containerd node, helm install, the seed's flow and Fluid's JuiceFS e2e case (make test runs it last)
	hack/test-real.sh

images: ## build every image the chart references (and the real node's pause, busybox, registrar) offline with buildah
	hack/setup.sh
	hack/images.sh build

real-up: ## local control plane + a real kubelet/containerd node, images imported, the chart installed with helm
	hack/setup.sh
	hack/real-node.sh up
	hack/real-node.sh install

real-down: ## uninstall the chart, stop the real node (containers, mounts, containerd, kubelet) and the control plane
	-hack/real-node.sh uninstall
	-hack/real-node.sh down
	FF_NODES=0 hack/local-cluster.sh down

csi-sanity: ## csi-sanity (the CSI conformance suite) against the CSI plugin, with a real JuiceFS mount
	cargo build --locked -p csi-plugin
	hack/csi-sanity.sh

bench: ## benchmarks (not tests): ferrofluid and Fluid v1.0.8 side by side (time to Bound, CPU, memory, API requests, a traced dataset), requests at rest; then bench-csi and bench-webhook
	hack/bench.sh
	hack/bench-csi.sh
	hack/bench-webhook.sh

bench-webhook: ## benchmark (not a test): the admission webhook's latency with 1000 nodes cached, through the real API server
	hack/bench-webhook.sh

bench-csi: ## benchmarks (not tests): CSI call latency with N volumes published, pod bind mount vs raw FUSE read throughput
	hack/bench-csi.sh

cluster-up: ## start the local control plane (etcd, apiserver, controller-manager, scheduler, kwok nodes)
	hack/local-cluster.sh up

cluster-down: ## stop the local control plane and remove its state
	hack/local-cluster.sh down

cluster-status: ## show whether the local control plane is up
	hack/local-cluster.sh status

demo: ## the main job: the seed's whole flow on real JuiceFS mounts, narrated with kubectl, then teardown
	hack/demo.sh

up: ## like demo but leave everything running (KUBECONFIG=.local/kubeconfig; make down)
	KEEP=1 hack/demo.sh

down: ## stop everything `make up` started: agents, components, cluster
	-hack/node-agents.sh stop
	-hack/components.sh stop
	-hack/minio.sh stop
	hack/local-cluster.sh down
	rm -rf .local/dataset.yaml
