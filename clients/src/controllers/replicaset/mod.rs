//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector, owned
//! through a controller reference; adopts orphans the selector matches, releases pods it no
//! longer matches, and reports replicas, fullyLabeled, ready and available replicas.
//!
//! Creations and deletions are recorded as [`Expectations`]: until the pod watch has shown
//! them, the controller does not create or delete again for that ReplicaSet (only its status
//! is refreshed). Creations go in kube-controller-manager's slow-start batches (1, 2, 4, ...)
//! so a failing template costs one failed request, not five hundred.

pub mod logic;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Client;

use super::claim::{self, Claim};
use super::expectations::Expectations;
use crate::events::Recorder;
use crate::informer::{Cache, Change, Informer};
use crate::pod;
use crate::workqueue::{Backoff, Requeue, WorkQueue};

pub struct ReplicaSetController {
    client: Client,
    pods: Cache<Pod>,
    sets: Cache<ReplicaSet>,
    expectations: Arc<Expectations>,
    events: Recorder,
    pub queue: Arc<WorkQueue<String>>,
}

/// The ReplicaSet a pod's controller reference names, as a queue key.
fn owner_key(p: &Pod) -> Option<String> {
    let r = pod::controller_of(&p.metadata)?;
    (r.kind == "ReplicaSet" && r.api_version.starts_with("apps/")).then(|| {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or(""),
            r.name
        )
    })
}

impl ReplicaSetController {
    /// Hooks the controller to the shared pod and ReplicaSet informers.
    pub fn new(
        client: Client,
        pods: &mut Informer<Pod>,
        sets: &mut Informer<ReplicaSet>,
        events: Recorder,
    ) -> Arc<Self> {
        let c = Arc::new(ReplicaSetController {
            client,
            pods: pods.cache(),
            sets: sets.cache(),
            expectations: Arc::new(Expectations::new(Duration::from_secs(60))),
            events,
            queue: WorkQueue::new(Backoff::default()),
        });
        let q = c.queue.clone();
        sets.on_change(move |ch| q.add(pod::key(&ch.object().metadata)));
        let (q, exp, set_cache) = (c.queue.clone(), c.expectations.clone(), c.sets.clone());
        pods.on_change(move |ch| {
            let p = ch.object();
            let pod_key = pod::key(&p.metadata);
            if let Some(owner) = owner_key(p) {
                match ch {
                    Change::Applied { old: None, new } => {
                        if pod::is_terminating(&new.metadata) {
                            exp.deletion_observed(&owner, &pod_key);
                        } else {
                            exp.creation_observed(&owner);
                        }
                    }
                    Change::Applied { old: Some(o), new } => {
                        if !pod::is_terminating(&o.metadata) && pod::is_terminating(&new.metadata) {
                            exp.deletion_observed(&owner, &pod_key);
                        }
                    }
                    Change::Deleted(_) => exp.deletion_observed(&owner, &pod_key),
                }
                q.add(owner);
            } else if !matches!(ch, Change::Deleted(_)) {
                // An orphan: every ReplicaSet that selects it may adopt it.
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                for rs in set_cache.by_index("namespace", &ns) {
                    if logic::selects(&rs, p) {
                        q.add(pod::key(&rs.metadata));
                    }
                }
            }
            if let Change::Applied { old: Some(o), .. } = ch {
                if let Some(prev) = owner_key(o).filter(|k| Some(k) != owner_key(p).as_ref()) {
                    q.add(prev);
                }
            }
        });
        c
    }

    /// Syncs one ReplicaSet (`namespace/name`).
    pub async fn reconcile(&self, key: String) -> Result<Requeue, kube::Error> {
        let (ns, name) = pod::split_key(&key);
        let Some(rs) = self.sets.get(ns, name) else {
            self.expectations.forget(&key);
            return Ok(Requeue::No);
        };
        let need_sync = self.expectations.satisfied(&key);
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let deleting = rs.metadata.deletion_timestamp.is_some();
        let spec = rs.spec.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut owned: Vec<Arc<Pod>> = Vec::new();
        for p in self.pods.by_index("namespace", ns) {
            match claim::decide(&uid, deleting, &spec.selector, &p.metadata) {
                Claim::Keep => owned.push(p),
                Claim::Adopt if pod::is_active(&p) => {
                    let patch = claim::adopt_patch(
                        &p.metadata,
                        claim::controller_ref("apps/v1", "ReplicaSet", name, &uid),
                    );
                    let pname = p.metadata.name.clone().unwrap_or_default();
                    match api
                        .patch(&pname, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Claim::Release => {
                    let patch = claim::release_patch(&p.metadata, &uid);
                    let pname = p.metadata.name.clone().unwrap_or_default();
                    match api
                        .patch(&pname, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) | Err(kube::Error::Api(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Claim::Adopt | Claim::Ignore => {}
            }
        }
        let active: Vec<Arc<Pod>> = owned.into_iter().filter(|p| pod::is_active(p)).collect();
        let failure = if need_sync && !deleting {
            self.manage(&key, &rs, &active).await
        } else {
            None
        };
        let now = jiff::Timestamp::now();
        let status = logic::status(
            &rs,
            &active,
            failure.as_ref().map(|(r, m)| (*r, m.clone())),
            now,
        );
        if rs.status.as_ref() != Some(&status) {
            let mut updated = (*rs).clone();
            updated.status = Some(status.clone());
            let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
            sets.replace_status(name, &PostParams::default(), &updated)
                .await?;
        }
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && status.ready_replicas != status.available_replicas {
            return Ok(Requeue::After(Duration::from_secs(min_ready as u64)));
        }
        if let Some((_, m)) = failure {
            // Retried with back-off through the error path.
            return Err(kube::Error::Service(m.into()));
        }
        Ok(Requeue::No)
    }

    /// Creates or deletes pods to reach the desired count; a failure's (reason, message).
    async fn manage(
        &self,
        key: &str,
        rs: &ReplicaSet,
        active: &[Arc<Pod>],
    ) -> Option<(&'static str, String)> {
        let replicas = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if active.len() < replicas {
            let mut remaining = (replicas - active.len()).min(logic::BURST_REPLICAS);
            self.expectations.expect_creations(key, remaining);
            let template = logic::pod_from_template(rs);
            let pp = PostParams::default();
            let mut batch = 1;
            while remaining > 0 {
                let n = batch.min(remaining);
                let results = join_all((0..n).map(|_| api.create(&pp, &template))).await;
                remaining -= n;
                let mut failed = None;
                for r in results {
                    match r {
                        Ok(p) => self.events.normal(
                            rs,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                        ),
                        Err(e) => {
                            self.expectations.creation_observed(key);
                            failed = Some(e.to_string());
                        }
                    }
                }
                if let Some(e) = failed {
                    // The rest of this sync's creations are skipped, as if observed.
                    for _ in 0..remaining {
                        self.expectations.creation_observed(key);
                    }
                    self.events.warning(
                        rs,
                        "FailedCreate",
                        "Create",
                        format!("Error creating: {e}"),
                    );
                    return Some(("FailedCreate", e));
                }
                batch *= 2;
            }
        } else if active.len() > replicas {
            let n = (active.len() - replicas).min(logic::BURST_REPLICAS);
            let victims = logic::pods_to_delete(active, n);
            let keys: Vec<String> = victims.iter().map(|p| pod::key(&p.metadata)).collect();
            self.expectations.expect_deletions(key, &keys);
            let results = join_all(victims.iter().map(|p| {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: p.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                let api = api.clone();
                let name = p.metadata.name.clone().unwrap_or_default();
                async move { (name.clone(), api.delete(&name, &dp).await) }
            }))
            .await;
            let mut failed = None;
            for ((name, r), k) in results.into_iter().zip(keys) {
                match r {
                    Ok(_) => self.events.normal(
                        rs,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    ),
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        self.expectations.deletion_observed(key, &k)
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key, &k);
                        failed = Some(e.to_string());
                    }
                }
            }
            if let Some(e) = failed {
                self.events
                    .warning(rs, "FailedDelete", "Delete", format!("Error deleting: {e}"));
                return Some(("FailedDelete", e));
            }
        }
        None
    }
}
