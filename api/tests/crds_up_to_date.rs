//! The CRD YAML committed to the chart must be exactly what the Rust types generate.

use std::{fs, path::Path};

#[test]
fn committed_crds_match_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/ferrofluid/crds");
    for (file, crd) in ferrofluid_api::crd::all() {
        let want = ferrofluid_api::crd::to_yaml(&crd).expect("serialize");
        let path = dir.join(file);
        let have = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        assert!(have == want, "{} is stale; run `make crds` and commit the result", path.display());
    }
}

#[test]
fn crds_carry_fluid_compatible_names() {
    let crds = ferrofluid_api::crd::all();
    let names: Vec<_> = crds.iter().map(|(_, c)| c.metadata.name.clone().unwrap_or_default()).collect();
    assert_eq!(
        names,
        [
            "datasets.data.fluid.io",
            "juicefsruntimes.data.fluid.io",
            "dataloads.data.fluid.io",
            "datamigrates.data.fluid.io",
            "dataprocesses.data.fluid.io"
        ]
    );
    for (_, crd) in &crds {
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["fluid".to_string()][..]));
        assert_eq!(crd.spec.versions[0].name, "v1alpha1");
        assert!(crd.spec.versions[0].subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    }
    let runtime = &crds[1].1;
    assert_eq!(runtime.spec.names.short_names.as_deref(), Some(&["juicefs".to_string()][..]));
    let scale = runtime.spec.versions[0].subresources.as_ref().and_then(|s| s.scale.as_ref()).expect("scale");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    // Fluid's short names of the data operations (DataProcess has none in Fluid).
    let short = |i: usize| crds[i].1.spec.names.short_names.clone().unwrap_or_default();
    assert_eq!((short(2), short(3), short(4)), (vec!["load".to_string()], vec!["migrate".to_string()], vec![]));
}
