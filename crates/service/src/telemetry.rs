//! Structured logs through `tracing`; `RUST_LOG` selects levels.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber once; later calls are ignored (tests call it freely).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
