//! Controller expectations (client-go's `ControllerExpectations`): after a controller creates
//! or deletes pods it must not act on its cache again until the cache has seen those changes,
//! or it would create (delete) the same pods twice. It records how many creations and which
//! deletions it expects; the informer handlers tick them off as the watch delivers them. An
//! expectation older than the timeout is considered met, so a lost event cannot wedge a
//! controller.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct Expected {
    adds: i64,
    deletes: HashSet<String>,
    since: Instant,
}

/// Expectations per controller key (`namespace/name`).
pub struct Expectations {
    map: Mutex<HashMap<String, Expected>>,
    timeout: Duration,
}

impl Expectations {
    pub fn new(timeout: Duration) -> Expectations {
        Expectations {
            map: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// Whether the controller may act on its cache for `key`.
    pub fn satisfied(&self, key: &str) -> bool {
        let map = self.map.lock();
        match map.get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || e.since.elapsed() >= self.timeout,
        }
    }

    /// About to create `n` pods for `key`.
    pub fn expect_creations(&self, key: &str, n: usize) {
        let mut map = self.map.lock();
        let e = map.entry(key.to_string()).or_insert_with(|| Expected {
            adds: 0,
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        if e.adds <= 0 && e.deletes.is_empty() {
            e.since = Instant::now();
        }
        e.adds += n as i64;
    }

    /// About to delete the pods `keys` (pod `namespace/name`s) for `key`.
    pub fn expect_deletions(&self, key: &str, keys: &[String]) {
        let mut map = self.map.lock();
        let e = map.entry(key.to_string()).or_insert_with(|| Expected {
            adds: 0,
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        if e.adds <= 0 && e.deletes.is_empty() {
            e.since = Instant::now();
        }
        e.deletes.extend(keys.iter().cloned());
    }

    /// A pod for `key` was seen created (or its creation failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.map.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// The pod `pod` of `key` was seen deleted or terminating (or its deletion failed).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.map.lock().get_mut(key) {
            e.deletes.remove(pod);
        }
    }

    /// The controller object is gone.
    pub fn forget(&self, key: &str) {
        self.map.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expectations_are_met_by_observations_or_time() {
        let e = Expectations::new(Duration::from_secs(60));
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        e.expect_deletions("ns/rs", &["ns/p1".to_string()]);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/p1");
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 1);
        assert!(!e.satisfied("ns/rs"));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(e.satisfied("ns/rs"));
        e.forget("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
