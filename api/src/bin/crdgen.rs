//! Writes the CRD YAML into a directory (default: `charts/ferrofluid/crds`), or to stdout with `-`.

use std::{env, fs, path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let target = env::args().nth(1).unwrap_or_else(|| "charts/ferrofluid/crds".to_string());
    for (file, crd) in ferrofluid_api::crd::all() {
        let yaml = match ferrofluid_api::crd::to_yaml(&crd) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("crdgen: cannot serialize {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if target == "-" {
            print!("---\n{yaml}");
            continue;
        }
        let path = PathBuf::from(&target).join(file);
        if let Err(e) = fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("crdgen: wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
