//! Malformed Datasets and JuiceFSRuntimes are refused by the apiserver itself, with a message that
//! names the offending field and says what is allowed. Each case is the valid seed object with one
//! thing broken, so a rejection can only come from that one thing.

use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok};

const DATASET_OK: &str = r#"
apiVersion: data.fluid.io/v1alpha1
kind: Dataset
metadata:
  name: NAME
spec:
  mounts:
    - name: test
      mountPoint: "juicefs:///demo"
      options:
        bucket: "/var/data/bucket"
"#;

const RUNTIME_OK: &str = r#"
apiVersion: data.fluid.io/v1alpha1
kind: JuiceFSRuntime
metadata:
  name: NAME
spec:
  replicas: 1
  tieredstore:
    levels:
      - mediumtype: MEM
        path: /dev/shm
        quota: 40960
"#;

const DATALOAD_OK: &str = r#"
apiVersion: data.fluid.io/v1alpha1
kind: DataLoad
metadata:
  name: NAME
spec:
  dataset:
    name: data
  target:
    - path: /train
"#;

const DATAMIGRATE_OK: &str = r#"
apiVersion: data.fluid.io/v1alpha1
kind: DataMigrate
metadata:
  name: NAME
spec:
  from:
    externalStorage:
      uri: "s3://bucket.example/prefix/"
  to:
    dataset:
      name: data
"#;

const DATAPROCESS_OK: &str = r#"
apiVersion: data.fluid.io/v1alpha1
kind: DataProcess
metadata:
  name: NAME
spec:
  dataset:
    name: data
    mountPath: /data
  processor:
    script:
      image: busybox
      source: "ls /data"
"#;

const BASES: [&str; 5] = [DATASET_OK, RUNTIME_OK, DATALOAD_OK, DATAMIGRATE_OK, DATAPROCESS_OK];

struct Case {
    what: &'static str,
    base: &'static str,
    /// (text to replace in the base, replacement)
    edit: (&'static str, &'static str),
    /// Substrings the error must contain: the field path and what is allowed.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "empty mounts",
        base: DATASET_OK,
        edit: (
            "  mounts:\n    - name: test\n      mountPoint: \"juicefs:///demo\"\n      options:\n        bucket: \"/var/data/bucket\"\n",
            "  mounts: []\n",
        ),
        expect: &["spec.mounts", "at least 1"],
    },
    Case {
        what: "missing mounts",
        base: DATASET_OK,
        edit: (
            "  mounts:\n    - name: test\n      mountPoint: \"juicefs:///demo\"\n      options:\n        bucket: \"/var/data/bucket\"\n",
            "  placement: Exclusive\n",
        ),
        expect: &["spec.mounts", "Required"],
    },
    Case {
        what: "mountPoint without a scheme",
        base: DATASET_OK,
        edit: ("\"juicefs:///demo\"", "\"demo\""),
        expect: &["spec.mounts[0].mountPoint", "<scheme>://<path>"],
    },
    Case {
        what: "mountPoint escaping with ..",
        base: DATASET_OK,
        edit: ("\"juicefs:///demo\"", "\"juicefs:///demo/../../etc\""),
        expect: &["spec.mounts[0].mountPoint", "'..'"],
    },
    Case {
        what: "duplicate mount names",
        base: DATASET_OK,
        edit: ("    - name: test\n", "    - name: test\n      mountPoint: \"juicefs:///a\"\n    - name: test\n"),
        expect: &["spec.mounts", "unique"],
    },
    Case {
        what: "unknown placement",
        base: DATASET_OK,
        edit: ("spec:\n", "spec:\n  placement: Everywhere\n"),
        expect: &["spec.placement", "Exclusive", "Shared"],
    },
    Case {
        what: "unknown access mode",
        base: DATASET_OK,
        edit: ("spec:\n", "spec:\n  accessModes: [ReadWriteSometimes]\n"),
        expect: &["spec.accessModes[0]", "ReadWriteMany"],
    },
    Case {
        what: "secret reference without a key",
        base: DATASET_OK,
        edit: (
            "      options:\n",
            "      encryptOptions:\n        - name: metaurl\n          valueFrom:\n            secretKeyRef: {name: jfs-secret}\n      options:\n",
        ),
        expect: &["spec.mounts[0].encryptOptions[0].valueFrom.secretKeyRef.key", "Required"],
    },
    Case {
        what: "dataset name that is not a DNS-1035 label",
        base: DATASET_OK,
        edit: ("name: NAME", "name: 9-lives"),
        expect: &["metadata.name", "DNS-1035"],
    },
    Case {
        what: "negative replicas",
        base: RUNTIME_OK,
        edit: ("replicas: 1", "replicas: -1"),
        expect: &["spec.replicas", "greater than or equal to 0"],
    },
    Case {
        what: "unknown mediumtype",
        base: RUNTIME_OK,
        edit: ("mediumtype: MEM", "mediumtype: NVME"),
        expect: &["spec.tieredstore.levels[0].mediumtype", "\"MEM\"", "\"SSD\"", "\"HDD\""],
    },
    Case {
        what: "negative quota",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: -1"),
        expect: &["spec.tieredstore.levels[0].quota", "positive"],
    },
    Case {
        what: "zero quota quantity",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: 0Gi"),
        expect: &["spec.tieredstore.levels[0].quota", "positive"],
    },
    Case {
        what: "quota that is not a quantity",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: lots"),
        expect: &["spec.tieredstore.levels[0].quota", "500Mi"],
    },
    Case {
        what: "relative cache path",
        base: RUNTIME_OK,
        edit: ("path: /dev/shm", "path: cache"),
        expect: &["spec.tieredstore.levels[0].path"],
    },
    Case {
        what: "high ratio above 1",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: 40960\n        high: \"1.5\""),
        expect: &["spec.tieredstore.levels[0].high"],
    },
    Case {
        what: "low above high",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: 40960\n        high: \"0.5\"\n        low: \"0.8\""),
        expect: &["spec.tieredstore.levels[0]", "low must not exceed high"],
    },
    Case {
        what: "empty tieredstore levels",
        base: RUNTIME_OK,
        edit: (
            "    levels:\n      - mediumtype: MEM\n        path: /dev/shm\n        quota: 40960\n",
            "    levels: []\n",
        ),
        expect: &["spec.tieredstore.levels", "at least 1"],
    },
    Case {
        what: "unknown volumeType",
        base: RUNTIME_OK,
        edit: ("quota: 40960", "quota: 40960\n        volumeType: nfs"),
        expect: &["spec.tieredstore.levels[0].volumeType", "hostPath", "emptyDir"],
    },
    Case {
        what: "unknown fuse cleanPolicy",
        base: RUNTIME_OK,
        edit: ("spec:\n", "spec:\n  fuse:\n    cleanPolicy: Never\n"),
        expect: &["spec.fuse.cleanPolicy", "OnDemand", "OnRuntimeDeleted"],
    },
    Case {
        what: "unknown worker networkMode",
        base: RUNTIME_OK,
        edit: ("spec:\n", "spec:\n  worker:\n    networkMode: Bridge\n"),
        expect: &["spec.worker.networkMode", "HostNetwork", "ContainerNetwork"],
    },
    Case {
        what: "DataLoad target escaping the dataset",
        base: DATALOAD_OK,
        edit: ("path: /train", "path: /train/../../etc"),
        expect: &["spec.target[0]", "absolute path inside the dataset"],
    },
    Case {
        what: "DataLoad relative target",
        base: DATALOAD_OK,
        edit: ("path: /train", "path: train"),
        expect: &["spec.target[0]", "absolute path"],
    },
    Case {
        what: "DataLoad option other than threads",
        base: DATALOAD_OK,
        edit: ("spec:\n", "spec:\n  options:\n    metaurl: redis://x\n"),
        expect: &["spec.options", "the only option is threads"],
    },
    Case {
        what: "DataLoad Cron without schedule",
        base: DATALOAD_OK,
        edit: ("spec:\n", "spec:\n  policy: Cron\n"),
        expect: &["spec.schedule is required with policy Cron"],
    },
    Case {
        what: "DataProcess Cron without schedule",
        base: DATAPROCESS_OK,
        edit: ("spec:\n", "spec:\n  policy: Cron\n"),
        expect: &["spec.schedule is required with policy Cron"],
    },
    Case {
        what: "DataLoad unknown policy",
        base: DATALOAD_OK,
        edit: ("spec:\n", "spec:\n  policy: Sometimes\n"),
        expect: &["spec.policy", "Once", "Cron"],
    },
    Case {
        what: "DataMigrate with credentials in the URI",
        base: DATAMIGRATE_OK,
        edit: ("s3://bucket.example/prefix/", "s3://AKIA:secret@bucket.example/prefix/"),
        expect: &["spec.from.externalStorage.uri"],
    },
    Case {
        what: "DataMigrate side with both dataset and storage",
        base: DATAMIGRATE_OK,
        edit: (
            "    dataset:\n      name: data\n",
            "    dataset:\n      name: data\n    externalStorage:\n      uri: \"file:///x/\"\n",
        ),
        expect: &["spec.to", "exactly one of dataset and externalStorage"],
    },
    Case {
        what: "DataMigrate without a dataset side",
        base: DATAMIGRATE_OK,
        edit: ("    dataset:\n      name: data\n", "    externalStorage:\n      uri: \"file:///x/\"\n"),
        expect: &["spec.from or spec.to must be a dataset"],
    },
    Case {
        what: "DataMigrate parallelism out of range",
        base: DATAMIGRATE_OK,
        edit: ("spec:\n", "spec:\n  parallelism: 64\n"),
        expect: &["spec.parallelism", "16"],
    },
    Case {
        what: "DataProcess relative mount path",
        base: DATAPROCESS_OK,
        edit: ("mountPath: /data", "mountPath: data"),
        expect: &["spec.dataset", "mountPath must be an absolute path"],
    },
    Case {
        what: "DataProcess with both script and job",
        base: DATAPROCESS_OK,
        edit: ("  processor:\n", "  processor:\n    job:\n      podSpec:\n        containers: [{name: a, image: b}]\n"),
        expect: &["spec.processor: give exactly one of script and job"],
    },
];

fn render(case: &Case, name: &str) -> String {
    assert!(case.base.contains(case.edit.0), "case '{}' edits text that is not there", case.what);
    case.base.replace(case.edit.0, case.edit.1).replace("NAME", name)
}

#[test]
fn valid_bases_are_accepted() {
    // The control: without the edit, every object applies, so every rejection below is the edit's doing.
    let ns = TestNamespace::new("valid").expect("namespace");
    for base in BASES {
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&base.replace("NAME", "ok")))
            .expect("valid object refused");
    }
}

#[test]
fn malformed_objects_are_rejected_naming_the_field() {
    assert!(CASES.len() >= 12);
    let ns = TestNamespace::new("invalid").expect("namespace");
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let name = format!("bad-{i}");
        let doc = render(case, &name);
        let out = kubectl(&["apply", "-n", &ns.name, "-f", "-"], Some(&doc)).expect("kubectl");
        if out.ok {
            failures.push(format!("{}: accepted", case.what));
            continue;
        }
        for want in case.expect {
            if !out.stderr.contains(want) {
                failures.push(format!("{}: error lacks {want:?}: {}", case.what, out.stderr.trim()));
            }
        }
    }
    let kinds = "datasets,juicefsruntimes,dataloads,datamigrates,dataprocesses";
    let left = kubectl_ok(&["get", kinds, "-n", &ns.name, "-o", "name"], None).expect("get");
    assert!(left.trim().is_empty(), "rejected objects were stored: {left}");
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// Option keys no `options` map may hold: shell syntax of every kind, flags with their dashes, upper
/// case, and the names of secrets (which belong in `encryptOptions`).
const HOSTILE_KEYS: &[&str] = &[
    "writeback $(touch /tmp/x)",
    "`touch /tmp/x`",
    "a;touch /tmp/x",
    "a|touch /tmp/x",
    "a&&touch /tmp/x",
    "a'b",
    "a\"b",
    "a\nb",
    "--writeback",
    "-o",
    "Cache-Size",
    "cache_size",
    "metaurl",
    "secret-key",
];

/// Where options maps live, as (base object, text to replace, replacement with `KEY` for the key, field
/// the error names).
const OPTION_MAPS: &[(&str, &str, &str, &str)] = &[
    (DATASET_OK, "        bucket: \"/var/data/bucket\"\n", "        KEY: \"1\"\n", "spec.mounts[0].options"),
    (DATASET_OK, "spec:\n", "spec:\n  sharedOptions:\n    KEY: \"1\"\n", "spec.sharedOptions"),
    (RUNTIME_OK, "spec:\n", "spec:\n  worker:\n    options:\n      KEY: \"1\"\n", "spec.worker.options"),
    (RUNTIME_OK, "spec:\n", "spec:\n  fuse:\n    options:\n      KEY: \"1\"\n", "spec.fuse.options"),
];

#[test]
fn hostile_option_keys_are_refused_in_every_options_map() {
    let ns = TestNamespace::new("optkeys").expect("namespace");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (base, from, to, field) in OPTION_MAPS {
        assert!(base.contains(from));
        // The control: a flag name is accepted in this map.
        let ok = base.replace(from, &to.replace("KEY", "writeback")).replace("NAME", "ok");
        let out = kubectl(&["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"], Some(&ok)).expect("kubectl");
        assert!(out.ok, "{field}: a flag name was refused: {}", out.stderr);
        for key in HOSTILE_KEYS {
            checked += 1;
            let quoted = serde_json::to_string(key).expect("json string");
            let doc = base.replace(from, &to.replace("KEY", &quoted)).replace("NAME", "bad");
            let out = kubectl(&["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"], Some(&doc)).expect("kubectl");
            if out.ok {
                failures.push(format!("{field}: {key:?} accepted"));
            } else if !out.stderr.contains(field) {
                failures.push(format!("{field}: {key:?}: error does not name the field: {}", out.stderr.trim()));
            } else if (key.contains("secret") || *key == "metaurl") && !out.stderr.contains("encryptOptions") {
                failures.push(format!("{field}: {key:?}: error does not point to encryptOptions"));
            }
        }
    }
    assert_eq!(checked, HOSTILE_KEYS.len() * OPTION_MAPS.len());
    assert!(failures.is_empty(), "{} of {checked} wrong:\n{}", failures.len(), failures.join("\n"));
}
