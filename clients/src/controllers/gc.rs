//! The garbage collector: cascading deletion through ownerReferences, as Kubernetes' does it.
//!
//! Every kind the apiserver serves (found by discovery; events excepted, as in Kubernetes) is
//! watched and reduced to a graph of owners and dependents. Then:
//!
//! - an object none of whose owners exists any more is deleted (background deletion: the
//!   owner went first); references to owners that are gone are removed when others remain;
//! - an owner deleted with `propagationPolicy=Foreground` carries the `foregroundDeletion`
//!   finalizer: its dependents are deleted (in the foreground too if they have dependents
//!   of their own), and once no dependent with `blockOwnerDeletion` remains the finalizer is
//!   removed, which lets the apiserver delete the owner;
//! - an owner deleted with `Orphan` carries the `orphan` finalizer: the references to it are
//!   removed from its dependents, then the finalizer.
//!
//! "Does not exist" is never decided from the cache alone: an owner missing from the graph
//! is read from the apiserver (by name, compared by uid) before anything is deleted.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde_json::json;

use crate::informer::{Change, Informer, Watched};
use crate::workqueue::{Backoff, Requeue, WorkQueue};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// A kind the collector knows: its API resource and whether it is namespaced.
#[derive(Clone, Debug)]
pub struct Kind {
    pub ar: ApiResource,
    pub namespaced: bool,
}

#[derive(Clone, Debug)]
struct Obj {
    kind: Arc<Kind>,
    namespace: String,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
    resource_version: String,
}

impl Obj {
    fn has(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

#[derive(Default)]
struct Graph {
    objs: HashMap<String, Obj>,
    dependents: HashMap<String, HashSet<String>>,
}

/// Work for the collector's workers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    /// Check whether the object (uid) has lost its owners.
    AttemptDelete(String),
    /// The owner (uid) is being deleted in the foreground.
    Foreground(String),
    /// The owner (uid) is being deleted with its dependents orphaned.
    Orphan(String),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::AttemptDelete(u) => write!(f, "attempt-delete {u}"),
            Item::Foreground(u) => write!(f, "foreground {u}"),
            Item::Orphan(u) => write!(f, "orphan {u}"),
        }
    }
}

/// What an owner reference points at.
#[derive(Debug, PartialEq)]
enum Owner {
    Exists { waiting: bool },
    Absent,
    Unknown,
}

pub struct GarbageCollector {
    client: Client,
    graph: Mutex<Graph>,
    kinds: HashMap<(String, String), Arc<Kind>>,
    pub queue: Arc<WorkQueue<Item>>,
}

impl GarbageCollector {
    /// A collector for `kinds` (from discovery).
    pub fn new(client: Client, kinds: &[Kind]) -> Arc<Self> {
        let map = kinds
            .iter()
            .map(|k| {
                (
                    (k.ar.api_version.clone(), k.ar.kind.clone()),
                    Arc::new(k.clone()),
                )
            })
            .collect();
        Arc::new(GarbageCollector {
            client,
            graph: Mutex::new(Graph::default()),
            kinds: map,
            queue: WorkQueue::new(Backoff::default()),
        })
    }

    /// The collector's view of `kind` (None if discovery did not list it).
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<Arc<Kind>> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }

    /// Feeds the graph from an informer of objects of `kind`.
    pub fn attach<K: Watched>(self: &Arc<Self>, informer: &mut Informer<K>, kind: Arc<Kind>) {
        let gc = self.clone();
        informer.on_change(move |c| gc.observe(c, &kind));
    }

    fn observe<K: Resource>(&self, change: &Change<K>, kind: &Arc<Kind>) {
        let meta = change.object().meta();
        let Some(uid) = meta.uid.clone() else { return };
        let mut g = self.graph.lock();
        match change {
            Change::Applied { .. } => {
                let obj = Obj {
                    kind: kind.clone(),
                    namespace: meta.namespace.clone().unwrap_or_default(),
                    name: meta.name.clone().unwrap_or_default(),
                    owners: meta.owner_references.clone().unwrap_or_default(),
                    deleting: meta.deletion_timestamp.is_some(),
                    finalizers: meta.finalizers.clone().unwrap_or_default(),
                    resource_version: meta.resource_version.clone().unwrap_or_default(),
                };
                let old = g.objs.insert(uid.clone(), obj.clone());
                for o in old.iter().flat_map(|o| o.owners.iter()) {
                    if let Some(set) = g.dependents.get_mut(&o.uid) {
                        set.remove(&uid);
                        if set.is_empty() {
                            g.dependents.remove(&o.uid);
                        }
                    }
                }
                for o in &obj.owners {
                    g.dependents
                        .entry(o.uid.clone())
                        .or_default()
                        .insert(uid.clone());
                }
                let owners_changed = old.as_ref().is_none_or(|o| o.owners != obj.owners);
                if !obj.owners.is_empty() && (owners_changed || obj.has(FOREGROUND)) {
                    self.queue.add(Item::AttemptDelete(uid.clone()));
                }
                if obj.deleting && obj.has(FOREGROUND) {
                    self.queue.add(Item::Foreground(uid.clone()));
                    if old.as_ref().is_none_or(|o| !o.has(FOREGROUND)) {
                        for d in g.dependents.get(&uid).into_iter().flatten() {
                            self.queue.add(Item::AttemptDelete(d.clone()));
                        }
                    }
                }
                if obj.deleting && obj.has(ORPHAN) {
                    self.queue.add(Item::Orphan(uid));
                }
            }
            Change::Deleted(_) => {
                let Some(old) = g.objs.remove(&uid) else {
                    return;
                };
                for o in &old.owners {
                    if let Some(set) = g.dependents.get_mut(&o.uid) {
                        set.remove(&uid);
                        if set.is_empty() {
                            g.dependents.remove(&o.uid);
                        }
                    }
                    if g.objs
                        .get(&o.uid)
                        .is_some_and(|x| x.deleting && x.has(FOREGROUND))
                    {
                        self.queue.add(Item::Foreground(o.uid.clone()));
                    }
                }
                for d in g.dependents.get(&uid).into_iter().flatten() {
                    self.queue.add(Item::AttemptDelete(d.clone()));
                }
            }
        }
    }

    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &kind.ar)
        } else {
            Api::all_with(self.client.clone(), &kind.ar)
        }
    }

    /// Where `r` (on an object in `namespace`) points, asking the apiserver if the graph
    /// does not know it.
    async fn owner(&self, namespace: &str, r: &OwnerReference) -> Result<Owner, kube::Error> {
        if let Some(o) = self.graph.lock().objs.get(&r.uid) {
            return Ok(Owner::Exists {
                waiting: o.deleting && o.has(FOREGROUND),
            });
        }
        let Some(kind) = self.kind(&r.api_version, &r.kind) else {
            return Ok(Owner::Unknown);
        };
        if kind.namespaced && namespace.is_empty() {
            return Ok(Owner::Unknown);
        }
        match self.api(&kind, namespace).get_opt(&r.name).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                let fins = o.metadata.finalizers.unwrap_or_default();
                Ok(Owner::Exists {
                    waiting: o.metadata.deletion_timestamp.is_some()
                        && fins.iter().any(|f| f == FOREGROUND),
                })
            }
            _ => Ok(Owner::Absent),
        }
    }

    pub async fn process(&self, item: Item) -> Result<Requeue, kube::Error> {
        match item {
            Item::AttemptDelete(uid) => self.attempt_delete(&uid).await,
            Item::Foreground(uid) => self.foreground(&uid).await,
            Item::Orphan(uid) => self.orphan(&uid).await,
        }
    }

    async fn attempt_delete(&self, uid: &str) -> Result<Requeue, kube::Error> {
        let (obj, has_dependents) = {
            let g = self.graph.lock();
            let Some(o) = g.objs.get(uid).cloned() else {
                return Ok(Requeue::No);
            };
            let deps = g.dependents.get(uid).is_some_and(|d| !d.is_empty());
            (o, deps)
        };
        if obj.owners.is_empty() || (obj.deleting && !obj.has(FOREGROUND)) {
            return Ok(Requeue::No);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in &obj.owners {
            match self.owner(&obj.namespace, r).await? {
                Owner::Exists { waiting: false } | Owner::Unknown => solid.push(r.clone()),
                Owner::Exists { waiting: true } => waiting.push(r.clone()),
                Owner::Absent => dangling.push(r.clone()),
            }
        }
        let api = self.api(&obj.kind, &obj.namespace);
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Requeue::No);
            }
            // Keep the object, drop the references to owners that are gone or going.
            let gone: HashSet<&str> = dangling
                .iter()
                .chain(&waiting)
                .map(|r| r.uid.as_str())
                .collect();
            let keep: Vec<&OwnerReference> = obj
                .owners
                .iter()
                .filter(|r| !gone.contains(r.uid.as_str()))
                .collect();
            let p = json!({"metadata": {"ownerReferences": keep, "resourceVersion": obj.resource_version}});
            return match api
                .patch(&obj.name, &PatchParams::default(), &Patch::Merge(&p))
                .await
            {
                Ok(_) => Ok(Requeue::No),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Requeue::No),
                Err(e) => Err(e),
            };
        }
        let policy = if !waiting.is_empty() && has_dependents {
            PropagationPolicy::Foreground
        } else if obj.has(ORPHAN) {
            PropagationPolicy::Orphan
        } else if obj.has(FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        tracing::debug!(kind = %obj.kind.ar.kind, name = %format!("{}/{}", obj.namespace, obj.name), ?policy, "deleting an object whose owners are gone");
        match api.delete(&obj.name, &dp).await {
            Ok(_) => Ok(Requeue::No),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Requeue::No),
            Err(e) => Err(e),
        }
    }

    async fn foreground(&self, uid: &str) -> Result<Requeue, kube::Error> {
        let (obj, blocking) = {
            let g = self.graph.lock();
            let Some(o) = g.objs.get(uid).cloned() else {
                return Ok(Requeue::No);
            };
            let blocking: Vec<String> = g
                .dependents
                .get(uid)
                .into_iter()
                .flatten()
                .filter(|d| {
                    g.objs.get(*d).is_some_and(|dep| {
                        dep.owners
                            .iter()
                            .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                    })
                })
                .cloned()
                .collect();
            (o, blocking)
        };
        if !obj.deleting || !obj.has(FOREGROUND) {
            return Ok(Requeue::No);
        }
        if !blocking.is_empty() {
            for d in blocking {
                self.queue.add(Item::AttemptDelete(d));
            }
            // Woken again as each dependent goes.
            return Ok(Requeue::No);
        }
        self.remove_finalizer(&obj, FOREGROUND).await
    }

    async fn orphan(&self, uid: &str) -> Result<Requeue, kube::Error> {
        let (obj, deps) = {
            let g = self.graph.lock();
            let Some(o) = g.objs.get(uid).cloned() else {
                return Ok(Requeue::No);
            };
            let deps: Vec<Obj> = g
                .dependents
                .get(uid)
                .into_iter()
                .flatten()
                .filter_map(|d| g.objs.get(d).cloned())
                .collect();
            (o, deps)
        };
        if !obj.deleting || !obj.has(ORPHAN) {
            return Ok(Requeue::No);
        }
        for dep in deps {
            let keep: Vec<&OwnerReference> = dep.owners.iter().filter(|r| r.uid != uid).collect();
            let p = json!({"metadata": {"ownerReferences": keep, "resourceVersion": dep.resource_version}});
            match self
                .api(&dep.kind, &dep.namespace)
                .patch(&dep.name, &PatchParams::default(), &Patch::Merge(&p))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        self.remove_finalizer(&obj, ORPHAN).await
    }

    async fn remove_finalizer(&self, obj: &Obj, f: &str) -> Result<Requeue, kube::Error> {
        let rest: Vec<&String> = obj.finalizers.iter().filter(|x| *x != f).collect();
        let p = json!({"metadata": {"finalizers": rest, "resourceVersion": obj.resource_version}});
        match self
            .api(&obj.kind, &obj.namespace)
            .patch(&obj.name, &PatchParams::default(), &Patch::Merge(&p))
            .await
        {
            Ok(_) => Ok(Requeue::No),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Requeue::No),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn kind() -> Arc<Kind> {
        Arc::new(Kind {
            ar: ApiResource::erase::<ConfigMap>(&()),
            namespaced: true,
        })
    }

    fn cm(
        name: &str,
        uid: &str,
        owners: &[(&str, bool)],
        finalizers: &[&str],
        deleting: bool,
    ) -> Arc<ConfigMap> {
        let mut v = json!({"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1",
            "ownerReferences": owners.iter().map(|(u, b)| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": format!("o-{u}"), "uid": u, "blockOwnerDeletion": b})).collect::<Vec<_>>(),
            "finalizers": finalizers}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn gc() -> Arc<GarbageCollector> {
        let client = kube::Client::new(
            tower::service_fn(|_req: http::Request<kube::client::Body>| async {
                Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
                    "no server",
                ))
            }),
            "default",
        );
        GarbageCollector::new(client, &[])
    }

    async fn drain(g: &GarbageCollector) -> Vec<String> {
        let mut out = Vec::new();
        while !g.queue.is_empty() {
            let i = g.queue.get().await.unwrap();
            g.queue.done(&i);
            out.push(i.to_string());
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn the_graph_queues_dependents_of_deleted_and_foreground_owners() {
        let g = gc();
        let k = kind();
        g.observe(
            &Change::Applied {
                old: None,
                new: cm("owner", "o1", &[], &[], false),
            },
            &k,
        );
        g.observe(
            &Change::Applied {
                old: None,
                new: cm("dep", "d1", &[("o1", true)], &[], false),
            },
            &k,
        );
        assert_eq!(drain(&g).await, vec!["attempt-delete d1"]);
        // The owner starts a foreground deletion: it and its dependents are looked at.
        g.observe(
            &Change::Applied {
                old: None,
                new: cm("owner", "o1", &[], &[FOREGROUND], true),
            },
            &k,
        );
        assert_eq!(drain(&g).await, vec!["attempt-delete d1", "foreground o1"]);
        // The dependent goes: the owner is looked at again.
        g.observe(
            &Change::Deleted(cm("dep", "d1", &[("o1", true)], &[], false)),
            &k,
        );
        assert_eq!(drain(&g).await, vec!["foreground o1"]);
        // The owner goes: nothing depends on it any more.
        g.observe(
            &Change::Deleted(cm("owner", "o1", &[], &[FOREGROUND], true)),
            &k,
        );
        assert!(drain(&g).await.is_empty());
        assert!(g.graph.lock().dependents.is_empty());
    }

    #[tokio::test]
    async fn owners_in_the_graph_are_resolved_without_the_server() {
        let g = gc();
        let k = kind();
        g.observe(
            &Change::Applied {
                old: None,
                new: cm("owner", "o1", &[], &[FOREGROUND], true),
            },
            &k,
        );
        let r = OwnerReference {
            uid: "o1".into(),
            ..Default::default()
        };
        assert_eq!(
            g.owner("ns", &r).await.unwrap(),
            Owner::Exists { waiting: true }
        );
        let unknown = OwnerReference {
            uid: "zz".into(),
            api_version: "x/v1".into(),
            kind: "Nope".into(),
            ..Default::default()
        };
        assert_eq!(g.owner("ns", &unknown).await.unwrap(), Owner::Unknown);
    }
}
