//! Leader election through a coordination.k8s.io/v1 Lease, as client-go's `leaderelection`
//! package does it, so two schedulers (or controller-managers) can run and one acts.
//!
//! A candidate reads the Lease every retry period. It takes the Lease when there is none, when
//! it holds it already, or when the holder has not renewed it for the lease duration. Expiry is
//! judged by when *this* candidate last saw the record change, on its own clock, never by the
//! holder's timestamps, so clock skew between machines cannot hand the Lease to two holders.
//! Every write carries the resourceVersion read, so of two candidates racing only one wins.
//!
//! The leader renews every retry period; if it cannot renew within the renew deadline it stops
//! leading (its work is stopped and awaited before it competes again), which leaves the other
//! candidates `lease duration - renew deadline` of margin before they may take over. On a
//! clean shutdown the leader releases the Lease (empty holder, one-second duration) so a
//! standby takes over at once.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

/// Flags of the real components (`--leader-elect-*`), and their defaults.
#[derive(clap::Args, Clone, Debug)]
pub struct LeaderElectionFlags {
    /// Run leader election; only the holder of the Lease acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long a non-leader waits after the last observed renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Namespace of the Lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

/// Parses "15s", "500ms", "2m", "1h" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 15s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unit must be ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One election: which Lease, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Election {
    pub fn from_flags(flags: &LeaderElectionFlags, name: &str, identity: &str) -> Election {
        Election {
            namespace: flags.leader_elect_resource_namespace.clone(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: flags.leader_elect_lease_duration,
            renew_deadline: flags.leader_elect_renew_deadline,
            retry_period: flags.leader_elect_retry_period,
        }
    }
}

/// A process-unique identity: the host name and a random suffix (client-go's `id_uuid`).
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "strata".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// What the candidate knows of the Lease between two reads.
#[derive(Default)]
struct Observed {
    /// (holder, renewTime, leaseTransitions) when last read.
    record: Option<(String, String, i32)>,
    /// When the record was last seen to change, on our clock.
    changed_at: Option<Instant>,
}

/// Whether `me` may write the Lease now, given what was read and when it last changed.
fn may_take(
    spec: &LeaseSpec,
    me: &str,
    changed_at: Instant,
    now: Instant,
    fallback: Duration,
) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == me {
        return true;
    }
    let duration = spec
        .lease_duration_seconds
        .filter(|d| *d > 0)
        .map(|d| Duration::from_secs(d as u64))
        .unwrap_or(fallback);
    now >= changed_at + duration
}

fn micro_now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn duration_secs(d: Duration) -> i32 {
    d.as_secs().clamp(1, i32::MAX as u64) as i32
}

/// One attempt to acquire or renew; Ok(true) if we hold the Lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    e: &Election,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
    let now = Instant::now();
    let current = api.get_opt(&e.name).await?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(e.name.clone()),
                namespace: Some(e.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(e.identity.clone()),
                lease_duration_seconds: Some(duration_secs(e.lease_duration)),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(err) => Err(err),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let record = (
        spec.holder_identity.clone().unwrap_or_default(),
        spec.renew_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0),
    );
    if observed.record.as_ref() != Some(&record) {
        observed.record = Some(record);
        observed.changed_at = Some(now);
    }
    let changed_at = observed.changed_at.unwrap_or(now);
    if !may_take(&spec, &e.identity, changed_at, now, e.lease_duration) {
        return Ok(false);
    }
    let ours = spec.holder_identity.as_deref() == Some(e.identity.as_str());
    let mut new_spec = spec.clone();
    new_spec.holder_identity = Some(e.identity.clone());
    new_spec.lease_duration_seconds = Some(duration_secs(e.lease_duration));
    new_spec.renew_time = Some(micro_now());
    if !ours {
        new_spec.acquire_time = Some(micro_now());
        let had_holder = spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty());
        new_spec.lease_transitions =
            Some(spec.lease_transitions.unwrap_or(0) + i32::from(had_holder));
    }
    lease.spec = Some(new_spec);
    match api.replace(&e.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Gives the Lease up if we hold it, so a standby can take over at once.
async fn release(api: &Api<Lease>, e: &Election) {
    let Ok(Some(mut lease)) = api.get_opt(&e.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(e.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(micro_now());
    spec.acquire_time = Some(micro_now());
    match api.replace(&e.name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(lease = %e.name, "released the lease"),
        Err(err) => tracing::warn!(lease = %e.name, error = %err, "could not release the lease"),
    }
}

/// Runs `lead` while this candidate holds the Lease, until `shutdown` turns true. `lead` gets
/// a receiver that turns true when leadership is lost or the process stops; it must return
/// soon after. When leadership is lost the candidate competes again.
pub async fn run<F, Fut>(
    client: Client,
    e: Election,
    mut shutdown: watch::Receiver<bool>,
    mut lead: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &e.namespace);
    let mut observed = Observed::default();
    tracing::info!(lease = %format!("{}/{}", e.namespace, e.name), identity = %e.identity, "attempting to acquire the leader lease");
    loop {
        // Candidate: try every retry period (with client-go's jitter of up to 20%).
        loop {
            if crate::stopped(&shutdown) {
                return;
            }
            match try_acquire_or_renew(&api, &e, &mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => tracing::debug!(error = %err, "leader election: lease not readable"),
            }
            let jitter = e.retry_period.mul_f64(rand::random::<f64>() * 0.2);
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(e.retry_period + jitter) => {}
            }
        }
        tracing::info!(lease = %e.name, identity = %e.identity, "acquired the leader lease; leading");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut work = tokio::spawn(lead(stop_rx));
        let mut last_renew = Instant::now();
        let mut finished = false;
        let stopping = loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break true,
                _ = &mut work => { finished = true; break true },
                _ = tokio::time::sleep(e.retry_period) => {}
            }
            let attempt = tokio::time::timeout(
                e.renew_deadline.saturating_sub(last_renew.elapsed()),
                try_acquire_or_renew(&api, &e, &mut observed),
            )
            .await;
            match attempt {
                Ok(Ok(true)) => last_renew = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %e.name, "another candidate holds the lease; stopped leading");
                    break false;
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "lease renewal failed"),
                Err(_) => {}
            }
            if last_renew.elapsed() >= e.renew_deadline {
                tracing::warn!(lease = %e.name, "could not renew the lease within the renew deadline; stopped leading");
                break false;
            }
        };
        stop_tx.send_replace(true);
        if !finished {
            let _ = (&mut work).await;
        }
        if stopping {
            release(&api, &e).await;
            return;
        }
        observed = Observed::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(holder: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(secs),
            ..Default::default()
        }
    }

    #[test]
    fn a_held_lease_is_taken_only_after_its_duration_since_the_last_observed_change() {
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        let s = spec("other", 15);
        assert!(!may_take(&s, "me", t0, t0, d));
        assert!(!may_take(&s, "me", t0, t0 + Duration::from_secs(14), d));
        assert!(may_take(&s, "me", t0, t0 + Duration::from_secs(15), d));
        // Our own or an empty (released) lease can always be written.
        assert!(may_take(&spec("me", 15), "me", t0, t0, d));
        assert!(may_take(&spec("", 1), "me", t0, t0, d));
        // The record's duration wins over ours.
        assert!(may_take(
            &spec("other", 2),
            "me",
            t0,
            t0 + Duration::from_secs(2),
            d
        ));
    }

    #[test]
    fn durations_parse_like_the_components_flags() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
