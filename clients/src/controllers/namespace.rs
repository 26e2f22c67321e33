//! The namespace controller: a namespace being deleted (Terminating, with the `kubernetes`
//! finalizer in spec.finalizers) has everything in it deleted, kind by kind (every
//! namespaced kind discovery lists); once nothing is left, the finalizer is removed through
//! `namespaces/<name>/finalize` and the apiserver deletes the namespace.
//!
//! Pods bound to nodes are deleted gracefully, so the namespace stays Terminating until their
//! kubelets have stopped them; the controller looks again every few seconds meanwhile, and
//! reports what remains in the NamespaceContentRemaining condition.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::Client;

use super::gc::Kind;
use crate::informer::{Cache, Informer};
use crate::workqueue::{Backoff, Requeue, WorkQueue};

pub const FINALIZER: &str = "kubernetes";

pub struct NamespaceController {
    client: Client,
    namespaces: Cache<Namespace>,
    kinds: Vec<Kind>,
    pub queue: Arc<WorkQueue<String>>,
}

/// The NamespaceContentRemaining condition for what is left (None when nothing is).
pub fn remaining_condition(left: &[(String, usize)]) -> NamespaceCondition {
    if left.is_empty() {
        return NamespaceCondition {
            type_: "NamespaceContentRemaining".into(),
            status: "False".into(),
            reason: Some("ContentRemoved".into()),
            message: Some("All content successfully removed".into()),
            last_transition_time: Some(crate::pod::now()),
        };
    }
    let parts: Vec<String> = left
        .iter()
        .map(|(k, n)| format!("{k} has {n} resource instances"))
        .collect();
    NamespaceCondition {
        type_: "NamespaceContentRemaining".into(),
        status: "True".into(),
        reason: Some("SomeResourcesRemain".into()),
        message: Some(format!(
            "Some resources are remaining: {}",
            parts.join(", ")
        )),
        last_transition_time: Some(crate::pod::now()),
    }
}

impl NamespaceController {
    pub fn new(client: Client, namespaces: &mut Informer<Namespace>, kinds: &[Kind]) -> Arc<Self> {
        let c = Arc::new(NamespaceController {
            client,
            namespaces: namespaces.cache(),
            kinds: kinds.iter().filter(|k| k.namespaced).cloned().collect(),
            queue: WorkQueue::new(Backoff::default()),
        });
        let q = c.queue.clone();
        namespaces.on_change(move |ch| {
            let ns = ch.object();
            if ns.metadata.deletion_timestamp.is_some() {
                q.add(ns.metadata.name.clone().unwrap_or_default());
            }
        });
        c
    }

    pub async fn reconcile(&self, name: String) -> Result<Requeue, kube::Error> {
        let Some(ns) = self.namespaces.get("", &name) else {
            return Ok(Requeue::No);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Requeue::No);
        }
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Requeue::No);
        }
        let mut left = Vec::new();
        for kind in &self.kinds {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &name, &kind.ar);
            let list = api.list(&ListParams::default()).await?;
            if list.items.is_empty() {
                continue;
            }
            let live = list
                .items
                .iter()
                .filter(|o| o.metadata.deletion_timestamp.is_none())
                .count();
            if live > 0 {
                match api
                    .delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await
                {
                    Ok(_) | Err(kube::Error::Api(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let after = api.list(&ListParams::default()).await?.items.len();
            if after > 0 {
                left.push((
                    format!("{}.{}", kind.ar.plural, kind.ar.group)
                        .trim_end_matches('.')
                        .to_string(),
                    after,
                ));
            }
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let cond = remaining_condition(&left);
        let current = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == cond.type_));
        if current.is_none_or(|c| c.status != cond.status || c.message != cond.message) {
            let mut updated = (*ns).clone();
            let st = updated.status.get_or_insert_with(Default::default);
            let mut conds: Vec<NamespaceCondition> = st
                .conditions
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.type_ != cond.type_)
                .collect();
            conds.push(cond);
            st.conditions = Some(conds);
            match api
                .replace_status(&name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !left.is_empty() {
            tracing::debug!(namespace = %name, ?left, "namespace content remaining");
            return Ok(Requeue::After(Duration::from_secs(2)));
        }
        let fresh = api.get(&name).await?;
        let mut done = fresh.clone();
        if let Some(spec) = done.spec.as_mut() {
            spec.finalizers = Some(
                spec.finalizers
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f != FINALIZER)
                    .collect(),
            );
        }
        api.replace_subresource("finalize", &name, &PostParams::default(), &done)
            .await?;
        tracing::info!(namespace = %name, "namespace emptied and finalized");
        Ok(Requeue::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remaining_condition_lists_what_is_left() {
        let c = remaining_condition(&[("pods".into(), 2), ("configmaps".into(), 1)]);
        assert_eq!(c.status, "True");
        assert_eq!(
            c.message.as_deref(),
            Some("Some resources are remaining: pods has 2 resource instances, configmaps has 1 resource instances")
        );
        assert_eq!(remaining_condition(&[]).status, "False");
    }
}
