//! The fault matrix (docs/reliability.md): each test injects one fault at a named step on the real
//! stack and then checks that the dataset converges and that nothing is left behind. Convergence times
//! are printed as `[fault-matrix] <row>: converged in N s` (run with `--nocapture` to see them).
//! kube-apiserver and etcd restarts disturb every test running at the same time, so they are in
//! their own test binary, `faults_control_plane.rs`.

mod components;
mod data_path;
mod nodes;
mod support;
