//! Ownership (client-go's `ControllerRefManager`): a controller owns the objects whose
//! controller reference names it; it adopts orphans its selector matches and releases owned
//! objects its selector no longer matches. ReplicaSets claim pods this way, Deployments
//! claim ReplicaSets.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use serde_json::{json, Value};

use crate::selector;

/// What to do with one candidate object.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Owned and matching: it is ours.
    Keep,
    /// An orphan that matches: add our controller reference.
    Adopt,
    /// Owned but no longer matching: remove our reference.
    Release,
    /// Someone else's, or not ours and not matching.
    Ignore,
}

/// Decides `Claim` for an object with `meta`, for the controller `owner_uid` with `sel`.
/// A controller that is being deleted neither adopts nor releases (it keeps what it has).
pub fn decide(
    owner_uid: &str,
    owner_deleting: bool,
    sel: &LabelSelector,
    meta: &ObjectMeta,
) -> Claim {
    let labels = meta.labels.clone().unwrap_or_default();
    let matches = !selector::is_empty(sel) && selector::matches(sel, &labels);
    match crate::pod::controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if matches || owner_deleting {
                Claim::Keep
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None => {
            if matches && !owner_deleting && meta.deletion_timestamp.is_none() {
                Claim::Adopt
            } else {
                Claim::Ignore
            }
        }
    }
}

/// The controller reference a controller puts on what it owns.
pub fn controller_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Merge patch adding `r` to the object's owner references, guarded by its resourceVersion.
pub fn adopt_patch(meta: &ObjectMeta, r: OwnerReference) -> Value {
    let mut refs = meta.owner_references.clone().unwrap_or_default();
    refs.retain(|o| o.uid != r.uid);
    refs.push(r);
    json!({"metadata": {"ownerReferences": refs, "resourceVersion": meta.resource_version}})
}

/// Merge patch removing the references to `owner_uid`, guarded by its resourceVersion.
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> Value {
    let refs: Vec<OwnerReference> = meta
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o.uid != owner_uid)
        .collect();
    json!({"metadata": {"ownerReferences": refs, "resourceVersion": meta.resource_version}})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], owner: Option<(&str, bool)>) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: owner.map(|(uid, controller)| {
                vec![OwnerReference {
                    uid: uid.into(),
                    controller: Some(controller),
                    ..Default::default()
                }]
            }),
            resource_version: Some("7".into()),
            ..Default::default()
        }
    }

    #[test]
    fn claims() {
        let sel: LabelSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap();
        let web = [("app", "web")];
        let db = [("app", "db")];
        let cases = [
            (
                "owned, matching",
                meta(&web, Some(("me", true))),
                false,
                Claim::Keep,
            ),
            (
                "owned, not matching",
                meta(&db, Some(("me", true))),
                false,
                Claim::Release,
            ),
            (
                "owned, not matching, owner deleting",
                meta(&db, Some(("me", true))),
                true,
                Claim::Keep,
            ),
            ("orphan, matching", meta(&web, None), false, Claim::Adopt),
            (
                "orphan, matching, owner deleting",
                meta(&web, None),
                true,
                Claim::Ignore,
            ),
            (
                "orphan, not matching",
                meta(&db, None),
                false,
                Claim::Ignore,
            ),
            (
                "other controller",
                meta(&web, Some(("other", true))),
                false,
                Claim::Ignore,
            ),
            (
                "non-controller ref only",
                meta(&web, Some(("other", false))),
                false,
                Claim::Adopt,
            ),
        ];
        for (what, m, deleting, want) in cases {
            assert_eq!(decide("me", deleting, &sel, &m), want, "{what}");
        }
        let empty = LabelSelector::default();
        assert_eq!(
            decide("me", false, &empty, &meta(&web, None)),
            Claim::Ignore
        );
    }

    #[test]
    fn patches_carry_the_resource_version() {
        let m = meta(&[], Some(("other", false)));
        let p = adopt_patch(&m, controller_ref("apps/v1", "ReplicaSet", "rs", "me"));
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(
            p["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
        let r = release_patch(&m, "other");
        assert_eq!(r["metadata"]["ownerReferences"], json!([]));
    }
}
