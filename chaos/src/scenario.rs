//! Scenarios: which faults a run injects, in what order.
//!
//! Each scenario cycles through its faults until the run's duration is used up; `all` takes
//! every fault the run can make, shuffled, in rounds. Between faults the cluster is left to
//! settle (every member healthy, a leader) for a moment, so each fault starts from a working
//! cluster and its recovery time is its own.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::faults::Fault;

pub const SCENARIOS: [&str; 9] = [
    "leader-kill",
    "random-kill",
    "pause",
    "partition-leader",
    "partition-minority",
    "flaky-network",
    "member-replace",
    "rolling-restart",
    "all",
];

/// The faults of scenario `name`; `kube` adds the apiserver kill to `all` (and allows the
/// `apiserver-kill` scenario).
pub fn faults(name: &str, kube: bool) -> Result<Vec<Fault>, String> {
    Ok(match name {
        "leader-kill" => vec![Fault::LeaderKill],
        "random-kill" => vec![Fault::RandomKill],
        "pause" => vec![Fault::Pause],
        "partition-leader" => vec![
            Fault::IsolateLeader,
            Fault::LeaderCannotSend,
            Fault::LeaderCannotHear,
        ],
        "partition-minority" => vec![Fault::SplitMinority],
        "flaky-network" => vec![Fault::FlakyNetwork],
        "member-replace" => vec![Fault::MemberReplace],
        "rolling-restart" => vec![Fault::RollingRestart],
        "apiserver-kill" if kube => vec![Fault::ApiserverKill],
        "apiserver-kill" => return Err("the apiserver-kill scenario needs --kube".into()),
        "all" => {
            let mut v = vec![
                Fault::LeaderKill,
                Fault::RandomKill,
                Fault::Pause,
                Fault::IsolateLeader,
                Fault::LeaderCannotSend,
                Fault::LeaderCannotHear,
                Fault::SplitMinority,
                Fault::FlakyNetwork,
                Fault::MemberReplace,
                Fault::RollingRestart,
            ];
            if kube {
                v.push(Fault::ApiserverKill);
            }
            v
        }
        other => {
            return Err(format!(
                "unknown scenario {other:?} (one of: {}, apiserver-kill)",
                SCENARIOS.join(", ")
            ))
        }
    })
}

/// An endless sequence of the scenario's faults: in order for one-fault scenarios, shuffled
/// rounds for `all`.
pub struct Schedule {
    faults: Vec<Fault>,
    round: Vec<Fault>,
    shuffle: bool,
}

impl Schedule {
    pub fn new(faults: Vec<Fault>, shuffle: bool) -> Self {
        Schedule {
            faults,
            round: Vec::new(),
            shuffle,
        }
    }

    pub fn next(&mut self, rng: &mut StdRng) -> Fault {
        if self.round.is_empty() {
            self.round = self.faults.clone();
            if self.shuffle {
                self.round.shuffle(rng);
            }
            self.round.reverse();
        }
        self.round.pop().expect("a scenario has at least one fault")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_scenario_has_faults_and_all_covers_them() {
        for s in SCENARIOS {
            assert!(!faults(s, false).expect(s).is_empty());
        }
        assert!(faults("nope", false).is_err());
        assert!(faults("apiserver-kill", false).is_err());
        let mut sched = Schedule::new(faults("all", true).expect("all"), true);
        let mut rng = StdRng::seed_from_u64(1);
        let round: std::collections::HashSet<&str> =
            (0..11).map(|_| sched.next(&mut rng).name()).collect();
        assert_eq!(round.len(), 11);
    }
}
