//! The arithmetic of Deployment rollouts, as kube-controller-manager's deployment `util` and
//! `rolling.go` do it, over plain numbers so every step is unit-tested:
//!
//! - the fenceposts: maxSurge rounds up, maxUnavailable rounds down, never both 0;
//! - how far the new ReplicaSet may grow (`NewRSNewReplicas`);
//! - which old ReplicaSets shrink and by how much (`reconcileOldReplicaSets`: first the old
//!   replicas that are not available anyway, then as many available ones as keep
//!   `replicas - maxUnavailable` available);
//! - proportional scaling when the replica count changes in the middle of a rollout;
//! - which old ReplicaSets are history beyond `revisionHistoryLimit`.
//!
//! `available` here is never more than the ReplicaSet's `spec.replicas`: a ReplicaSet just
//! scaled down still reports its old count until its controller catches up, and counting
//! those pods would scale old ReplicaSets down twice and drop below the allowed availability.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One ReplicaSet as the rollout arithmetic sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rs {
    pub name: String,
    /// spec.replicas.
    pub replicas: i32,
    /// Available replicas, at most `replicas`.
    pub available: i32,
    /// The `deployment.kubernetes.io/max-replicas` annotation.
    pub max_replicas: Option<i32>,
    pub revision: i64,
}

/// `GetScaledValueFromIntOrPercent`.
pub fn scaled(v: Option<&IntOrString>, total: i32, round_up: bool, default_pct: i32) -> i32 {
    let pct = match v {
        Some(IntOrString::Int(i)) => return (*i).max(0),
        Some(IntOrString::String(s)) => s
            .trim_end_matches('%')
            .parse::<i64>()
            .unwrap_or(default_pct as i64),
        None => default_pct as i64,
    };
    let num = total as i64 * pct;
    (if round_up {
        (num + 99) / 100
    } else {
        num / 100
    }) as i32
}

/// (maxSurge, maxUnavailable) for `replicas` (`ResolveFenceposts`).
pub fn fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let s = scaled(surge, replicas, true, 25);
    let mut u = scaled(unavailable, replicas, false, 25);
    if s == 0 && u == 0 {
        u = 1;
    }
    (s, u)
}

/// The size the new ReplicaSet may grow to now (`NewRSNewReplicas` for RollingUpdate).
pub fn new_rs_target(replicas: i32, max_surge: i32, all_replicas: i32, new_replicas: i32) -> i32 {
    let max_total = replicas + max_surge;
    if all_replicas >= max_total {
        return new_replicas;
    }
    let up = (max_total - all_replicas)
        .min(replicas - new_replicas)
        .max(0);
    new_replicas + up
}

/// New sizes for old ReplicaSets (oldest first in `olds`), or nothing if none may shrink.
pub fn old_scale_downs(
    replicas: i32,
    max_unavailable: i32,
    new: Option<&Rs>,
    olds: &[Rs],
) -> Vec<(String, i32)> {
    let old_total: i32 = olds.iter().map(|r| r.replicas).sum();
    if old_total == 0 {
        return vec![];
    }
    let new_replicas = new.map(|n| n.replicas).unwrap_or(0);
    let new_available = new.map(|n| n.available).unwrap_or(0);
    let all_total = old_total + new_replicas;
    let min_available = replicas - max_unavailable;
    let new_unavailable = new_replicas - new_available;
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return vec![];
    }
    let mut sizes: Vec<Rs> = olds.to_vec();
    // 1. Replicas that are not available anyway go first.
    let mut cleaned = 0;
    for rs in sizes.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if rs.replicas == 0 || rs.replicas == rs.available {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(rs.replicas - rs.available);
        rs.replicas -= n;
        cleaned += n;
    }
    // 2. Then available ones, keeping min_available.
    let available: i32 = new_available
        + sizes
            .iter()
            .map(|r| r.available.min(r.replicas))
            .sum::<i32>();
    if available > min_available {
        let total = available - min_available;
        let mut done = 0;
        for rs in sizes.iter_mut() {
            if done >= total {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let n = rs.replicas.min(total - done);
            rs.replicas -= n;
            done += n;
        }
    }
    sizes
        .into_iter()
        .zip(olds)
        .filter(|(n, o)| n.replicas != o.replicas)
        .map(|(n, _)| (n.name, n.replicas))
        .collect()
}

/// Proportional scaling (`scale()` in sync.go) of `rses` (new one included) when the
/// Deployment's replica count changed mid-rollout: the difference from
/// `replicas + max_surge` is shared in proportion to each ReplicaSet's size relative to the
/// size it was scaled for (its max-replicas annotation); the leftover goes to the largest
/// (on scale up the newest).
pub fn proportional(
    replicas: i32,
    max_surge: i32,
    rses: &[Rs],
    current_status_replicas: i32,
) -> Vec<(String, i32)> {
    let active: Vec<&Rs> = rses.iter().filter(|r| r.replicas > 0).collect();
    let total: i32 = active.iter().map(|r| r.replicas).sum();
    let allowed = if replicas > 0 {
        replicas + max_surge
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add == 0 || active.is_empty() {
        return vec![];
    }
    let mut order: Vec<&Rs> = active.clone();
    if to_add > 0 {
        // Largest first, newest (highest revision) on ties.
        order.sort_by(|a, b| {
            b.replicas
                .cmp(&a.replicas)
                .then(b.revision.cmp(&a.revision))
        });
    } else {
        order.sort_by(|a, b| {
            b.replicas
                .cmp(&a.replicas)
                .then(a.revision.cmp(&b.revision))
        });
    }
    let max_total = replicas + max_surge;
    let mut added = 0;
    let mut out: Vec<(String, i32)> = Vec::new();
    for rs in &order {
        let annotated = rs
            .max_replicas
            .filter(|m| *m > 0)
            .unwrap_or(current_status_replicas.max(1));
        let share = if replicas == 0 {
            -rs.replicas
        } else {
            ((rs.replicas as f64 * max_total as f64 / annotated as f64).round() as i32)
                - rs.replicas
        };
        let left = to_add - added;
        let share = if to_add > 0 {
            share.min(left).max(0)
        } else {
            share.max(left).min(0)
        };
        added += share;
        out.push((rs.name.clone(), rs.replicas + share));
    }
    if let Some(first) = out.first_mut() {
        first.1 = (first.1 + to_add - added).max(0);
    }
    out.into_iter()
        .filter(|(name, n)| rses.iter().any(|r| &r.name == name && r.replicas != *n))
        .collect()
}

/// Old ReplicaSets to delete as history beyond `limit`: the oldest revisions first, only
/// those scaled to zero (the caller also checks they are settled).
pub fn history_to_delete(olds: &[Rs], limit: i32) -> Vec<String> {
    let excess = olds.len() as i64 - limit.max(0) as i64;
    if excess <= 0 {
        return vec![];
    }
    let mut sorted: Vec<&Rs> = olds.iter().collect();
    sorted.sort_by_key(|r| r.revision);
    sorted
        .into_iter()
        .take(excess as usize)
        .filter(|r| r.replicas == 0)
        .map(|r| r.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, replicas: i32, available: i32, revision: i64) -> Rs {
        Rs {
            name: name.into(),
            replicas,
            available,
            max_replicas: None,
            revision,
        }
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailability_down() {
        assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), (3, 2));
        assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 2), (1, 0));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            (0, 1)
        );
        assert_eq!(fenceposts(None, None, 6), (2, 1));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(2)), Some(&pct("50%")), 5),
            (2, 2)
        );
    }

    #[test]
    fn the_new_replica_set_grows_within_the_surge() {
        // 6 replicas, surge 2: with 6 old it may add 2; once 8 exist, none.
        assert_eq!(new_rs_target(6, 2, 6, 0), 2);
        assert_eq!(new_rs_target(6, 2, 8, 2), 2);
        assert_eq!(new_rs_target(6, 2, 7, 2), 3);
        // Never past replicas.
        assert_eq!(new_rs_target(6, 2, 6, 5), 6);
    }

    #[test]
    fn old_replica_sets_shrink_only_as_far_as_availability_allows() {
        // 6 replicas, 1 may be unavailable; new RS has 2 not yet available.
        let new = rs("new", 2, 0, 2);
        let olds = [rs("old", 6, 6, 1)];
        // all 8, min available 5, new unavailable 2: max scaled down 1.
        assert_eq!(
            old_scale_downs(6, 1, Some(&new), &olds),
            vec![("old".to_string(), 5)]
        );
        // New pods available: old can shrink by 2 more (available 6+2=8, keep 5 -> 3).
        let new = rs("new", 2, 2, 2);
        assert_eq!(
            old_scale_downs(6, 1, Some(&new), &olds),
            vec![("old".to_string(), 3)]
        );
        // Unavailable old replicas go first and count toward the limit.
        let olds = [rs("old", 6, 4, 1)];
        let new = rs("new", 2, 0, 2);
        assert_eq!(
            old_scale_downs(6, 1, Some(&new), &olds),
            vec![("old".to_string(), 5)]
        );
        // Nothing to do when all old replicas are gone.
        assert!(old_scale_downs(6, 1, Some(&new), &[rs("old", 0, 0, 1)]).is_empty());
    }

    #[test]
    fn availability_never_drops_below_the_minimum_across_a_whole_rollout() {
        // Simulate: every new replica becomes available one step after it is created, and
        // check replicas - maxUnavailable stay available at every step.
        let (replicas, surge, unavail) = (6, 2, 1);
        let mut new = rs("new", 0, 0, 2);
        let mut old = rs("old", 6, 6, 1);
        for _ in 0..50 {
            new.available = new.replicas; // last step's pods are ready now
            let all = new.replicas + old.replicas;
            new.replicas = new_rs_target(replicas, surge, all, new.replicas);
            for (_, n) in old_scale_downs(replicas, unavail, Some(&new), std::slice::from_ref(&old))
            {
                old.replicas = n;
                old.available = old.available.min(n);
            }
            assert!(new.available + old.available >= replicas - unavail);
            assert!(new.replicas + old.replicas <= replicas + surge);
        }
        assert_eq!((new.replicas, old.replicas), (6, 0));
    }

    #[test]
    fn proportional_scaling_shares_the_change() {
        // Mid-rollout (new 4, old 4, both annotated for 10+3=13... simplified: max 8).
        let mut a = rs("new", 4, 4, 2);
        a.max_replicas = Some(8);
        let mut b = rs("old", 4, 4, 1);
        b.max_replicas = Some(8);
        // Scale 6 -> 12 with surge 2: allowed 14, add 6, shared 3/3.
        let out = proportional(12, 2, &[a.clone(), b.clone()], 8);
        let total: i32 = out.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 14);
        assert!(out.iter().all(|(_, n)| *n == 7));
        // Scale to 0: everything goes.
        let mut out = proportional(0, 0, &[a, b], 8);
        out.sort();
        assert_eq!(out, vec![("new".to_string(), 0), ("old".to_string(), 0)]);
    }

    #[test]
    fn history_keeps_the_newest_revisions() {
        let olds = [
            rs("r1", 0, 0, 1),
            rs("r2", 0, 0, 2),
            rs("r3", 1, 1, 3),
            rs("r4", 0, 0, 4),
        ];
        assert_eq!(
            history_to_delete(&olds, 2),
            vec!["r1".to_string(), "r2".to_string()]
        );
        assert_eq!(
            history_to_delete(&olds, 1),
            vec!["r1".to_string(), "r2".to_string()]
        );
        assert!(history_to_delete(&olds, 10).is_empty());
    }
}
