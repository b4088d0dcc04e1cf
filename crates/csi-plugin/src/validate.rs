//! Request validation, pure: required fields, the volume capability, and the volume attributes the
//! runtime-controller writes on each PV (`ferrofluid_api::keys::ATTR_*`).

use crate::error::{CsiError, Result};
use crate::proto::VolumeCapability;
use crate::proto::volume_capability::{AccessType, access_mode::Mode};
use ferrofluid_api::keys::{
    ATTR_FLUID_PATH, ATTR_LEGACY_NODE_SELECTOR_KEY, ATTR_MOUNT_TYPE, ATTR_NODE_SELECTOR_KEY, ATTR_RUNTIME_NAME,
    ATTR_RUNTIME_NAMESPACE, DatasetKey, FUSE_LABEL_NAME_PREFIX, LABEL_PREFIX, is_fuse_node_label,
};
use ferrofluid_api::naming::is_dns1123_label;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The runtime (and dataset: they share namespace and name) a volume belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRef {
    pub namespace: String,
    pub name: String,
}

/// What the driver needs from a volume's attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeAttrs {
    pub fluid_path: String,
    pub mount_type: Option<String>,
    pub runtime: RuntimeRef,
    /// Explicit FUSE node-selector label key, when the PV names one.
    pub label_key: Option<String>,
}

impl VolumeAttrs {
    /// The node label that makes the FUSE DaemonSet schedule here: the explicit key, else derived from
    /// the runtime. Only FUSE label keys (`fluid.io/f-…`) are accepted, so a PV cannot make the driver
    /// set any other label on its Node.
    pub fn fuse_label_key(&self) -> Result<String> {
        let key = match &self.label_key {
            Some(k) => k.clone(),
            None => DatasetKey::new(&self.runtime.namespace, &self.runtime.name).fuse_node_label(),
        };
        if is_fuse_node_label(&key) {
            Ok(key)
        } else {
            Err(CsiError::InvalidArgument(format!(
                "{ATTR_NODE_SELECTOR_KEY} {key:?} is not a FUSE node label key ({LABEL_PREFIX}{FUSE_LABEL_NAME_PREFIX}…)"
            )))
        }
    }

    /// The filesystem type a healthy FUSE mount of this volume has: `fuse.juicefs` for JuiceFS, any
    /// FUSE type otherwise.
    pub fn expected_fs_type(&self) -> Option<&'static str> {
        match self.mount_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case(ferrofluid_api::keys::MOUNT_TYPE_JUICEFS) => Some("fuse.juicefs"),
            _ => None,
        }
    }
}

/// A required string field.
pub fn required<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    if value.is_empty() { Err(CsiError::InvalidArgument(format!("{what} is required"))) } else { Ok(value) }
}

/// Parses the attributes. `fluid_path`, `runtime_namespace` and `runtime_name` are required; the
/// runtime's namespace and name must be DNS-1123 labels (Kubernetes names that are one path component
/// each, since they make up the expected `fluid_path`).
pub fn parse_attrs(ctx: &HashMap<String, String>) -> Result<VolumeAttrs> {
    let get = |k: &str| ctx.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
    let need = |k: &str| get(k).ok_or_else(|| CsiError::InvalidArgument(format!("volume context lacks {k}")));
    let fluid_path = need(ATTR_FLUID_PATH)?;
    let namespace = need(ATTR_RUNTIME_NAMESPACE)?;
    let name = need(ATTR_RUNTIME_NAME)?;
    for (attr, value) in [(ATTR_RUNTIME_NAMESPACE, &namespace), (ATTR_RUNTIME_NAME, &name)] {
        if !is_dns1123_label(value) {
            return Err(CsiError::InvalidArgument(format!(
                "volume context {attr} {value:?} is not a DNS-1123 label (lowercase letters, digits and '-')"
            )));
        }
    }
    Ok(VolumeAttrs {
        fluid_path,
        mount_type: get(ATTR_MOUNT_TYPE),
        runtime: RuntimeRef { namespace, name },
        label_key: get(ATTR_NODE_SELECTOR_KEY).or_else(|| get(ATTR_LEGACY_NODE_SELECTOR_KEY)),
    })
}

/// Validates a volume capability (filesystem access, a known access mode); returns whether the access
/// mode is read-only.
pub fn capability(cap: Option<&VolumeCapability>) -> Result<bool> {
    let cap = cap.ok_or_else(|| CsiError::InvalidArgument("volume capability is required".into()))?;
    match cap.access_type {
        Some(AccessType::Mount(_)) => {}
        Some(AccessType::Block(_)) => {
            return Err(CsiError::InvalidArgument("block access is not supported: volumes are filesystems".into()));
        }
        None => return Err(CsiError::InvalidArgument("volume capability lacks an access type".into())),
    }
    let mode = cap.access_mode.as_ref().map(|m| m.mode()).unwrap_or(Mode::Unknown);
    match mode {
        Mode::Unknown => Err(CsiError::InvalidArgument("volume capability lacks an access mode".into())),
        Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly => Ok(true),
        Mode::SingleNodeWriter
        | Mode::MultiNodeSingleWriter
        | Mode::MultiNodeMultiWriter
        | Mode::SingleNodeSingleWriter
        | Mode::SingleNodeMultiWriter => Ok(false),
    }
}

/// Whether every capability in a list is supported (for ValidateVolumeCapabilities and CreateVolume).
pub fn capabilities(caps: &[VolumeCapability]) -> Result<()> {
    if caps.is_empty() {
        return Err(CsiError::InvalidArgument("volume capabilities are required".into()));
    }
    caps.iter().try_for_each(|c| capability(Some(c)).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::volume_capability::{AccessMode, BlockVolume, MountVolume};

    fn cap(mode: Mode, block: bool) -> VolumeCapability {
        VolumeCapability {
            access_mode: Some(AccessMode { mode: mode as i32 }),
            access_type: Some(if block {
                AccessType::Block(BlockVolume {})
            } else {
                AccessType::Mount(MountVolume::default())
            }),
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn capabilities_and_read_only_modes() {
        assert!(matches!(capability(None), Err(CsiError::InvalidArgument(_))));
        assert!(matches!(capability(Some(&cap(Mode::SingleNodeWriter, true))), Err(CsiError::InvalidArgument(_))));
        assert!(matches!(capability(Some(&cap(Mode::Unknown, false))), Err(CsiError::InvalidArgument(_))));
        assert!(!capability(Some(&cap(Mode::MultiNodeMultiWriter, false))).expect("ok"));
        assert!(capability(Some(&cap(Mode::MultiNodeReaderOnly, false))).expect("ok"));
        assert!(capability(Some(&cap(Mode::SingleNodeReaderOnly, false))).expect("ok"));
        let no_type = VolumeCapability { access_mode: Some(AccessMode { mode: 1 }), access_type: None };
        assert!(capability(Some(&no_type)).is_err());
        assert!(capabilities(&[]).is_err());
        assert!(capabilities(&[cap(Mode::SingleNodeWriter, false), cap(Mode::SingleNodeWriter, true)]).is_err());
    }

    #[test]
    fn seed_attributes() {
        let a = parse_attrs(&ctx(&[
            ("fluid_path", "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse"),
            ("mount_type", "JuiceFS"),
            ("runtime_namespace", "default"),
            ("runtime_name", "jfsdemo"),
        ]))
        .expect("valid");
        assert_eq!(a.fuse_label_key().expect("key"), "fluid.io/f-default-jfsdemo");
        assert_eq!(a.expected_fs_type(), Some("fuse.juicefs"));
    }

    const SEED: [(&str, &str); 3] = [
        ("fluid_path", "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse"),
        ("runtime_namespace", "default"),
        ("runtime_name", "jfsdemo"),
    ];

    fn seed_with(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut c = ctx(&SEED);
        c.extend(ctx(extra));
        c
    }

    #[test]
    fn attribute_errors() {
        // Each required attribute, missing or blank, is named in the refusal.
        for missing in ["fluid_path", "runtime_namespace", "runtime_name"] {
            for value in [None, Some(" ")] {
                let mut c = ctx(&SEED);
                match value {
                    None => c.remove(missing),
                    Some(v) => c.insert(missing.to_string(), v.to_string()),
                };
                let err = parse_attrs(&c).expect_err(missing);
                assert!(matches!(&err, CsiError::InvalidArgument(m) if m.contains(missing)), "{missing}: {err}");
            }
        }
        // Namespace and name become path components of the expected fluid_path: one component each.
        for (attr, bad) in [
            ("runtime_namespace", ".."),
            ("runtime_name", "."),
            ("runtime_name", "jfsdemo/juicefs-fuse"),
            ("runtime_namespace", "Default"),
            ("runtime_name", "a.b"),
        ] {
            let err = parse_attrs(&seed_with(&[(attr, bad)])).expect_err(bad);
            assert!(matches!(&err, CsiError::InvalidArgument(m) if m.contains(attr)), "{attr}={bad}: {err}");
        }
        let plain = parse_attrs(&ctx(&SEED)).expect("valid");
        assert_eq!(plain.expected_fs_type(), None);
        assert_eq!(plain.runtime, RuntimeRef { namespace: "default".into(), name: "jfsdemo".into() });
        let explicit = parse_attrs(&seed_with(&[("mount_pod_node_selector_key", "fluid.io/f-ns-x")])).expect("valid");
        assert_eq!(explicit.fuse_label_key().expect("key"), "fluid.io/f-ns-x");
        let legacy = parse_attrs(&seed_with(&[("fuse_node_selector_key", "fluid.io/f-ns-y")])).expect("valid");
        assert_eq!(legacy.fuse_label_key().expect("key"), "fluid.io/f-ns-y", "PVs of earlier versions");
        // Only FUSE labels: not a foreign key, and not another ferrofluid label either.
        for bad in [
            "node-role.kubernetes.io/master",
            "fluid.io/",
            "fluid.io/f-",
            "fluid.io/bad key",
            "fluid.io/s-default-jfsdemo",
            "fluid.io/dataset-num",
            "fluid.io/s-h-juicefs-t-default-jfsdemo",
        ] {
            let a = parse_attrs(&seed_with(&[("mount_pod_node_selector_key", bad)])).expect("parses");
            let err = a.fuse_label_key().expect_err(bad);
            assert!(
                matches!(&err, CsiError::InvalidArgument(m) if m.contains("mount_pod_node_selector_key")),
                "{bad}: {err}"
            );
        }
        assert!(required("", "volume id").is_err());
        assert_eq!(required("v", "volume id").expect("ok"), "v");
    }
}
