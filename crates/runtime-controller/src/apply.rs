//! Writes with this controller's field manager, guarded by the ownership mark (`owned.rs`): an object
//! is created only where none exists, changed only while it carries this runtime's mark (with its UID
//! as precondition), and deleted only then. Status goes through the status subresource.

use crate::context::MANAGER;
use crate::error::{Error, Step};
use crate::in_sync::in_sync;
use crate::owned::{Ownership, ownership};
use ferrofluid_service::delete::{self, Guarded};
use ferrofluid_service::ssa;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// A same-name object that is not this runtime's: reported, never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `PersistentVolumeClaim ns/name`.
    pub object: String,
    pub why: &'static str,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} already exists and {}", self.object, self.why)
    }
}

/// What exists under the name an object of this runtime would have.
#[derive(Debug, Clone)]
pub enum Current<K> {
    Absent,
    Ours(K),
}

impl<K> Current<K> {
    pub fn as_ref(&self) -> Option<&K> {
        match self {
            Current::Absent => None,
            Current::Ours(k) => Some(k),
        }
    }
}

fn describe<K: Resource<DynamicType = ()>>(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    }
}

/// What exists under the name `name`, and whether this runtime (`uid`) may write it: the cached object,
/// or — with `read_on_miss`, for kinds whose cache holds only ferrofluid's objects — a read when the
/// cache has none (a same-name object of someone else is only seen that way). The caches of the kinds
/// a runtime creates on its way to Bound hold every object of the kind in scope (others' reduced to
/// their metadata), so there a miss means absent and costs no request.
pub async fn current<K>(
    api: &Api<K>,
    cached: Option<Arc<K>>,
    read_on_miss: bool,
    namespace: Option<&str>,
    name: &str,
    uid: &str,
    step: &'static str,
) -> Result<Result<Current<K>, Conflict>, Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let found = match cached {
        Some(obj) => Some(Arc::unwrap_or_clone(obj)),
        None if read_on_miss => api.get_opt(name).await.step(step)?,
        None => None,
    };
    Ok(match found {
        None => Ok(Current::Absent),
        Some(obj) => match ownership(obj.meta(), uid) {
            Ownership::Ours => Ok(Current::Ours(obj)),
            Ownership::Foreign(why) => Err(Conflict { object: describe::<K>(namespace, name), why }),
        },
    })
}

fn body<K>(obj: &K, uid: Option<&str>, step: &'static str) -> Result<serde_json::Value, Error>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let mut body = ssa::body::<K>(serde_json::to_value(obj).map_err(|e| Error::Internal(format!("{step}: {e}")))?);
    if let Some(uid) = uid {
        // A patch naming a UID fails unless the stored object has exactly that UID: a replacement made
        // by someone else in the meantime is never overwritten.
        body["metadata"]["uid"] = uid.into();
    }
    Ok(body)
}

/// Makes the object `desired` (see [`fingerprinted`](crate::in_sync::fingerprinted)) true, given what [`current`] found: nothing when
/// it already is (no request at rest); a server-side apply that is not forced when it is absent — so a
/// same-name object that appeared meanwhile makes it fail rather than be taken over; a forced apply
/// pinned to the stored UID when it is ours. Returns the object as it now is.
pub async fn object<K>(api: &Api<K>, desired: &K, current: &Current<K>, step: &'static str) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let (params, uid) = match current {
        Current::Ours(live) if in_sync(live, desired) => return Ok(live.clone()),
        Current::Absent => (PatchParams::apply(MANAGER), None),
        Current::Ours(existing) => (PatchParams::apply(MANAGER).force(), existing.meta().uid.as_deref()),
    };
    Ok(api.patch(&name, &params, &Patch::Apply(body(desired, uid, step)?)).await.step(step)?)
}

/// Applies only `status` of the named object through the status subresource.
pub async fn status<K, S>(api: &Api<K>, name: &str, status: &S, step: &'static str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    S: Serialize,
{
    ssa::status(api, MANAGER, name, status).await.step(step)?;
    Ok(())
}

/// What a guarded delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Nothing of that name exists.
    Gone,
    /// Ours, and deleted or still being deleted (finalizers, a pod still using a PVC).
    Deleting,
    /// Exists but is not ours: left alone.
    NotOurs,
}

/// Deletes the cached object if it carries this runtime's mark, with its UID as precondition.
pub async fn delete_ours<K>(
    api: &Api<K>,
    cached: Option<Arc<K>>,
    uid: &str,
    step: &'static str,
) -> Result<Deletion, Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let Some(obj) = cached else { return Ok(Deletion::Gone) };
    if ownership(obj.meta(), uid) != Ownership::Ours {
        return Ok(Deletion::NotOurs);
    }
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Deletion::Deleting);
    }
    let name = obj.meta().name.clone().unwrap_or_default();
    Ok(match delete::guarded(api, &name, obj.meta().uid.clone()).await.step(step)? {
        Guarded::Deleting => Deletion::Deleting,
        Guarded::Gone => Deletion::Gone,
        // The precondition failed: the object was replaced by another one since it was cached.
        Guarded::Replaced => Deletion::NotOurs,
    })
}
