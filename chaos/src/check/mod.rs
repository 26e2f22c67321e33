//! The checkers: each reads a recorded [`History`] and says, with evidence, whether the store
//! kept one of its promises.
//!
//! - [`revisions`]: the reference revision history and its own integrity.
//! - [`linearizable`]: the KV history, key by key, against a sequential model (Porcupine's
//!   search, [`porcupine`]), with a shrunk counterexample on failure.
//! - [`consistency`]: the cross-key promises revisions make: acknowledged writes are in the
//!   history, no write appears that nobody made, reads return the state at their revision, and
//!   revisions follow real time.
//! - [`watch`]: ordered, unique, atomic, reliable, resumable, bookmarkable, prev_kv correct.
//! - [`durability`]: nothing acknowledged is lost after every member restarted.
//! - [`leases`]: a granted lease is found by keep-alives until it is revoked or can expire.
//! - [`availability`]: per fault, how long until writes succeeded again (reported, not judged).
//! - [`kube`]: the Kubernetes objects written through the apiserver.
//!
//! The self-tests next to each checker feed it known-bad histories (a stale read, a lost write,
//! a reordered watch), so a pass means something.

pub mod availability;
pub mod consistency;
pub mod counterexample;
pub mod durability;
pub mod kube;
pub mod leases;
pub mod linearizable;
pub mod porcupine;
pub mod revisions;
pub mod watch;

use serde::Serialize;

use crate::history::History;

/// Findings beyond this many are counted, not listed.
const MAX_LISTED: usize = 25;

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub passed: bool,
    /// The search could not finish (counts as not passed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
    /// How many things were checked (operations, events, keys...).
    pub checked: usize,
    pub violations: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub more_violations: usize,
    /// A minimal failing history, printed as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CheckResult {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            passed: true,
            inconclusive: false,
            checked: 0,
            violations: Vec::new(),
            more_violations: 0,
            counterexample: None,
            notes: Vec::new(),
        }
    }

    pub fn violation(&mut self, v: String) {
        self.passed = false;
        if self.violations.len() < MAX_LISTED {
            self.violations.push(v);
        } else {
            self.more_violations += 1;
        }
    }

    pub fn violations(&mut self, vs: impl IntoIterator<Item = String>) {
        for v in vs {
            self.violation(v);
        }
    }
}

/// Options the checkers take from the command line.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Longest the linearizability search may take per key.
    pub budget: std::time::Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            budget: std::time::Duration::from_secs(60),
        }
    }
}

/// Runs every checker over a history.
pub fn check_all(h: &History, opts: &CheckOptions) -> Vec<CheckResult> {
    let revs = revisions::Revisions::new(&h.revisions);
    let mut integrity = CheckResult::new("revision-history");
    integrity.checked = h.revisions.len();
    integrity.violations(revs.integrity(1, &h.prefix));
    let trusted = integrity.passed;
    if !trusted {
        integrity.notes.push(
            "the revision history is not trusted, so failed operations are not resolved from it"
                .into(),
        );
    }
    let mut out = vec![integrity];
    out.push(linearizable::check(h, &revs, trusted, opts));
    out.push(consistency::check(h, &revs));
    out.push(watch::check(h, &revs));
    out.push(durability::check(h, &revs));
    out.push(leases::check(h));
    if !h.kube_ops.is_empty() || !h.kube_watches.is_empty() {
        out.extend(kube::check(h, &revs, trusted, opts));
    }
    out
}
