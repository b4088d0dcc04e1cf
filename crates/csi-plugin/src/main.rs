//! ferrofluid csi-plugin binary: parses the flags and runs the plugin ([`csi_plugin::run`]).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    csi_plugin::run(csi_plugin::args::Args::parse()).await
}
