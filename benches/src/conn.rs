//! Connections to the servers under test: etcd's global flags (`--endpoints`, `--conns`,
//! `--dial-timeout`, `--target-leader`, `--cacert`/`--cert`/`--key`).
//!
//! `--conns` gRPC connections (HTTP/2 channels) are opened round-robin over the endpoints and
//! shared by `--clients` clients, as etcd's tool does, so the same flags put the same pressure on
//! either server. With `--target-leader` only the leader's endpoint is used: the tool asks each
//! endpoint's Maintenance.Status for the leader and keeps the one whose member id matches.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use strata_proto::etcdserverpb::{maintenance_client::MaintenanceClient, StatusRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The flags every subcommand shares.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Comma-separated gRPC endpoints (host:port, http://host:port or https://host:port).
    #[arg(
        long,
        default_value = "127.0.0.1:2379",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,
    /// Total number of gRPC connections.
    #[arg(long, default_value_t = 1, global = true)]
    pub conns: usize,
    /// Total number of concurrent clients.
    #[arg(long, default_value_t = 1, global = true)]
    pub clients: usize,
    /// Connect only to the leader.
    #[arg(long, global = true)]
    pub target_leader: bool,
    /// Dial timeout for client connections, in seconds.
    #[arg(long, default_value_t = 10, global = true)]
    pub dial_timeout: u64,
    /// Verify certificates of HTTPS servers with this CA bundle (endpoints become https).
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// Identify this client with this certificate (with --key).
    #[arg(long = "cert", id = "tls_cert", global = true, requires = "tls_key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long = "key", id = "tls_key", global = true, requires = "tls_cert")]
    pub key: Option<PathBuf>,
}

impl ConnArgs {
    fn tls(&self) -> Result<Option<ClientTlsConfig>, String> {
        if self.cacert.is_none() && self.cert.is_none() {
            return Ok(None);
        }
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.cacert {
            let pem = std::fs::read(ca).map_err(|e| format!("--cacert {}: {e}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(c), Some(k)) = (&self.cert, &self.key) {
            let cert = std::fs::read(c).map_err(|e| format!("--cert {}: {e}", c.display()))?;
            let key = std::fs::read(k).map_err(|e| format!("--key {}: {e}", k.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Ok(Some(tls))
    }

    /// The endpoint as a URL: a bare host:port is http, or https when TLS flags are given.
    fn url(&self, ep: &str) -> String {
        if ep.starts_with("http://") || ep.starts_with("https://") {
            ep.to_string()
        } else if self.cacert.is_some() || self.cert.is_some() {
            format!("https://{ep}")
        } else {
            format!("http://{ep}")
        }
    }

    async fn dial(&self, ep: &str) -> Result<Channel, String> {
        let url = self.url(ep);
        let mut e = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("bad endpoint {ep}: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(self.dial_timeout.max(1)))
            // Large fixed windows, so a connection carrying many watch streams is not held back
            // by flow control. Not hyper's adaptive window: its BDP pings make etcd's (Go) server
            // close the connection for "too many pings" (GOAWAY ENHANCE_YOUR_CALM).
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20));
        if let Some(tls) = self.tls()? {
            e = e
                .tls_config(tls)
                .map_err(|e| format!("TLS for {url}: {e}"))?;
        }
        e.connect()
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))
    }

    /// The endpoints to use: all of them, or only the leader's with `--target-leader`.
    pub async fn targets(&self) -> Result<Vec<String>, String> {
        if self.endpoints.is_empty() {
            return Err("--endpoints is empty".into());
        }
        if !self.target_leader {
            return Ok(self.endpoints.clone());
        }
        Ok(vec![self.leader().await?])
    }

    /// The endpoint whose member reports itself the leader.
    pub async fn leader(&self) -> Result<String, String> {
        for ep in &self.endpoints {
            let Ok(ch) = self.dial(ep).await else {
                continue;
            };
            let Ok(st) = MaintenanceClient::new(ch).status(StatusRequest {}).await else {
                continue;
            };
            let st = st.into_inner();
            let member = st.header.as_ref().map_or(0, |h| h.member_id);
            if st.leader != 0 && st.leader == member {
                return Ok(ep.clone());
            }
        }
        Err(format!(
            "no endpoint of {} reports itself leader",
            self.endpoints.join(",")
        ))
    }

    /// `count` connections, round-robin over the targets.
    pub async fn channels(&self, count: usize) -> Result<Vec<Channel>, String> {
        let targets = self.targets().await?;
        let mut out = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            out.push(self.dial(&targets[i % targets.len()]).await?);
        }
        Ok(out)
    }

    /// `--conns` connections.
    pub async fn connect(&self) -> Result<Vec<Channel>, String> {
        self.channels(self.conns).await
    }
}

/// A gRPC status as the error distribution shows it (etcd prints the error string).
pub fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}
