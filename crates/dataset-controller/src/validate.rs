//! What the schema cannot check about a Dataset: that a runtime supports its mount scheme and (when the
//! controller may read Secrets, `--check-secrets`) that the Secrets it references exist and hold the
//! keys. Pure: what was found of the Secrets comes in as a map.

use ferrofluid_api::sharing;
use ferrofluid_api::{DatasetSpec, EncryptOption};
use std::collections::{BTreeMap, BTreeSet};

/// Mount-point schemes ferrofluid serves: a runtime's (`juicefs`), or a reference to another dataset.
pub const SUPPORTED_SCHEMES: &[&str] = &["juicefs", sharing::SCHEME_NAME];

/// A problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every Secret (by name) the dataset references.
pub fn referenced_secrets(spec: &DatasetSpec) -> BTreeSet<String> {
    encrypt_options(spec).map(|(_, o)| o.value_from.secret_key_ref.name.clone()).collect()
}

fn encrypt_options(spec: &DatasetSpec) -> impl Iterator<Item = (String, &EncryptOption)> {
    let shared =
        spec.shared_encrypt_options.iter().enumerate().map(|(i, o)| (format!("spec.sharedEncryptOptions[{i}]"), o));
    let mounts = spec.mounts.iter().enumerate().flat_map(|(m, mount)| {
        mount.encrypt_options.iter().enumerate().map(move |(i, o)| (format!("spec.mounts[{m}].encryptOptions[{i}]"), o))
    });
    shared.chain(mounts)
}

/// What the controller could see of one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretView {
    /// It exists; its keys.
    Keys(BTreeSet<String>),
    /// The controller may not read it (no `get` on Secrets in that namespace).
    Forbidden,
}

/// Each existing Secret the dataset names, by name; a missing one is absent.
pub type SecretKeys = BTreeMap<String, SecretView>;

/// Checks the spec of dataset `namespace/name`; with `secrets` (when Secrets are checked) also the
/// references against them.
pub fn validate(spec: &DatasetSpec, namespace: &str, name: &str, secrets: Option<&SecretKeys>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(Err(e)) = sharing::reference(spec, namespace, name) {
        let (field, message) = e.split_once(": ").unwrap_or(("spec.mounts", e.as_str()));
        problems.push(Problem { field: field.into(), message: message.into() });
    }
    for (i, mount) in spec.mounts.iter().enumerate() {
        let scheme = mount.mount_point.split("://").next().unwrap_or_default();
        if !SUPPORTED_SCHEMES.contains(&scheme) {
            problems.push(Problem {
                field: format!("spec.mounts[{i}].mountPoint"),
                message: format!(
                    "scheme {scheme:?} is not served by any ferrofluid runtime (supported: {})",
                    SUPPORTED_SCHEMES.join(", ")
                ),
            });
        }
    }
    let Some(secrets) = secrets else { return problems };
    for (field, opt) in encrypt_options(spec) {
        let r = &opt.value_from.secret_key_ref;
        match secrets.get(&r.name) {
            None => problems.push(Problem {
                field: format!("{field}.valueFrom.secretKeyRef.name"),
                message: format!("Secret {:?} does not exist in the dataset's namespace", r.name),
            }),
            Some(SecretView::Forbidden) => problems.push(Problem {
                field: format!("{field}.valueFrom.secretKeyRef.name"),
                message: format!(
                    "cannot check Secret {:?}: the dataset-controller may not read Secrets in this namespace \
                     (grant it with the chart's datasetController.checkSecrets, or turn --check-secrets off)",
                    r.name
                ),
            }),
            Some(SecretView::Keys(keys)) if !keys.contains(&r.key) => problems.push(Problem {
                field: format!("{field}.valueFrom.secretKeyRef.key"),
                message: format!("Secret {:?} has no key {:?}", r.name, r.key),
            }),
            Some(SecretView::Keys(_)) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::Mount;
    use ferrofluid_api::common::{EncryptOptionSource, SecretKeySelector};

    fn spec(mount_point: &str, secret: &str, key: &str) -> DatasetSpec {
        DatasetSpec {
            mounts: vec![Mount {
                name: "test".into(),
                mount_point: mount_point.into(),
                encrypt_options: vec![EncryptOption {
                    name: "metaurl".into(),
                    value_from: EncryptOptionSource {
                        secret_key_ref: SecretKeySelector { name: secret.into(), key: key.into() },
                    },
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn secrets() -> SecretKeys {
        BTreeMap::from([("jfs".to_string(), SecretView::Keys(BTreeSet::from(["metaurl".to_string()])))])
    }

    fn validate_ab(spec: &DatasetSpec, secrets: Option<&SecretKeys>) -> Vec<Problem> {
        validate(spec, "ns", "d", secrets)
    }

    #[test]
    fn references_are_checked_where_the_schema_cannot() {
        let mut s = spec("dataset://a/src", "jfs", "metaurl");
        s.mounts[0].encrypt_options.clear();
        assert!(validate_ab(&s, Some(&secrets())).is_empty());
        s.mounts[0].mount_point = "dataset://ns/d".into();
        let p = validate_ab(&s, None);
        assert_eq!(
            (p[0].field.as_str(), p[0].message.as_str()),
            ("spec.mounts[0].mountPoint", "a dataset cannot refer to itself")
        );
    }

    #[test]
    fn valid_dataset_has_no_problems() {
        assert!(validate_ab(&spec("juicefs:///demo", "jfs", "metaurl"), Some(&secrets())).is_empty());
        assert_eq!(referenced_secrets(&spec("juicefs:///", "jfs", "metaurl")), BTreeSet::from(["jfs".to_string()]));
    }

    #[test]
    fn problems_name_the_field() {
        let p = validate_ab(&spec("alluxio://x/y", "jfs", "metaurl"), Some(&secrets()));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "spec.mounts[0].mountPoint");
        let p = validate_ab(&spec("juicefs:///", "nope", "metaurl"), Some(&secrets()));
        assert_eq!(p[0].field, "spec.mounts[0].encryptOptions[0].valueFrom.secretKeyRef.name");
        let p = validate_ab(&spec("juicefs:///", "jfs", "url"), Some(&secrets()));
        assert_eq!(p[0].field, "spec.mounts[0].encryptOptions[0].valueFrom.secretKeyRef.key");
        assert!(p[0].to_string().contains("has no key \"url\""));
        let forbidden = BTreeMap::from([("jfs".to_string(), SecretView::Forbidden)]);
        let p = validate_ab(&spec("juicefs:///", "jfs", "metaurl"), Some(&forbidden));
        assert!(p[0].message.contains("may not read Secrets"), "{}", p[0]);
    }

    #[test]
    fn without_secret_checks_only_the_spec_counts() {
        assert!(validate_ab(&spec("juicefs:///", "nope", "metaurl"), None).is_empty());
        assert_eq!(validate_ab(&spec("s3://b/x", "nope", "metaurl"), None).len(), 1);
    }
}
