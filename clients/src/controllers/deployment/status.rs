//! A Deployment's status from its ReplicaSets: the counts, and the `Available` and
//! `Progressing` conditions with Kubernetes' reasons and messages (`kubectl rollout status`
//! reads these).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};

use crate::pod;

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";

fn counts(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (
        s.replicas,
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

/// The condition of `type_` among `conds`.
pub fn condition<'a>(
    conds: &'a [DeploymentCondition],
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// Sets a condition, keeping its transition time when its status does not change and its
/// update time when nothing changes at all (so an unchanged status is not rewritten).
pub fn set_condition(
    conds: &mut Vec<DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) {
    let now = pod::now();
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
        {
            return;
        }
        if c.status != status {
            c.last_transition_time = Some(now.clone());
        }
        c.status = status.to_string();
        c.reason = Some(reason.to_string());
        c.message = Some(message);
        c.last_update_time = Some(now);
        return;
    }
    conds.push(DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    });
}

/// The status counts over `all` ReplicaSets (`new` among them), and the Available condition.
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    max_unavailable: i32,
) -> DeploymentStatus {
    let prev = d.status.clone().unwrap_or_default();
    let (mut replicas, mut ready, mut available) = (0, 0, 0);
    for rs in all {
        let (r, re, a) = counts(rs);
        replicas += r;
        ready += re;
        available += a;
    }
    let updated = new.map(|n| counts(n).0).unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let mut conds = prev.conditions.clone().unwrap_or_default();
    if available >= desired - max_unavailable {
        set_condition(
            &mut conds,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        );
    } else {
        set_condition(
            &mut conds,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        );
    }
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)),
        terminating_replicas: prev.terminating_replicas,
        collision_count: prev.collision_count,
        conditions: Some(conds),
    }
}

/// `DeploymentComplete`: every replica updated and available, and nothing old left.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    s.updated_replicas == Some(desired)
        && s.replicas == Some(desired)
        && s.available_replicas == Some(desired)
        && s.observed_generation >= d.metadata.generation
}

/// `DeploymentProgressing`: more replicas updated, ready or available than before, or fewer old ones.
pub fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas > old.updated_replicas
        || new_old < old_old
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
}

/// Updates the Progressing condition of `s` (`syncRolloutStatus`); `now_secs` and the
/// condition's last update give the progress deadline. Returns how long until the deadline
/// should be checked again, if a rollout is in progress.
pub fn sync_progressing(
    d: &Deployment,
    s: &mut DeploymentStatus,
    new_rs_name: Option<&str>,
    now: jiff::Timestamp,
) -> Option<std::time::Duration> {
    let spec = d.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        return None;
    }
    let deadline = spec.progress_deadline_seconds.unwrap_or(600);
    let name = new_rs_name.unwrap_or("");
    let old = d.status.clone().unwrap_or_default();
    let mut conds = s.conditions.clone().unwrap_or_default();
    let mut recheck = None;
    if complete(d, s) {
        set_condition(
            &mut conds,
            "Progressing",
            "True",
            NEW_RS_AVAILABLE,
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        );
    } else if progressing(&old, s) {
        // Progress: the condition's update time moves (this is what the deadline counts from).
        let msg = format!("ReplicaSet \"{name}\" is progressing.");
        let was_true = condition(&conds, "Progressing").is_some_and(|c| c.status == "True");
        set_condition(&mut conds, "Progressing", "True", RS_UPDATED, msg);
        if let Some(c) = conds.iter_mut().find(|c| c.type_ == "Progressing") {
            c.last_update_time = Some(pod::now());
            if !was_true {
                c.last_transition_time = Some(pod::now());
            }
        }
        recheck = Some(std::time::Duration::from_secs(deadline.max(1) as u64));
    } else if let Some(c) = condition(&conds, "Progressing") {
        let timed_out_already = c.reason.as_deref() == Some(TIMED_OUT);
        let since = c.last_update_time.as_ref().map(|t| t.0).unwrap_or(now);
        let due = since + jiff::SignedDuration::from_secs(deadline as i64);
        if !timed_out_already && c.reason.as_deref() != Some(NEW_RS_AVAILABLE) {
            if due <= now {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "False",
                    TIMED_OUT,
                    format!("ReplicaSet \"{name}\" has timed out progressing."),
                );
            } else {
                let left = due.duration_since(now).unsigned_abs();
                recheck = Some(left + std::time::Duration::from_secs(1));
            }
        }
    }
    s.conditions = Some(conds);
    recheck
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(replicas: i32, generation: i64) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}}}),
        )
        .unwrap()
    }

    fn rs(replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({"metadata": {"name": "x"},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}})).unwrap()
    }

    #[test]
    fn status_sums_replica_sets_and_sets_availability() {
        let dep = d(6, 2);
        let (old, new) = (rs(4, 4, 4), rs(3, 1, 1));
        let s = calculate(&dep, &[&old, &new], Some(&new), 1);
        assert_eq!(
            (
                s.replicas,
                s.updated_replicas,
                s.ready_replicas,
                s.available_replicas
            ),
            (Some(7), Some(3), Some(5), Some(5))
        );
        assert_eq!(s.unavailable_replicas, Some(2));
        assert_eq!(s.observed_generation, Some(2));
        let avail = condition(s.conditions.as_deref().unwrap(), "Available").unwrap();
        assert_eq!(
            (avail.status.as_str(), avail.reason.as_deref()),
            ("True", Some("MinimumReplicasAvailable"))
        );
        let s = calculate(&dep, &[&rs(6, 2, 2)], None, 1);
        let avail = condition(s.conditions.as_deref().unwrap(), "Available").unwrap();
        assert_eq!(avail.status, "False");
        assert!(!complete(&dep, &s));
        let done = calculate(&dep, &[&rs(6, 6, 6)], Some(&rs(6, 6, 6)), 1);
        assert!(complete(&dep, &done));
    }

    #[test]
    fn progressing_reports_completion_progress_and_timeouts() {
        let now = jiff::Timestamp::now();
        let mut dep = d(2, 1);
        let mut s = calculate(&dep, &[&rs(2, 2, 2)], Some(&rs(2, 2, 2)), 0);
        sync_progressing(&dep, &mut s, Some("web-1"), now);
        let c = condition(s.conditions.as_deref().unwrap(), "Progressing").unwrap();
        assert_eq!(c.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        // Stalled rollout past its deadline.
        dep.spec.as_mut().unwrap().progress_deadline_seconds = Some(5);
        let stalled = rs(1, 0, 0);
        let mut s = calculate(&dep, &[&stalled], Some(&stalled), 0);
        set_condition(
            s.conditions.as_mut().unwrap(),
            "Progressing",
            "True",
            RS_UPDATED,
            "x".into(),
        );
        dep.status = Some(s.clone());
        let recheck = sync_progressing(&dep, &mut s, Some("web-1"), now);
        assert!(recheck.is_some());
        let later = now + jiff::SignedDuration::from_secs(6);
        sync_progressing(&dep, &mut s, Some("web-1"), later);
        let c = condition(s.conditions.as_deref().unwrap(), "Progressing").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
    }
}
