//! The node agent: stands in for the kubelet on an agent-backed kwok node. kwok fakes node and pod
//! status; the agent makes the pods real. For the pods bound to its node it stages and publishes
//! `fuse.csi.fluid.io` volumes through the node's own csi-plugin, and runs the containers of the pods
//! ferrofluid created (worker and FUSE pods) as host processes in the node's mount namespace, with
//! their environment resolved as kubelet resolves it; a data-operation container gets a mount namespace
//! of its own below the node's, for its termination-message file (`termination.rs`).
//! `hack/node-agents.sh` sets up the namespace and starts it; `docs/local-cluster.md` describes the
//! whole arrangement. The tests' side of it (starting agents, reading their files) is
//! `ferrofluid_e2e::agent::harness`.

pub mod args;
pub mod container;
pub mod csi;
pub mod csi_plugin_process;
pub mod ctx;
pub mod env;
pub mod expand;
pub mod layout;
pub mod lifecycle;
pub mod pod;
pub mod pod_status;
pub mod probe;
pub mod process;
pub mod status;
pub mod supervisor;
pub mod temp_dir;
pub mod termination;
pub mod volumes;
