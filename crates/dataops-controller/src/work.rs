//! What each kind runs: its units of work, how many at a time, and their Jobs — built by the pure
//! builders from what the caches (and, for a DataLoad, the dataset's PV) say.

use crate::migrate_job::{self, MigrateInputs, Side};
use crate::op::Op;
use crate::plan::{Unit, Why, why};
use crate::process_job;
use crate::reconcile::{Error, Shared};
use crate::warmup_job::{self, JobInputs};
use ferrofluid_api::datamigrate::{DataToMigrate, DatasetToMigrate};
use ferrofluid_api::dataset::parse_mount_point;
use ferrofluid_api::juicefs_runtime::fuse_image;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{DataLoad, DataMigrate, DataProcess};
use ferrofluid_service::error::Step as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::ResourceExt;
use kube::api::Api;
use std::future::Future;
use std::time::Duration;

pub trait Work: Op {
    /// The units if it starts now, and why there are none when there are none.
    fn units(&self, sh: &Shared) -> (Vec<Unit>, Why);
    fn max_in_flight(&self, sh: &Shared) -> usize;
    /// The Jobs of `units`.
    fn jobs_for(&self, sh: &Shared, units: &[String]) -> impl Future<Output = Result<Vec<Job>, Error>> + Send;
}

fn ns_of<K: Op>(op: &K) -> String {
    op.namespace().unwrap_or_default()
}

/// Nodes where the dataset's workers cache (`fluid.io/s-<ns>-<name>=true`), sorted.
fn cache_nodes(sh: &Shared, key: &DatasetKey) -> Vec<String> {
    let label = key.worker_node_label();
    let mut out: Vec<String> = sh
        .nodes
        .state()
        .iter()
        .filter(|n| n.labels().get(&label).map(String::as_str) == Some(keys::LABEL_TRUE))
        .map(|n| n.name_any())
        .collect();
    out.sort();
    out
}

fn no_runtime(name: &str) -> Error {
    Error::waiting("input", format!("runtime {name} not found"), Duration::from_secs(5))
}

impl Work for DataLoad {
    fn units(&self, sh: &Shared) -> (Vec<Unit>, Why) {
        let key = DatasetKey::new(ns_of(self), &self.spec.dataset.name);
        let units = cache_nodes(sh, &key).into_iter().map(|name| Unit { name, parts: sh.parts }).collect();
        let none = why(
            crate::plan::NO_CACHE_NODES,
            format!("dataset {:?} has no cache node yet: no worker of its runtime runs (spec.replicas)", key.name),
        );
        (units, none)
    }

    fn max_in_flight(&self, sh: &Shared) -> usize {
        sh.max_nodes_in_flight
    }

    async fn jobs_for(&self, sh: &Shared, units: &[String]) -> Result<Vec<Job>, Error> {
        let ns = ns_of(self);
        let key = DatasetKey::new(&ns, &self.spec.dataset.name);
        let runtime = sh.runtime(&ns, &key.name).ok_or_else(|| no_runtime(&key.name))?;
        let pvs: Api<PersistentVolume> = Api::all(sh.client.clone());
        let pv = pvs.get(&key.pv_name()).await.step("read the dataset's persistent volume")?;
        let fluid_path = pv
            .spec
            .as_ref()
            .and_then(|s| s.csi.as_ref())
            .and_then(|c| c.volume_attributes.as_ref())
            .and_then(|a| a.get(keys::ATTR_FLUID_PATH))
            .cloned()
            .ok_or_else(|| {
                Error::Internal(format!("persistent volume {} has no {}", key.pv_name(), keys::ATTR_FLUID_PATH))
            })?;
        let inputs = JobInputs {
            load: self,
            runtime: &runtime,
            default_image: &sh.juicefs_image,
            key: &key,
            fluid_path: &fluid_path,
            parts: sh.parts,
        };
        Ok(units.iter().map(|node| warmup_job::build(&inputs, node)).collect())
    }
}

/// A migration side as juicefs sync takes it: a dataset of `ns` (its metadata URL's Secret and its
/// directory in the file system) or the external storage as given.
fn side(sh: &Shared, ns: &str, which: &str, s: &DataToMigrate) -> Result<Side, Error> {
    if let Some(e) = &s.external_storage {
        return Ok(Side::External { uri: e.uri.clone(), secrets: e.encrypt_options.clone() });
    }
    let d: &DatasetToMigrate = s.dataset.as_ref().ok_or_else(|| Error::Internal(format!("spec.{which}: no side")))?;
    let ds = sh.dataset(ns, &d.name).ok_or_else(|| {
        Error::waiting("input", format!("spec.{which}.dataset: {} not found", d.name), Duration::from_secs(5))
    })?;
    let meta = ds.spec.metaurl_secret().cloned().ok_or_else(|| {
        Error::waiting("input", format!("dataset {} names no metaurl Secret", d.name), Duration::from_secs(30))
    })?;
    let mount_point = ds.spec.mounts.first().map(|m| m.mount_point.clone()).unwrap_or_default();
    let subdir = parse_mount_point(&mount_point)
        .map_err(|e| Error::waiting("input", format!("dataset {}: {e}", d.name), Duration::from_secs(30)))?;
    Ok(Side::Dataset { meta, dir: migrate_job::fs_dir(subdir.as_deref(), d.path.as_deref()) })
}

impl Work for DataMigrate {
    fn units(&self, _: &Shared) -> (Vec<Unit>, Why) {
        (migrate_job::units(self), why("InvalidSpec", "spec.parallelism: no range to copy"))
    }

    fn max_in_flight(&self, _: &Shared) -> usize {
        usize::try_from(migrate_job::parallelism(self)).unwrap_or(1)
    }

    async fn jobs_for(&self, sh: &Shared, units: &[String]) -> Result<Vec<Job>, Error> {
        let ns = ns_of(self);
        let (ds_name, _) = self.dataset();
        let image = match &self.spec.image {
            Some(i) if !i.is_empty() => match &self.spec.image_tag {
                Some(t) if !t.is_empty() => format!("{i}:{t}"),
                _ => i.clone(),
            },
            _ => fuse_image(&sh.runtime(&ns, ds_name).ok_or_else(|| no_runtime(ds_name))?.spec, &sh.juicefs_image),
        };
        let inputs = MigrateInputs {
            op: self,
            image,
            from: side(sh, &ns, "from", &self.spec.from)?,
            to: side(sh, &ns, "to", &self.spec.to)?,
            cache_node_label: DatasetKey::new(&ns, ds_name).worker_node_label(),
        };
        Ok(units.iter().map(|u| migrate_job::build(&inputs, u)).collect())
    }
}

impl Work for DataProcess {
    fn units(&self, _: &Shared) -> (Vec<Unit>, Why) {
        (process_job::units(), why("InvalidSpec", "spec.processor: nothing to run"))
    }

    fn max_in_flight(&self, _: &Shared) -> usize {
        1
    }

    async fn jobs_for(&self, _: &Shared, _: &[String]) -> Result<Vec<Job>, Error> {
        Ok(vec![process_job::build(self)])
    }
}
