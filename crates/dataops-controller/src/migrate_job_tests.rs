use super::*;
use ferrofluid_api::datamigrate::{DataMigrateSpec, DataToMigrate, DatasetToMigrate, ExternalStorage};

fn migrate(options: &[(&str, &str)], parallelism: Option<i32>) -> DataMigrate {
    let mut m = DataMigrate::new(
        "copy",
        DataMigrateSpec {
            from: DataToMigrate {
                external_storage: Some(ExternalStorage { uri: "file:///src/".into(), encrypt_options: vec![] }),
                ..Default::default()
            },
            to: DataToMigrate {
                dataset: Some(DatasetToMigrate { name: "data".into(), path: Some("/in".into()), namespace: None }),
                ..Default::default()
            },
            options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            parallelism,
            ..Default::default()
        },
    );
    m.metadata.namespace = Some("ns".into());
    m.metadata.uid = Some("u".into());
    m
}

#[test]
fn ranges_cover_every_first_character_once() {
    for n in 1..=16 {
        let ranges: Vec<_> = (0..n).map(|i| key_range(i, n)).collect();
        for key in ["!", "0abc", "Zed", "a/b", "m", "zz", "~", "é"] {
            let inside = ranges
                .iter()
                .filter(|(s, e)| s.as_deref().is_none_or(|s| key >= s) && e.as_deref().is_none_or(|e| key <= e))
                .count();
            assert_eq!(inside, 1, "{key:?} in {inside} of {n} ranges: {ranges:?}");
        }
    }
    assert_eq!(key_range(0, 1), (None, None));
}

#[test]
fn the_command_is_argv_with_no_credentials() {
    let m = migrate(&[("update", ""), ("threads", "20")], None);
    let meta = SecretKeySelector { name: "jfs".into(), key: "metaurl".into() };
    let inp = MigrateInputs {
        op: &m,
        image: "img:1".into(),
        from: Side::External { uri: "file:///src/".into(), secrets: vec![] },
        to: Side::Dataset { meta, dir: fs_dir(Some("/demo"), Some("/in")) },
        cache_node_label: "fluid.io/s-ns-data".into(),
    };
    let job = build(&inp, "range-0");
    let c = &job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod").containers[0];
    let argv = c.command.as_deref().expect("command");
    assert_eq!(argv[..4], ["sh", "-c", crate::sync_report::SCRIPT, "ferrofluid-sync"]);
    assert_eq!(argv[4..], ["juicefs", "sync", "--threads=20", "--update", "file:///src/", "jfs://FF_TO_META/demo/in/"]);
    assert_eq!(c.termination_message_path.as_deref(), Some(crate::warmup_job::TERMINATION_LOG));
    let env = c.env.as_ref().expect("env");
    assert_eq!(env[0].name, "FF_TO_META");
    assert!(env[0].value.is_none() && env[0].value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).is_some());
}

#[test]
fn bad_specs_are_refused_naming_the_field() {
    assert!(
        check(&migrate(&[("files-from", "/etc/x")], None))
            .is_err_and(|w| w.message.contains("spec.options.files-from"))
    );
    assert!(check(&migrate(&[("delete-dst", "")], Some(2))).is_err_and(|w| w.message.contains("delete-dst")));
    assert_eq!(check(&migrate(&[("delete-dst", "")], Some(1))), Ok(()));
    let mut m = migrate(&[], None);
    m.spec.from.external_storage.as_mut().expect("ext").uri = "s3://key:secret@bucket".into();
    assert!(check(&m).is_err_and(|w| w.message.contains("spec.from.externalStorage.uri")));
    let mut m = migrate(&[], None);
    m.spec.to.dataset.as_mut().expect("ds").path = Some("/a/../b".into());
    assert!(check(&m).is_err_and(|w| w.message.contains("spec.to.dataset.path")));
    assert_eq!(units(&migrate(&[], Some(3))).len(), 3);
    assert_eq!(fs_dir(None, Some("/")), "");
}
