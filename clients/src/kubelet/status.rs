//! The pod status a kubelet reports, computed from its containers' statuses as the real
//! kubelet does: the phase (`getPhase`), the conditions PodReadyToStartContainers,
//! Initialized, ContainersReady, Ready and PodScheduled, with Kubernetes' reasons and
//! messages, keeping each condition's transition time while its status holds.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::runtime::Exit;

pub fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    }
}

pub fn running(started: &Time) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(started.clone()),
        }),
        ..Default::default()
    }
}

pub fn terminated(exit: &Exit, started: Option<Time>, finished: &Time, id: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: exit.code,
            signal: exit.signal,
            reason: Some(exit.reason().to_string()),
            started_at: started,
            finished_at: Some(finished.clone()),
            container_id: Some(id.to_string()),
            message: None,
        }),
        ..Default::default()
    }
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn exit_code(state: Option<&ContainerState>) -> Option<i32> {
    state
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Kubernetes' `getPhase` for the app containers once init containers are done.
pub fn phase(
    restart_policy: &str,
    init_done: bool,
    init_failed: bool,
    statuses: &[ContainerStatus],
) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        if is_running(s) {
            running += 1;
        } else if let Some(code) = exit_code(s.state.as_ref()) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if let Some(code) = exit_code(s.last_state.as_ref()) {
            // Waiting to restart after having run.
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if restart_policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if restart_policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn condition(
    prev: &[PodCondition],
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if status { "True" } else { "False" };
    let old = prev.iter().find(|c| c.type_ == type_);
    let since = old
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's conditions. `pending_init` are init containers not yet completed, `unready`
/// app containers not ready; `terminal` is a Succeeded or Failed phase.
pub fn conditions(
    prev: &[PodCondition],
    pending_init: &[String],
    unready: &[String],
    terminal: bool,
    now: &Time,
) -> Vec<PodCondition> {
    let mut out = Vec::new();
    out.push(condition(
        prev,
        "PodReadyToStartContainers",
        !terminal,
        None,
        None,
        now,
    ));
    if pending_init.is_empty() {
        out.push(condition(prev, "Initialized", true, None, None, now));
    } else {
        out.push(condition(
            prev,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                pending_init.join(" ")
            )),
            now,
        ));
    }
    let (ready, reason, message) = if terminal {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    out.push(condition(
        prev,
        "ContainersReady",
        ready,
        reason,
        message.clone(),
        now,
    ));
    out.push(condition(prev, "Ready", ready, reason, message, now));
    let scheduled = prev
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition(prev, "PodScheduled", true, None, None, now));
    out.push(scheduled);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cs(state: ContainerState, last: Option<ContainerState>) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            state: Some(state),
            last_state: last,
            ..Default::default()
        }
    }

    fn t() -> Time {
        crate::pod::now()
    }

    fn done(code: i32) -> ContainerState {
        terminated(&Exit { code, signal: None }, None, &t(), "x")
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let run = cs(running(&t()), None);
        let wait = cs(waiting("ContainerCreating", None), None);
        let crash = cs(waiting("CrashLoopBackOff", None), Some(done(1)));
        let cases = [
            ("Always", vec![wait.clone()], "Pending"),
            ("Always", vec![run.clone(), wait.clone()], "Pending"),
            ("Always", vec![run.clone()], "Running"),
            ("Always", vec![cs(done(0), None)], "Running"),
            ("Always", vec![crash.clone()], "Running"),
            ("OnFailure", vec![cs(done(0), None)], "Succeeded"),
            ("OnFailure", vec![crash.clone()], "Running"),
            (
                "Never",
                vec![cs(done(0), None), cs(done(0), None)],
                "Succeeded",
            ),
            (
                "Never",
                vec![cs(done(0), None), cs(done(2), None)],
                "Failed",
            ),
            ("Never", vec![run.clone(), cs(done(2), None)], "Running"),
        ];
        for (policy, statuses, want) in cases {
            assert_eq!(
                phase(policy, true, false, &statuses),
                want,
                "{policy} {statuses:?}"
            );
        }
        assert_eq!(
            phase("Always", false, false, std::slice::from_ref(&run)),
            "Pending"
        );
        assert_eq!(phase("Never", false, true, &[]), "Failed");
    }

    #[test]
    fn conditions_carry_reasons_and_keep_transition_times() {
        let early: Time = Time("2024-01-01T00:00:00Z".parse().unwrap());
        let c = conditions(
            &[],
            &["init".into()],
            &["a".into(), "b".into()],
            false,
            &early,
        );
        let get = |cs: &[PodCondition], t: &str| cs.iter().find(|c| c.type_ == t).cloned().unwrap();
        assert_eq!(
            get(&c, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [init]")
        );
        assert_eq!(
            get(&c, "Ready").message.as_deref(),
            Some("containers with unready status: [a b]")
        );
        assert_eq!(get(&c, "PodScheduled").status, "True");
        let later = t();
        let c2 = conditions(&c, &[], &["a".into()], false, &later);
        assert_eq!(
            get(&c2, "Initialized").last_transition_time,
            Some(later.clone())
        );
        assert_eq!(get(&c2, "Ready").last_transition_time, Some(early.clone()));
        assert_eq!(
            get(&c2, "PodReadyToStartContainers").last_transition_time,
            Some(early)
        );
        let c3 = conditions(&c2, &[], &[], false, &later);
        assert_eq!(get(&c3, "Ready").status, "True");
        let end = conditions(&c3, &[], &[], true, &later);
        assert_eq!(get(&end, "Ready").reason.as_deref(), Some("PodCompleted"));
    }
}
