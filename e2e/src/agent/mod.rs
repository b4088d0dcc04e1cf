//! The node agent's test side: `harness` starts agent-backed nodes and reads what their agents write.
//! The agent itself (the kubelet stand-in) is the `ferrofluid-node-agent` crate, re-exported here so
//! the tests name its parts as `agent::<module>`.

pub mod harness;
pub use node_agent::*;
