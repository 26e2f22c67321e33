//! The Deployment controller: one ReplicaSet per pod template (named and labelled by the
//! template's hash), rolled from old to new honouring maxSurge and maxUnavailable (or all at
//! once with Recreate), scaled proportionally mid-rollout, old ReplicaSets kept up to
//! `revisionHistoryLimit`, and the status kubectl reads (replicas, updated, ready,
//! available, the Available and Progressing conditions, observedGeneration).
//!
//! A rollback is re-applying an old template: the ReplicaSet with that template becomes the
//! new one again and gets the next revision, as `kubectl rollout undo` relies on.
//!
//! Like kube-controller-manager, each sync does one step (create the new ReplicaSet, scale
//! it up, or scale old ones down) and then waits for the ReplicaSets' next change. Its own
//! writes are expectations: until the ReplicaSet watch has caught up with the
//! resourceVersion it wrote, the controller does not act on the (stale) cache.

pub mod hash;
pub mod plan;
pub mod status;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use parking_lot::Mutex;

use crate::events::Recorder;
use crate::informer::{Cache, Change, Informer};
use crate::pod;
use crate::selector;
use crate::workqueue::{Backoff, Requeue, WorkQueue};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

pub struct DeploymentController {
    client: Client,
    deployments: Cache<Deployment>,
    sets: Cache<ReplicaSet>,
    pods: Cache<Pod>,
    events: Recorder,
    /// ReplicaSet key -> the resourceVersion of our last write to it.
    written: Mutex<HashMap<String, u64>>,
    pub queue: Arc<WorkQueue<String>>,
}

/// The Deployment named by an object's controller reference, as a queue key.
fn owner_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &str,
) -> Option<String> {
    let r = pod::controller_of(meta)?;
    (r.kind == kind && r.api_version.starts_with("apps/"))
        .then(|| format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), r.name))
}

fn selects(d: &Deployment, labels: &selector::Labels) -> bool {
    d.spec
        .as_ref()
        .is_some_and(|s| !selector::is_empty(&s.selector) && selector::matches(&s.selector, labels))
}

impl DeploymentController {
    pub fn new(
        client: Client,
        deployments: &mut Informer<Deployment>,
        sets: &mut Informer<ReplicaSet>,
        pods: &mut Informer<Pod>,
        events: Recorder,
    ) -> Arc<Self> {
        let c = Arc::new(DeploymentController {
            client,
            deployments: deployments.cache(),
            sets: sets.cache(),
            pods: pods.cache(),
            events,
            written: Mutex::new(HashMap::new()),
            queue: WorkQueue::new(Backoff::default()),
        });
        let q = c.queue.clone();
        deployments.on_change(move |ch| q.add(pod::key(&ch.object().metadata)));
        let (q, dcache) = (c.queue.clone(), c.deployments.clone());
        sets.on_change(move |ch| {
            let rs = ch.object();
            match owner_key(&rs.metadata, "Deployment") {
                Some(k) => q.add(k),
                None if !matches!(ch, Change::Deleted(_)) => {
                    let ns = rs.metadata.namespace.clone().unwrap_or_default();
                    let labels = rs.metadata.labels.clone().unwrap_or_default();
                    for d in dcache.by_index("namespace", &ns) {
                        if selects(&d, &labels) {
                            q.add(pod::key(&d.metadata));
                        }
                    }
                }
                None => {}
            }
            if let Change::Applied { old: Some(o), .. } = ch {
                if let Some(prev) = owner_key(&o.metadata, "Deployment")
                    .filter(|k| Some(k) != owner_key(&rs.metadata, "Deployment").as_ref())
                {
                    q.add(prev);
                }
            }
        });
        // Recreate waits for the old pods to be gone: their deletions wake the Deployment.
        let (q, scache) = (c.queue.clone(), c.sets.clone());
        pods.on_change(move |ch| {
            if let Change::Deleted(p) = ch {
                let Some(rs_key) = owner_key(&p.metadata, "ReplicaSet") else {
                    return;
                };
                let (ns, name) = pod::split_key(&rs_key);
                if let Some(rs) = scache.get(ns, name) {
                    if let Some(d) = owner_key(&rs.metadata, "Deployment") {
                        q.add(d);
                    }
                }
            }
        });
        c
    }

    pub async fn reconcile(&self, key: String) -> Result<Requeue, kube::Error> {
        let (ns, name) = pod::split_key(&key);
        let Some(d) = self.deployments.get(ns, name) else {
            return Ok(Requeue::No);
        };
        sync::Sync::new(self, (*d).clone()).run().await
    }
}
