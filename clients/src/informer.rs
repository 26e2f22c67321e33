//! Shared informers: one kube-rs `watcher` per kind feeding a kube-rs reflector `Store`,
//! secondary indexes, and change notifications to every controller that registered for them.
//!
//! kube-rs' `Controller` gives each controller its own watches and tells it only *which*
//! object changed, never about deletions after the fact. The controller-manager runs several
//! controllers over the same kinds (pods are read by the ReplicaSet, node-lifecycle and
//! garbage-collector controllers), and the garbage collector and the Deployment controller
//! must react to deletions, so this module does what client-go's shared informers do, on
//! kube-rs' building blocks: one watch per kind, one cache read by all, and for every change
//! the old and new object (a deletion carries the last state seen).
//!
//! Handlers run on the informer's task and must be quick (they enqueue keys into work
//! queues). A relist (the watcher restarted after an expired resourceVersion) is diffed
//! against the cache: objects that vanished are reported deleted, the others as applied.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{store::Writer, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// A change to one object, as handlers see it.
pub enum Change<K> {
    /// Created, updated, or seen again on a relist (`old` is the cached state before).
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Deleted; the last state seen.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied { old, new } => Change::Applied {
                old: old.clone(),
                new: new.clone(),
            },
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

impl<K> Change<K> {
    /// The object as it is now (or was last, for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(o) => o,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;
type IndexFn<K> = Box<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// Objects a kube-rs watcher and store can handle.
pub trait Watched:
    Resource<DynamicType: Clone + Eq + Hash + Send + Sync>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType: Clone + Eq + Hash + Send + Sync>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The read side of an informer: the cache, its indexes, and whether it has listed.
pub struct Cache<K: Watched> {
    store: Store<K>,
    dyntype: K::DynamicType,
    indexes: Arc<RwLock<HashMap<&'static str, Index<K>>>>,
    synced: watch::Receiver<bool>,
}

type Index<K> = HashMap<String, HashSet<ObjectRef<K>>>;

impl<K: Watched> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            dyntype: self.dyntype.clone(),
            indexes: self.indexes.clone(),
            synced: self.synced.clone(),
        }
    }
}

impl<K: Watched> Cache<K> {
    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// The cached object named `name` in `namespace` ("" for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut r = ObjectRef::new_with(name, self.dyntype.clone());
        if !namespace.is_empty() {
            r = r.within(namespace);
        }
        self.store.get(&r)
    }

    /// Objects whose index `index` yields `value`.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let refs: Vec<ObjectRef<K>> = self
            .indexes
            .read()
            .get(index)
            .and_then(|i| i.get(value))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        refs.iter().filter_map(|r| self.store.get(r)).collect()
    }

    /// Whether the first list has been applied.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first list has been applied (false if the informer stopped first).
    pub async fn wait_synced(&self) -> bool {
        let mut rx = self.synced.clone();
        let synced = rx.wait_for(|s| *s).await.is_ok();
        synced
    }
}

/// An informer being set up: register indexes and handlers, then `run` it.
pub struct Informer<K: Watched> {
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    indexers: Vec<(&'static str, IndexFn<K>)>,
    handlers: Vec<Handler<K>>,
    cache: Cache<K>,
    synced_tx: watch::Sender<bool>,
}

impl<K: Watched> Informer<K>
where
    K::DynamicType: Default,
{
    pub fn new(api: Api<K>, config: watcher::Config) -> Informer<K> {
        Self::new_with(api, config, Default::default())
    }
}

impl<K: Watched> Informer<K> {
    /// An informer for a kind known only at run time (`DynamicObject` with its `ApiResource`).
    pub fn new_with(api: Api<K>, config: watcher::Config, dyntype: K::DynamicType) -> Informer<K> {
        let writer = Writer::<K>::new(dyntype.clone());
        let (synced_tx, synced) = watch::channel(false);
        let cache = Cache {
            store: writer.as_reader(),
            dyntype,
            indexes: Arc::new(RwLock::new(HashMap::new())),
            synced,
        };
        Informer {
            api,
            config,
            writer,
            indexers: Vec::new(),
            handlers: Vec::new(),
            cache,
            synced_tx,
        }
    }

    /// The cache (filled once `run` is running).
    pub fn cache(&self) -> Cache<K> {
        self.cache.clone()
    }

    /// Maintains an index: `f` gives the values an object is found under.
    pub fn index(
        &mut self,
        name: &'static str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        self.cache.indexes.write().insert(name, HashMap::new());
        self.indexers.push((name, Box::new(f)));
    }

    /// Calls `f` for every change, on the informer's task.
    pub fn on_change(&mut self, f: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(f));
    }

    /// Watches until `shutdown` flips to true (or its sender is dropped).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let kind = K::kind(&self.cache.dyntype).to_string();
        let stream = watcher::watcher(self.api.clone(), self.config.clone()).default_backoff();
        futures::pin_mut!(stream);
        let mut relisted: Vec<ObjectRef<K>> = Vec::new();
        let mut errors = 0u64;
        loop {
            let event = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                e = stream.next() => e,
            };
            match event {
                Some(Ok(ev)) => {
                    errors = 0;
                    self.apply(ev, &mut relisted);
                }
                Some(Err(e)) => {
                    errors += 1;
                    // The stream backs off by itself; say so once per streak, then quietly.
                    if errors == 1 || errors.is_power_of_two() {
                        tracing::warn!(%kind, error = %e, "watch failed; retrying");
                    }
                }
                None => break,
            }
        }
    }

    fn key(&self, obj: &K) -> ObjectRef<K> {
        ObjectRef::from_obj_with(obj, self.cache.dyntype.clone())
    }

    fn apply(&mut self, ev: Event<K>, relisted: &mut Vec<ObjectRef<K>>) {
        match ev {
            Event::Apply(obj) => {
                let key = self.key(&obj);
                let old = self.cache.store.get(&key);
                let ev = Event::Apply(obj);
                self.writer.apply_watcher_event(&ev);
                if let Some(new) = self.cache.store.get(&key) {
                    self.reindex(&key, old.as_deref(), Some(&new));
                    self.notify(&Change::Applied { old, new });
                }
            }
            Event::Delete(obj) => {
                let key = self.key(&obj);
                let old = self.cache.store.get(&key);
                let ev = Event::Delete(obj);
                self.writer.apply_watcher_event(&ev);
                let Event::Delete(obj) = ev else {
                    unreachable!("constructed above")
                };
                self.reindex(&key, old.as_deref(), None);
                self.notify(&Change::Deleted(Arc::new(obj)));
            }
            Event::Init => {
                relisted.clear();
                self.writer.apply_watcher_event(&Event::Init);
            }
            Event::InitApply(obj) => {
                relisted.push(self.key(&obj));
                self.writer.apply_watcher_event(&Event::InitApply(obj));
            }
            Event::InitDone => {
                let mut before: HashMap<ObjectRef<K>, Arc<K>> = self
                    .cache
                    .store
                    .state()
                    .into_iter()
                    .map(|o| (self.key(&o), o))
                    .collect();
                self.writer.apply_watcher_event(&Event::InitDone);
                for key in std::mem::take(relisted) {
                    let old = before.remove(&key);
                    if let Some(new) = self.cache.store.get(&key) {
                        self.reindex(&key, old.as_deref(), Some(&new));
                        self.notify(&Change::Applied { old, new });
                    }
                }
                for (key, old) in before {
                    self.reindex(&key, Some(&old), None);
                    self.notify(&Change::Deleted(old));
                }
                self.synced_tx.send_replace(true);
            }
        }
    }

    fn reindex(&self, key: &ObjectRef<K>, old: Option<&K>, new: Option<&K>) {
        if self.indexers.is_empty() {
            return;
        }
        let mut indexes = self.cache.indexes.write();
        for (name, f) in &self.indexers {
            let Some(index) = indexes.get_mut(name) else {
                continue;
            };
            let before = old.map(f).unwrap_or_default();
            let after = new.map(f).unwrap_or_default();
            for v in before.iter().filter(|v| !after.contains(v)) {
                if let Some(set) = index.get_mut(v) {
                    set.remove(key);
                    if set.is_empty() {
                        index.remove(v);
                    }
                }
            }
            for v in after {
                index.entry(v).or_default().insert(key.clone());
            }
        }
    }

    fn notify(&self, change: &Change<K>) {
        for h in &self.handlers {
            h(change);
        }
    }
}

/// The namespace index every namespaced informer can use.
pub fn by_namespace<K: Resource>(obj: &K) -> Vec<String> {
    vec![obj.meta().namespace.clone().unwrap_or_default()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Mutex;

    fn pod(name: &str, node: &str, rv: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
            "spec": {"nodeName": node, "containers": []},
        }))
        .unwrap()
    }

    fn informer() -> (Informer<Pod>, Arc<Mutex<Vec<String>>>) {
        // The Api is never called: the test feeds events to `apply` directly.
        let client = kube::Client::new(
            tower::service_fn(|_req: http::Request<kube::client::Body>| async {
                Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
                    "no server in unit tests",
                ))
            }),
            "default",
        );
        let mut inf = Informer::new(Api::<Pod>::all(client), watcher::Config::default());
        inf.index("node", |p: &Pod| {
            vec![p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default()]
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.on_change(move |c| {
            let line = match c {
                Change::Applied { old, new } => format!(
                    "applied {} old={}",
                    new.metadata.name.clone().unwrap(),
                    old.as_ref()
                        .and_then(|o| o.metadata.resource_version.clone())
                        .unwrap_or_default()
                ),
                Change::Deleted(o) => format!("deleted {}", o.metadata.name.clone().unwrap()),
            };
            s.lock().unwrap().push(line);
        });
        (inf, seen)
    }

    #[tokio::test]
    async fn relist_reports_vanished_objects_as_deleted_and_keeps_indexes() {
        let (mut inf, seen) = informer();
        let cache = inf.cache();
        let mut re = Vec::new();
        inf.apply(Event::Init, &mut re);
        inf.apply(Event::InitApply(pod("a", "n1", "1")), &mut re);
        inf.apply(Event::InitApply(pod("b", "n1", "2")), &mut re);
        inf.apply(Event::InitDone, &mut re);
        assert!(cache.is_synced());
        assert_eq!(cache.by_index("node", "n1").len(), 2);
        inf.apply(Event::Apply(pod("a", "n2", "3")), &mut re);
        assert_eq!(cache.by_index("node", "n1").len(), 1);
        assert_eq!(cache.by_index("node", "n2").len(), 1);
        // A relist in which b is gone.
        inf.apply(Event::Init, &mut re);
        inf.apply(Event::InitApply(pod("a", "n2", "4")), &mut re);
        inf.apply(Event::InitDone, &mut re);
        assert!(cache.get("ns", "b").is_none());
        assert!(cache.by_index("node", "n1").is_empty());
        inf.apply(Event::Delete(pod("a", "n2", "5")), &mut re);
        assert!(cache.list().is_empty());
        assert!(cache.by_index("node", "n2").is_empty());
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                "applied a old=",
                "applied b old=",
                "applied a old=1",
                "applied a old=3",
                "deleted b",
                "deleted a",
            ]
        );
    }
}
