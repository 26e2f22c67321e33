//! Leases are not lost: a keep-alive sent while a granted lease cannot have expired yet (less
//! than its TTL after the grant was sent, with a second to spare) and before it was revoked must
//! find it. A new leader restarts every lease's clock, so expiry can only come later than that.

use super::CheckResult;
use crate::history::History;

/// Slack for the store's and this process's clocks and the keep-alive's own trip.
const MARGIN_NS: u64 = 1_000_000_000;

pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("leases");
    for l in &h.leases {
        if l.grant_ret.is_none() {
            continue;
        }
        let expires = l.grant_call + (l.ttl.max(0) as u64) * 1_000_000_000;
        for k in &l.keepalives {
            r.checked += 1;
            let before_revoke = l.revoke_call.is_none_or(|rc| k.call < rc);
            let alive = k.call + MARGIN_NS < expires;
            if let Some(ttl) = k.ttl {
                if ttl <= 0 && before_revoke && alive {
                    r.violation(format!(
                        "lease {:x} (TTL {} s, granted by client {} at {:.3} s) not found by a keep-alive at {:.3} s, before it could expire or was revoked",
                        l.id,
                        l.ttl,
                        l.client,
                        l.grant_call as f64 / 1e9,
                        k.call as f64 / 1e9
                    ));
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{KeepAlive, LeaseRecord};

    #[test]
    fn a_lost_lease_is_reported() {
        let lease = |ttl| LeaseRecord {
            id: 7,
            client: 1,
            ttl: 10,
            grant_call: 0,
            grant_ret: Some(1_000),
            keepalives: vec![KeepAlive {
                call: 2_000_000_000,
                ret: Some(2_100_000_000),
                ttl: Some(ttl),
            }],
            revoke_call: Some(3_000_000_000),
        };
        let h = History {
            leases: vec![lease(9)],
            ..Default::default()
        };
        assert!(check(&h).passed);
        let h = History {
            leases: vec![lease(0)],
            ..Default::default()
        };
        assert!(!check(&h).passed);
    }
}
