//! ferrofluid dataset-controller: Dataset lifecycle: NotBound on creation, validation, deletion protection.

use clap::Parser;
use std::process::ExitCode;

/// Dataset lifecycle: NotBound on creation, validation, deletion protection.
#[derive(Parser, Debug)]
#[command(name = "dataset-controller", version, about)]
struct Args {
    /// Path to a kubeconfig; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let _args = Args::parse();
    // The reconcile loop arrives with its own issue; refuse to pretend to run until then.
    eprintln!("dataset-controller: not implemented yet in this build; only --help and --version work");
    ExitCode::from(2)
}
