//! Deleting an object a controller read, and only that one: its UID is the precondition, so an object
//! recreated under the same name since it was read (someone else's, perhaps) is never deleted.

use kube::Resource;
use kube::api::{Api, DeleteParams, Preconditions};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// What a UID-guarded delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// Deleted, or being deleted (finalizers still to run).
    Deleting,
    /// Nothing of that name exists.
    Gone,
    /// The name now belongs to another object (the precondition failed): left alone.
    Replaced,
}

/// Deletes `name` if it still is the object with `uid`, propagating in the background.
pub async fn guarded<K>(api: &Api<K>, name: &str, uid: Option<String>) -> kube::Result<Guarded>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid, resource_version: None }),
        ..DeleteParams::background()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Guarded::Deleting),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Guarded::Gone),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Guarded::Replaced),
        Err(e) => Err(e),
    }
}
