//! One sync of one Deployment (`syncDeployment`): claim its ReplicaSets, find or create the
//! new one, take one rollout step (or a scaling step), clean up history, write the status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::plan::{self, Rs};
use super::{hash, status, DeploymentController, DESIRED_REPLICAS, MAX_REPLICAS, REVISION};
use crate::controllers::claim::{self, Claim};
use crate::pod;
use crate::selector;
use crate::workqueue::Requeue;

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn view(rs: &ReplicaSet) -> Rs {
    let r = replicas(rs);
    let available = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    Rs {
        name: rs.metadata.name.clone().unwrap_or_default(),
        replicas: r,
        available: available.min(r),
        max_replicas: rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MAX_REPLICAS))
            .and_then(|v| v.parse().ok()),
        revision: revision(rs),
    }
}

fn rv(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(super) struct Sync<'a> {
    c: &'a DeploymentController,
    d: Deployment,
    ns: String,
    name: String,
    /// A Progressing note to apply before the status is computed (created/found new RS).
    note: Option<(&'static str, String)>,
}

impl<'a> Sync<'a> {
    pub(super) fn new(c: &'a DeploymentController, d: Deployment) -> Sync<'a> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        Sync {
            c,
            d,
            ns,
            name,
            note: None,
        }
    }

    fn desired(&self) -> i32 {
        self.d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn rolling(&self) -> bool {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.type_.as_deref())
            != Some("Recreate")
    }

    /// (maxSurge, maxUnavailable) for the current replica count; both 0 for Recreate.
    fn fenceposts(&self) -> (i32, i32) {
        if !self.rolling() {
            return (0, 0);
        }
        let ru = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref());
        let (s, u) = plan::fenceposts(
            ru.and_then(|r| r.max_surge.as_ref()),
            ru.and_then(|r| r.max_unavailable.as_ref()),
            self.desired(),
        );
        (s, u.min(self.desired().max(0)))
    }

    fn sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.c.client.clone(), &self.ns)
    }

    pub(super) async fn run(mut self) -> Result<Requeue, kube::Error> {
        let spec = self.d.spec.clone().unwrap_or_default();
        if selector::is_empty(&spec.selector) {
            self.c.events.warning(
                &self.d,
                "SelectingAll",
                "Select",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(Requeue::No);
        }
        let owned = self.claim().await?;
        // Our last writes must be in the cache before we act on it.
        {
            let mut written = self.c.written.lock();
            for rs in &owned {
                let key = pod::key(&rs.metadata);
                match written.get(&key) {
                    Some(w) if rv(&rs.metadata) < *w => {
                        return Ok(Requeue::After(Duration::from_millis(200)))
                    }
                    // Caught up: the expectation is met.
                    Some(_) => {
                        written.remove(&key);
                    }
                    None => {}
                }
            }
        }
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, _) = self.split(&owned);
            return self.write_status(&owned, new.as_ref()).await;
        }
        let scaling = owned.iter().any(|rs| {
            replicas(rs) > 0
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DESIRED_REPLICAS))
                    .and_then(|v| v.parse::<i32>().ok())
                    .is_some_and(|v| v != self.desired())
        });
        if spec.paused == Some(true) || scaling {
            let new = self.new_rs(&owned, false).await?;
            let owned = self.refresh(owned, new.clone());
            self.scale(&owned, new.as_ref()).await?;
            return self.write_status(&self.owned_now(), new.as_ref()).await;
        }
        if self.rolling() {
            self.rolling_update(owned).await
        } else {
            self.recreate(owned).await
        }
    }

    /// The ReplicaSets this Deployment owns, after adopting and releasing by selector.
    async fn claim(&self) -> Result<Vec<Arc<ReplicaSet>>, kube::Error> {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let sel = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let mut owned = Vec::new();
        for rs in self.c.sets.by_index("namespace", &self.ns) {
            let rsname = rs.metadata.name.clone().unwrap_or_default();
            match claim::decide(&uid, deleting, &sel, &rs.metadata) {
                Claim::Keep => owned.push(rs),
                Claim::Adopt => {
                    let p = claim::adopt_patch(
                        &rs.metadata,
                        claim::controller_ref("apps/v1", "Deployment", &self.name, &uid),
                    );
                    match self
                        .sets()
                        .patch(&rsname, &PatchParams::default(), &Patch::Merge(&p))
                        .await
                    {
                        Ok(a) => owned.push(Arc::new(a)),
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Claim::Release => {
                    let p = claim::release_patch(&rs.metadata, &uid);
                    match self
                        .sets()
                        .patch(&rsname, &PatchParams::default(), &Patch::Merge(&p))
                        .await
                    {
                        Ok(_) | Err(kube::Error::Api(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Claim::Ignore => {}
            }
        }
        Ok(owned)
    }

    /// (the ReplicaSet whose template is the Deployment's, the others)
    fn split(&self, owned: &[Arc<ReplicaSet>]) -> (Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>) {
        let template = self
            .d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut matching: Vec<&Arc<ReplicaSet>> = owned
            .iter()
            .filter(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| hash::equal_ignore_hash(t, &template))
            })
            .collect();
        matching.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let new = matching.first().map(|r| (*r).clone());
        let olds = owned
            .iter()
            .filter(|rs| {
                new.as_ref()
                    .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
            })
            .cloned()
            .collect();
        (new, olds)
    }

    /// The cached ReplicaSets again (after writes, the cache may not have them yet; `new`
    /// from a write response replaces its cached copy).
    fn refresh(
        &self,
        owned: Vec<Arc<ReplicaSet>>,
        new: Option<Arc<ReplicaSet>>,
    ) -> Vec<Arc<ReplicaSet>> {
        let mut out: Vec<Arc<ReplicaSet>> = owned
            .into_iter()
            .filter(|rs| {
                new.as_ref()
                    .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
            })
            .collect();
        out.extend(new);
        out
    }

    fn owned_now(&self) -> Vec<Arc<ReplicaSet>> {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        self.c
            .sets
            .by_index("namespace", &self.ns)
            .into_iter()
            .filter(|rs| pod::controller_of(&rs.metadata).is_some_and(|r| r.uid == uid))
            .collect()
    }

    /// Finds the new ReplicaSet (syncing its revision) or, if `create`, creates it.
    async fn new_rs(
        &mut self,
        owned: &[Arc<ReplicaSet>],
        create: bool,
    ) -> Result<Option<Arc<ReplicaSet>>, kube::Error> {
        let (existing, olds) = self.split(owned);
        let max_old = olds.iter().map(|r| revision(r)).max().unwrap_or(0);
        let new_rev = max_old + 1;
        let (surge, _) = self.fenceposts();
        if let Some(rs) = existing {
            if revision(&rs) < new_rev {
                let mut updated = (*rs).clone();
                updated
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(REVISION.into(), new_rev.to_string());
                let written = self
                    .sets()
                    .replace(
                        &rs.metadata.name.clone().unwrap_or_default(),
                        &PostParams::default(),
                        &updated,
                    )
                    .await?;
                self.note_written(&written.metadata);
                self.set_deployment_revision(new_rev).await?;
                return Ok(Some(Arc::new(written)));
            }
            self.set_deployment_revision(revision(&rs)).await?;
            if self.progressing_condition().is_none() {
                self.note = Some((
                    status::FOUND_NEW_RS,
                    format!(
                        "Found new replica set \"{}\"",
                        rs.metadata.name.clone().unwrap_or_default()
                    ),
                ));
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.d.status.as_ref().and_then(|s| s.collision_count);
        let h = hash::compute(&spec.template, collision);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(hash::HASH_LABEL.into(), h.clone());
        let mut sel = spec.selector.clone();
        sel.match_labels
            .get_or_insert_with(Default::default)
            .insert(hash::HASH_LABEL.into(), h.clone());
        let all: i32 = owned.iter().map(|r| replicas(r)).sum();
        let initial = if self.rolling() {
            plan::new_rs_target(self.desired(), surge, all, 0)
        } else {
            self.desired()
        };
        let rs_name = format!("{}-{}", self.name, h);
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(self.ns.clone()),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                annotations: Some(
                    [
                        (REVISION.to_string(), new_rev.to_string()),
                        (DESIRED_REPLICAS.to_string(), self.desired().to_string()),
                        (
                            MAX_REPLICAS.to_string(),
                            (self.desired() + surge).to_string(),
                        ),
                    ]
                    .into(),
                ),
                owner_references: Some(vec![claim::controller_ref(
                    "apps/v1",
                    "Deployment",
                    &self.name,
                    &uid,
                )]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(initial),
                min_ready_seconds: spec.min_ready_seconds,
                selector: sel,
                template: Some(template),
            }),
            status: None,
        };
        match self.sets().create(&PostParams::default(), &rs).await {
            Ok(created) => {
                self.note_written(&created.metadata);
                if initial > 0 {
                    self.c.events.normal(
                        &self.d,
                        "ScalingReplicaSet",
                        "Scale",
                        format!("Scaled up replica set {rs_name} from 0 to {initial}"),
                    );
                }
                self.note = Some((
                    status::NEW_RS_CREATED,
                    format!("Created new replica set \"{rs_name}\""),
                ));
                self.set_deployment_revision(new_rev).await?;
                Ok(Some(Arc::new(created)))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Same name: ours with this template (a stale cache), or a hash collision.
                let existing = self.sets().get(&rs_name).await?;
                let ours = pod::controller_of(&existing.metadata).is_some_and(|r| r.uid == uid);
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| hash::equal_ignore_hash(t, &spec.template));
                if ours && same {
                    return Ok(Some(Arc::new(existing)));
                }
                let mut d = self.d.clone();
                let st = d.status.get_or_insert_with(Default::default);
                st.collision_count = Some(collision.unwrap_or(0) + 1);
                let api: Api<Deployment> = Api::namespaced(self.c.client.clone(), &self.ns);
                api.replace_status(&self.name, &PostParams::default(), &d)
                    .await?;
                Err(kube::Error::Service(
                    format!("hash collision on replica set {rs_name}").into(),
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn progressing_condition(&self) -> Option<&k8s_openapi::api::apps::v1::DeploymentCondition> {
        self.d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .and_then(|c| status::condition(c, "Progressing"))
    }

    async fn set_deployment_revision(&mut self, rev: i64) -> Result<(), kube::Error> {
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        if current.as_deref() == Some(rev.to_string().as_str()) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.c.client.clone(), &self.ns);
        let p = json!({"metadata": {"annotations": {REVISION: rev.to_string()}, "resourceVersion": self.d.metadata.resource_version}});
        self.d = api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&p))
            .await?;
        Ok(())
    }

    fn note_written(&self, meta: &ObjectMeta) {
        self.c.written.lock().insert(pod::key(meta), rv(meta));
    }

    /// Scales `rs` to `to` (and records the replica annotations).
    async fn scale_rs(&self, rs: &ReplicaSet, to: i32) -> Result<Arc<ReplicaSet>, kube::Error> {
        let (surge, _) = self.fenceposts();
        let from = replicas(rs);
        let mut updated = rs.clone();
        updated.spec.get_or_insert_with(Default::default).replicas = Some(to);
        let a = updated
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        a.insert(DESIRED_REPLICAS.into(), self.desired().to_string());
        a.insert(MAX_REPLICAS.into(), (self.desired() + surge).to_string());
        if updated == *rs {
            return Ok(Arc::new(updated));
        }
        let name = rs.metadata.name.clone().unwrap_or_default();
        let written = self
            .sets()
            .replace(&name, &PostParams::default(), &updated)
            .await?;
        self.note_written(&written.metadata);
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            self.c.events.normal(
                &self.d,
                "ScalingReplicaSet",
                "Scale",
                format!("Scaled {dir} replica set {name} from {from} to {to}"),
            );
        }
        Ok(Arc::new(written))
    }

    /// A scaling event (or a paused Deployment): `scale()` of sync.go.
    async fn scale(
        &self,
        owned: &[Arc<ReplicaSet>],
        new: Option<&Arc<ReplicaSet>>,
    ) -> Result<(), kube::Error> {
        let desired = self.desired();
        let active: Vec<&Arc<ReplicaSet>> = owned.iter().filter(|r| replicas(r) > 0).collect();
        let only = match active.len() {
            0 => new.or_else(|| owned.iter().max_by_key(|r| revision(r))),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(rs) = only {
            if replicas(rs) != desired
                || rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DESIRED_REPLICAS))
                    != Some(&desired.to_string())
            {
                self.scale_rs(rs, desired).await?;
            }
            return Ok(());
        }
        if let Some(n) = new {
            let v = view(n);
            if v.replicas == desired && v.available == desired {
                for rs in owned
                    .iter()
                    .filter(|r| r.metadata.uid != n.metadata.uid && replicas(r) > 0)
                {
                    self.scale_rs(rs, 0).await?;
                }
                return Ok(());
            }
        }
        if self.rolling() {
            let (surge, _) = self.fenceposts();
            let views: Vec<Rs> = owned.iter().map(|r| view(r)).collect();
            let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            for (name, to) in plan::proportional(desired, surge, &views, status_replicas) {
                if let Some(rs) = owned
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                {
                    self.scale_rs(rs, to).await?;
                }
            }
        }
        Ok(())
    }

    async fn rolling_update(
        &mut self,
        owned: Vec<Arc<ReplicaSet>>,
    ) -> Result<Requeue, kube::Error> {
        let Some(new) = self.new_rs(&owned, true).await? else {
            return Ok(Requeue::No);
        };
        let owned = self.refresh(owned, Some(new.clone()));
        let desired = self.desired();
        let (surge, unavailable) = self.fenceposts();
        let all: i32 = owned.iter().map(|r| replicas(r)).sum();
        let target = if replicas(&new) > desired {
            desired
        } else {
            plan::new_rs_target(desired, surge, all, replicas(&new))
        };
        if target != replicas(&new) {
            let new = self.scale_rs(&new, target).await?;
            let owned = self.refresh(owned, Some(new.clone()));
            return self.write_status(&owned, Some(&new)).await;
        }
        let mut olds: Vec<&Arc<ReplicaSet>> = owned
            .iter()
            .filter(|r| r.metadata.uid != new.metadata.uid)
            .collect();
        olds.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let old_views: Vec<Rs> = olds.iter().map(|r| view(r)).collect();
        let downs = plan::old_scale_downs(desired, unavailable, Some(&view(&new)), &old_views);
        if !downs.is_empty() {
            for (name, to) in downs {
                if let Some(rs) = olds
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                {
                    self.scale_rs(rs, to).await?;
                }
            }
            return self.write_status(&self.owned_now(), Some(&new)).await;
        }
        self.cleanup(&olds).await?;
        self.write_status(&owned, Some(&new)).await
    }

    async fn recreate(&mut self, owned: Vec<Arc<ReplicaSet>>) -> Result<Requeue, kube::Error> {
        let (existing, olds) = self.split(&owned);
        let active_olds: Vec<&Arc<ReplicaSet>> = olds.iter().filter(|r| replicas(r) > 0).collect();
        if !active_olds.is_empty() {
            for rs in active_olds {
                self.scale_rs(rs, 0).await?;
            }
            return self
                .write_status(&self.owned_now(), existing.as_ref())
                .await;
        }
        // Wait until no pod of an old ReplicaSet runs any more.
        let old_uids: Vec<&str> = olds
            .iter()
            .filter_map(|r| r.metadata.uid.as_deref())
            .collect();
        let running = self
            .c
            .pods
            .by_index("namespace", &self.ns)
            .into_iter()
            .any(|p| {
                pod::controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()))
                    && !pod::is_terminal(&p)
            });
        if running {
            return self.write_status(&owned, existing.as_ref()).await;
        }
        let Some(new) = self.new_rs(&owned, true).await? else {
            return Ok(Requeue::No);
        };
        let new = if replicas(&new) != self.desired() {
            self.scale_rs(&new, self.desired()).await?
        } else {
            new
        };
        let owned = self.refresh(owned, Some(new.clone()));
        let olds: Vec<&Arc<ReplicaSet>> = owned
            .iter()
            .filter(|r| r.metadata.uid != new.metadata.uid)
            .collect();
        self.cleanup(&olds).await?;
        self.write_status(&owned, Some(&new)).await
    }

    /// Deletes old ReplicaSets beyond revisionHistoryLimit once the rollout is complete.
    async fn cleanup(&self, olds: &[&Arc<ReplicaSet>]) -> Result<(), kube::Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let settled: Vec<&Arc<ReplicaSet>> = olds
            .iter()
            .copied()
            .filter(|r| {
                r.metadata.deletion_timestamp.is_none()
                    && r.status.as_ref().is_some_and(|s| s.replicas == 0)
                    && r.status.as_ref().and_then(|s| s.observed_generation)
                        >= r.metadata.generation
            })
            .collect();
        let views: Vec<Rs> = settled.iter().map(|r| view(r)).collect();
        for name in plan::history_to_delete(&views, limit) {
            match self.sets().delete(&name, &DeleteParams::background()).await {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn write_status(
        &self,
        owned: &[Arc<ReplicaSet>],
        new: Option<&Arc<ReplicaSet>>,
    ) -> Result<Requeue, kube::Error> {
        let (_, unavailable) = self.fenceposts();
        let all: Vec<&ReplicaSet> = owned.iter().map(|r| r.as_ref()).collect();
        let mut st = status::calculate(&self.d, &all, new.map(|n| n.as_ref()), unavailable);
        if let Some((reason, message)) = &self.note {
            status::set_condition(
                st.conditions.get_or_insert_with(Vec::new),
                "Progressing",
                "True",
                reason,
                message.clone(),
            );
        }
        let new_name = new.and_then(|n| n.metadata.name.clone());
        let recheck = status::sync_progressing(
            &self.d,
            &mut st,
            new_name.as_deref(),
            jiff::Timestamp::now(),
        );
        if self.d.status.as_ref() != Some(&st) {
            let mut d = self.d.clone();
            d.status = Some(st);
            let api: Api<Deployment> = Api::namespaced(self.c.client.clone(), &self.ns);
            api.replace_status(&self.name, &PostParams::default(), &d)
                .await?;
        }
        Ok(recheck.map(Requeue::After).unwrap_or(Requeue::No))
    }
}
