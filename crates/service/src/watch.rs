//! Watch caches and the change streams that wake reconciles, shared by the controllers: a reflector
//! per kind whose events pass only when a fingerprint of the fields that matter changed (deletions
//! always pass), so status writes — a controller's own or another component's — wake nothing.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;

/// The objects of a watch whose fingerprint changed, and every deleted one. (kube's predicate filter
/// would also drop a deletion whose fingerprint equals the last update's.)
pub fn changes<K, S>(events: S, fingerprint: fn(&K) -> u64) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut seen: HashMap<String, u64> = HashMap::new();
    let key = |k: &K| {
        let m = k.meta();
        m.uid.clone().unwrap_or_else(|| format!("{}/{}", m.namespace.as_deref().unwrap_or(""), k.name_any()))
    };
    events.flat_map(move |event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Err(e) => vec![Err(e)],
            Ok(watcher::Event::Apply(k) | watcher::Event::InitApply(k)) => {
                let print = fingerprint(&k);
                if seen.insert(key(&k), print) == Some(print) { vec![] } else { vec![Ok(k)] }
            }
            Ok(watcher::Event::Delete(k)) => {
                seen.remove(&key(&k));
                vec![Ok(k)]
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => vec![],
        };
        futures::stream::iter(out)
    })
}

/// A reflector over `api`: its cache (objects trimmed by `trim`), and its change stream filtered by
/// `fingerprint`. The cache is only kept current while the stream is polled.
pub fn reflect<K>(
    api: Api<K>,
    cfg: watcher::Config,
    fingerprint: fn(&K) -> u64,
    trim: fn(&mut K),
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, cfg).default_backoff().modify(trim);
    (reader, changes(reflector::reflector(writer, events), fingerprint).boxed())
}

/// Drops what the cache does not need: managed fields.
pub fn no_managed_fields<K: Resource>(k: &mut K) {
    k.meta_mut().managed_fields = None;
}
