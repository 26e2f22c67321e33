//! `strata store` flags. Names, meanings and defaults follow etcd's, so etcd users' habits and
//! scripts carry over.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfig {
    /// Human-readable name for this member; must appear in --initial-cluster.
    #[arg(long, default_value = "default")]
    pub name: String,

    /// Path to the data directory (RocksDB: MVCC history, Raft log, leases).
    #[arg(long, default_value = "default.strata")]
    pub data_dir: PathBuf,

    /// Comma-separated URLs to listen on for client traffic (gRPC, /metrics, /health).
    /// https:// URLs are served with --cert-file/--key-file.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    pub listen_client_urls: Vec<String>,

    /// Client URLs to advertise to the rest of the cluster and to clients (MemberList).
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    pub advertise_client_urls: Vec<String>,

    /// Comma-separated URLs to listen on for peer (Raft) traffic.
    #[arg(long, default_value = "http://127.0.0.1:2380", value_delimiter = ',')]
    pub listen_peer_urls: Vec<String>,

    /// This member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, default_value = "http://127.0.0.1:2380", value_delimiter = ',')]
    pub initial_advertise_peer_urls: Vec<String>,

    /// Initial cluster configuration for bootstrapping: name=peerURL,name=peerURL,...
    /// Defaults to this member alone.
    #[arg(long, default_value = "")]
    pub initial_cluster: String,

    /// Initial cluster state: `new` to bootstrap, `existing` to join a running cluster.
    #[arg(long, default_value = "new", value_parser = ["new", "existing"])]
    pub initial_cluster_state: String,

    /// Initial cluster token; distinguishes clusters bootstrapped with the same member URLs.
    #[arg(long, default_value = "strata-cluster")]
    pub initial_cluster_token: String,

    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,

    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,

    /// Number of committed transactions after which the Raft log is compacted.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_count: u64,

    /// Entries kept in the log after a compaction, so slow followers catch up from the log
    /// rather than from a snapshot.
    #[arg(long = "experimental-snapshot-catchup-entries", default_value_t = 5000)]
    pub snapshot_catchup_entries: u64,

    /// Raise the NOSPACE alarm when the backend size exceeds this many bytes (0 = 2 GiB default).
    #[arg(long, default_value_t = 0)]
    pub quota_backend_bytes: u64,

    /// Maximum client request size in bytes the server will accept.
    #[arg(long, default_value_t = 1_572_864)]
    pub max_request_bytes: usize,

    /// Maximum number of operations permitted in a transaction.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,

    /// Auto compaction retention: a duration ("1h", "30m", "90s"; a bare number means hours) in
    /// periodic mode, or a revision count in revision mode. 0 disables auto compaction.
    #[arg(long, default_value = "0")]
    pub auto_compaction_retention: String,

    /// Interpret --auto-compaction-retention as a duration (`periodic`) or a revision count (`revision`).
    #[arg(long, default_value = "periodic", value_parser = ["periodic", "revision"])]
    pub auto_compaction_mode: String,

    /// Extra URLs to serve /metrics and /health on (plain HTTP), besides the client URLs.
    #[arg(long, value_delimiter = ',')]
    pub listen_metrics_urls: Vec<String>,

    /// Interval of progress notifications for watchers that asked for them.
    #[arg(
        long = "experimental-watch-progress-notify-interval",
        default_value = "10m"
    )]
    pub watch_progress_notify_interval: String,

    /// Longest a member polls, rather than sleeps, for the answer to a lone client's write and
    /// (a one-member cluster) for that client's next write, while such answers come back to
    /// back within it: saves thread wake-ups on a one-client write path, at the cost of CPU
    /// while it polls. A duration ("1ms", "500us"; a bare number means microseconds); 0 turns
    /// it off.
    #[arg(long = "experimental-busy-poll", default_value = "1ms")]
    pub busy_poll: String,

    /// Path to the client server TLS certificate file.
    #[arg(long, default_value = "")]
    pub cert_file: String,

    /// Path to the client server TLS key file.
    #[arg(long, default_value = "")]
    pub key_file: String,

    /// Path to the client server TLS trusted CA certificate file (verifies client certificates).
    #[arg(long, default_value = "")]
    pub trusted_ca_file: String,

    /// Require client certificates signed by --trusted-ca-file.
    #[arg(long, default_value_t = false)]
    pub client_cert_auth: bool,

    /// Path to the peer server TLS certificate file (also this member's client certificate when
    /// it connects to https peer URLs).
    #[arg(long, default_value = "")]
    pub peer_cert_file: String,

    /// Path to the peer server TLS key file.
    #[arg(long, default_value = "")]
    pub peer_key_file: String,

    /// Path to the peer TLS trusted CA file: verifies other members' certificates.
    #[arg(long, default_value = "")]
    pub peer_trusted_ca_file: String,

    /// Require peers to present certificates signed by --peer-trusted-ca-file.
    #[arg(long, default_value_t = false)]
    pub peer_client_cert_auth: bool,

    /// Experimental, for fault injection (`strata chaos`): ADVERTISED_PEER_URL=DIAL_URL, comma
    /// separated; this member dials DIAL_URL whenever it would connect to a peer advertised at
    /// ADVERTISED_PEER_URL (so each directed peer link can go through its own proxy).
    #[arg(
        long = "experimental-peer-dial-url",
        value_delimiter = ',',
        hide = true
    )]
    pub peer_dial_urls: Vec<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            cfg: StoreConfig,
        }
        Wrapper::parse_from(["strata"]).cfg
    }
}

/// Parses etcd-style durations: "1h", "30m", "90s", "500ms", or a bare number of `unit`s.
pub fn parse_duration(s: &str, unit: Duration) -> Result<Duration> {
    let s = s.trim();
    let bad = || Error::InvalidArgument(format!("invalid duration {s:?}"));
    if let Ok(n) = s.parse::<u64>() {
        return Ok(unit * n as u32);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (num, suffix) = s.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let secs = match suffix {
        "us" | "µs" => num / 1_000_000.0,
        "ms" => num / 1000.0,
        "s" => num,
        "m" => num * 60.0,
        "h" => num * 3600.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// A listen or advertise URL split into scheme and host:port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenUrl {
    pub tls: bool,
    pub host_port: String,
}

pub fn parse_url(u: &str) -> Result<ListenUrl> {
    let bad = || {
        Error::InvalidArgument(format!(
            "invalid URL {u:?} (want http://host:port or https://host:port)"
        ))
    };
    let (tls, rest) = if let Some(r) = u.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = u.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(bad());
    };
    let host_port = rest.trim_end_matches('/').to_string();
    if host_port.is_empty() || !host_port.contains(':') {
        return Err(bad());
    }
    Ok(ListenUrl { tls, host_port })
}

impl StoreConfig {
    /// The initial cluster as (name, peer URLs), defaulting to this member alone.
    pub fn initial_members(&self) -> Result<Vec<(String, Vec<String>)>> {
        if self.initial_cluster.trim().is_empty() {
            return Ok(vec![(
                self.name.clone(),
                self.initial_advertise_peer_urls.clone(),
            )]);
        }
        let mut members: Vec<(String, Vec<String>)> = Vec::new();
        for part in self.initial_cluster.split(',') {
            let (name, url) = part.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("--initial-cluster entry {part:?} is not name=url"))
            })?;
            parse_url(url)?;
            match members.iter_mut().find(|(n, _)| n == name) {
                Some((_, urls)) => urls.push(url.to_string()),
                None => members.push((name.to_string(), vec![url.to_string()])),
            }
        }
        if !members.iter().any(|(n, _)| *n == self.name) {
            return Err(Error::InvalidArgument(format!(
                "--initial-cluster has no entry for this member's --name {:?}",
                self.name
            )));
        }
        Ok(members)
    }

    pub fn quota_bytes(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            2 << 30
        } else {
            self.quota_backend_bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_urls() {
        assert_eq!(
            parse_duration("2", Duration::from_secs(3600)).expect("hours"),
            Duration::from_secs(7200)
        );
        assert_eq!(
            parse_duration("90s", Duration::from_secs(1)).expect("secs"),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("500ms", Duration::from_secs(1)).expect("ms"),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("250us", Duration::from_secs(1)).expect("us"),
            Duration::from_micros(250)
        );
        assert!(parse_duration("5x", Duration::from_secs(1)).is_err());
        assert_eq!(
            parse_url("https://127.0.0.1:2379").expect("url"),
            ListenUrl {
                tls: true,
                host_port: "127.0.0.1:2379".into()
            }
        );
        assert!(parse_url("127.0.0.1:2379").is_err());
        let cfg = StoreConfig {
            initial_cluster: "a=http://x:1,b=http://y:2".into(),
            ..Default::default()
        };
        assert!(
            cfg.initial_members().is_err(),
            "--name default is not listed"
        );
        let cfg = StoreConfig {
            name: "a".into(),
            ..cfg
        };
        assert_eq!(cfg.initial_members().expect("members").len(), 2);
    }
}
