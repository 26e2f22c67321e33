//! The faults: each one is injected, held for a while, healed, and recorded with its start and
//! end on the run's clock. A fault always heals itself before `inject` returns (the member is
//! back, the links are whole), so the run never ends with one still in place.
//!
//! Targets are chosen at injection time from the cluster as it is then (the current leader,
//! a random member, a random minority), with the run's seeded random generator.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::apiserver::Apiserver;
use crate::cluster::{Cluster, DEADLINE};
use crate::history::{Clock, FaultRecord, Recorder};
use crate::net::LinkFault;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of the leader, restarted after a while.
    LeaderKill,
    /// kill -9 of a random member, restarted after a while.
    RandomKill,
    /// SIGSTOP of the leader (or, now and then, of a follower) for longer than an election
    /// timeout, then SIGCONT.
    Pause,
    /// The leader cut off from every peer in both directions.
    IsolateLeader,
    /// The leader's messages to its peers are dropped; theirs still reach it.
    LeaderCannotSend,
    /// The peers' messages to the leader are dropped; the leader's still reach them.
    LeaderCannotHear,
    /// A random minority (possibly with the leader) cut off from the majority.
    SplitMinority,
    /// Delay, jitter and packet loss on every peer link.
    FlakyNetwork,
    /// A member removed, stopped, its data wiped, added back and started empty.
    MemberReplace,
    /// Every member restarted in turn (SIGTERM and kill -9 alternately).
    RollingRestart,
    /// kill -9 of the apiserver under load, restarted.
    ApiserverKill,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::LeaderKill => "leader-kill",
            Fault::RandomKill => "random-kill",
            Fault::Pause => "pause",
            Fault::IsolateLeader => "partition-leader",
            Fault::LeaderCannotSend => "one-way-leader-out",
            Fault::LeaderCannotHear => "one-way-leader-in",
            Fault::SplitMinority => "partition-minority",
            Fault::FlakyNetwork => "flaky-network",
            Fault::MemberReplace => "member-replace",
            Fault::RollingRestart => "rolling-restart",
            Fault::ApiserverKill => "apiserver-kill",
        }
    }
}

/// What injecting faults needs.
pub struct Injector<'a> {
    pub cluster: &'a mut Cluster,
    pub apiserver: Option<&'a mut Apiserver>,
    pub clock: Clock,
    pub rec: Recorder,
    pub rng: StdRng,
    /// Shortest and longest time a fault is held.
    pub hold: (Duration, Duration),
    /// The cluster's election timeout (faults meant to cause an election outlast it).
    pub election_timeout: Duration,
    /// A line describing what is going on now, for the progress display.
    pub now: std::sync::Arc<parking_lot::Mutex<String>>,
}

impl Injector<'_> {
    fn hold_time(&mut self) -> Duration {
        let (lo, hi) = self.hold;
        lo + hi.saturating_sub(lo).mul_f64(self.rng.random::<f64>())
    }

    fn begin(&self, kind: Fault, target: String, members: Vec<usize>) -> usize {
        *self.now.lock() = format!("{} {target}", kind.name());
        let start = self.clock.now();
        self.rec.with(|h| {
            h.faults.push(FaultRecord {
                kind: kind.name().into(),
                target,
                start,
                end: None,
                members,
            });
            h.faults.len() - 1
        })
    }

    /// The fault is in effect from now (after the kill, signal or route change took effect), so
    /// recovery is measured from when it really started.
    fn in_effect(&self, idx: usize) {
        let now = self.clock.now();
        self.rec.with(|h| h.faults[idx].start = now);
    }

    fn end(&self, idx: usize) {
        let end = self.clock.now();
        self.rec.with(|h| h.faults[idx].end = Some(end));
        self.now.lock().clear();
    }

    fn name(&self, i: usize) -> String {
        self.cluster.members[i].name.clone()
    }

    /// Waits until every member is healthy (the state each fault starts from).
    pub async fn settle(&mut self) -> Result<(), String> {
        let all: Vec<usize> = (0..self.cluster.len()).collect();
        self.cluster.wait_healthy(&all, DEADLINE * 2).await?;
        self.cluster.wait_leader(DEADLINE).await.map(|_| ())
    }

    async fn leader(&mut self) -> Result<usize, String> {
        self.cluster.wait_leader(DEADLINE).await
    }

    /// Injects `kind`, holds it, heals it.
    pub async fn inject(&mut self, kind: Fault) -> Result<(), String> {
        match kind {
            Fault::LeaderKill | Fault::RandomKill => {
                let i = if kind == Fault::LeaderKill {
                    self.leader().await?
                } else {
                    self.rng.random_range(0..self.cluster.len())
                };
                let f = self.begin(kind, self.name(i), vec![i]);
                self.cluster.kill9(i);
                self.in_effect(f);
                let hold = self.hold_time();
                tokio::time::sleep(hold).await;
                self.cluster.spawn(i)?;
                self.cluster.wait_healthy(&[i], DEADLINE * 2).await?;
                self.end(f);
            }
            Fault::Pause => {
                let leader = self.leader().await?;
                let i = if self.rng.random_bool(0.75) {
                    leader
                } else {
                    self.rng.random_range(0..self.cluster.len())
                };
                let f = self.begin(kind, self.name(i), vec![i]);
                self.cluster.pause(i)?;
                self.in_effect(f);
                let hold = self.hold_time().max(self.election_timeout * 2);
                tokio::time::sleep(hold).await;
                self.cluster.resume(i)?;
                self.end(f);
            }
            Fault::IsolateLeader | Fault::LeaderCannotSend | Fault::LeaderCannotHear => {
                let l = self.leader().await?;
                let n = self.cluster.len();
                let f = self.begin(kind, self.name(l), vec![l]);
                for j in (0..n).filter(|j| *j != l) {
                    if kind != Fault::LeaderCannotHear {
                        self.cluster.net.set(l, j, LinkFault::Cut)?;
                    }
                    if kind != Fault::LeaderCannotSend {
                        self.cluster.net.set(j, l, LinkFault::Cut)?;
                    }
                }
                self.in_effect(f);
                let hold = self.hold_time().max(self.election_timeout * 2);
                tokio::time::sleep(hold).await;
                self.cluster.net.heal(n)?;
                self.end(f);
            }
            Fault::SplitMinority => {
                let n = self.cluster.len();
                let leader = self.leader().await?;
                let mut others: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
                others.shuffle(&mut self.rng);
                let size = (n - 1) / 2;
                let mut minority: Vec<usize> = if self.rng.random_bool(0.5) {
                    std::iter::once(leader)
                        .chain(others.into_iter().take(size - 1))
                        .collect()
                } else {
                    others.into_iter().take(size).collect()
                };
                minority.sort();
                let names: Vec<String> = minority.iter().map(|i| self.name(*i)).collect();
                let f = self.begin(
                    kind,
                    format!("{} | rest", names.join(",")),
                    minority.clone(),
                );
                for &a in &minority {
                    for b in (0..n).filter(|b| !minority.contains(b)) {
                        self.cluster.net.set(a, b, LinkFault::Cut)?;
                        self.cluster.net.set(b, a, LinkFault::Cut)?;
                    }
                }
                self.in_effect(f);
                let hold = self.hold_time().max(self.election_timeout * 2);
                tokio::time::sleep(hold).await;
                self.cluster.net.heal(n)?;
                self.end(f);
            }
            Fault::FlakyNetwork => {
                if !self.cluster.net.supports_slow_links() {
                    return Err("flaky-network needs slow links, which this network mode cannot make (no netem in this kernel); use --network proxy".into());
                }
                let n = self.cluster.len();
                let delay = Duration::from_millis(self.rng.random_range(10..=80));
                let jitter = Duration::from_millis(self.rng.random_range(0..=40));
                let loss = self.rng.random_range(0.0..0.15);
                let f = self.begin(
                    kind,
                    format!(
                        "all links: delay {delay:?} ± {jitter:?}, loss {:.0}%",
                        loss * 100.0
                    ),
                    vec![],
                );
                for a in 0..n {
                    for b in (0..n).filter(|b| *b != a) {
                        self.cluster.net.set(
                            a,
                            b,
                            LinkFault::Slow {
                                delay,
                                jitter,
                                loss,
                            },
                        )?;
                    }
                }
                self.in_effect(f);
                let hold = self.hold_time() * 2;
                tokio::time::sleep(hold).await;
                self.cluster.net.heal(n)?;
                self.end(f);
            }
            Fault::MemberReplace => self.replace().await?,
            Fault::RollingRestart => {
                for i in 0..self.cluster.len() {
                    let graceful = i % 2 == 0;
                    let f = self.begin(
                        kind,
                        format!(
                            "{} ({})",
                            self.name(i),
                            if graceful { "SIGTERM" } else { "kill -9" }
                        ),
                        vec![i],
                    );
                    if graceful {
                        self.cluster.terminate(i).await;
                    } else {
                        self.cluster.kill9(i);
                    }
                    self.in_effect(f);
                    self.cluster.spawn(i)?;
                    self.cluster.wait_healthy(&[i], DEADLINE * 2).await?;
                    self.end(f);
                    self.settle().await?;
                }
            }
            Fault::ApiserverKill => {
                let Some(api) = self.apiserver.as_deref_mut() else {
                    return Err("apiserver-kill needs Kubernetes traffic (--kube)".into());
                };
                *self.now.lock() = "apiserver-kill".into();
                let start = self.clock.now();
                let f = self.rec.with(|h| {
                    h.faults.push(FaultRecord {
                        kind: kind.name().into(),
                        target: "apiserver".into(),
                        start,
                        end: None,
                        members: vec![],
                    });
                    h.faults.len() - 1
                });
                api.kill9();
                let now = self.clock.now();
                self.rec.with(|h| h.faults[f].start = now);
                let hold = self.hold.0;
                tokio::time::sleep(hold).await;
                api.start().await?;
                self.end(f);
            }
        }
        Ok(())
    }

    /// Remove, stop, wipe, add back, start empty: the member returns with a new id and catches
    /// up from a snapshot.
    async fn replace(&mut self) -> Result<(), String> {
        let n = self.cluster.len();
        let i = self.rng.random_range(0..n);
        let f = self.begin(Fault::MemberReplace, self.name(i), vec![i]);
        let via = |skip: usize, k: usize| (skip + 1 + k % (n - 1)) % n;
        let mut attempt = 0;
        loop {
            match self.cluster.member_remove(via(i, attempt), i).await {
                Ok(()) => break,
                // A remove that timed out may have been applied.
                Err(_) if matches!(self.cluster.member_id(via(i, attempt), i).await, Ok(None)) => {
                    break
                }
                Err(e) if attempt < 20 => {
                    tracing::debug!(error = e, "member remove failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("remove {}: {e}", self.name(i))),
            }
        }
        self.cluster.wipe(i)?;
        let mut attempt = 0;
        loop {
            match self.cluster.member_add(via(i, attempt), i).await {
                Ok(_) => break,
                Err(_)
                    if matches!(
                        self.cluster.member_id(via(i, attempt), i).await,
                        Ok(Some(_))
                    ) =>
                {
                    break
                }
                Err(e) if attempt < 20 => {
                    tracing::debug!(error = e, "member add failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("add {} back: {e}", self.name(i))),
            }
        }
        self.cluster.spawn(i)?;
        self.cluster.wait_healthy(&[i], DEADLINE * 3).await?;
        self.end(f);
        Ok(())
    }
}
