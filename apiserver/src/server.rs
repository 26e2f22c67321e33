//! `strata apiserver`: flags, TLS (a self-signed CA when no certificate is given), bootstrap
//! objects, and the HTTPS accept loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::auth::{self, Authenticator};
use crate::cache::Cache;
use crate::handlers::{self, Api, AuthorizationMode};
use crate::metrics::Metrics;
use crate::registry::{self, RESOURCES};
use crate::storage::{Store, StoreConfig, Written};

/// Flags, named as kube-apiserver's.
#[derive(clap::Args, Clone, Debug)]
pub struct ApiserverConfig {
    /// Store (etcd v3) client URLs, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub etcd_servers: Vec<String>,
    /// CA bundle to verify the store's serving certificate.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate presented to the store.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key presented to the store.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Deadline of one store request, in seconds.
    #[arg(long, default_value_t = 10)]
    pub etcd_request_timeout: u64,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// HTTPS port (0 picks a free one; the chosen port is logged).
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Serving certificate (PEM). Without it a CA and a certificate are generated in --cert-dir.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Where generated certificates are kept (ca.crt, apiserver.crt, apiserver.key).
    #[arg(long, default_value = ".strata/apiserver")]
    pub cert_dir: PathBuf,
    /// PEM files with the keys that verify bearer tokens (public keys, or private keys whose
    /// public half is used). Repeatable.
    #[arg(long, required = true)]
    pub service_account_key_file: Vec<PathBuf>,
    /// The `iss` every token must carry.
    #[arg(long, default_value = "https://strata.local")]
    pub service_account_issuer: String,
    /// Accepted token audiences (comma separated); defaults to the issuer.
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// RBAC or AlwaysAllow.
    #[arg(long, value_enum, default_value = "RBAC")]
    pub authorization_mode: AuthorizationMode,
    /// Events kept per resource for watches that resume from a resourceVersion; also the
    /// most a watcher may fall behind before it is closed.
    #[arg(long, default_value_t = 4096)]
    pub watch_cache_size: usize,
    /// Seconds between BOOKMARK events for watchers that allow them.
    #[arg(long, default_value_t = 60, hide = true)]
    pub watch_bookmark_interval: u64,
    /// Milliseconds a watcher waits after an event for more to send them in one write (0: send
    /// at once). Trades a little latency for far fewer TLS records and syscalls at high fan-out.
    #[arg(long, default_value_t = 0)]
    pub watch_coalesce_ms: u64,
}

/// The Kubernetes version Strata's API corresponds to.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0-strata.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// Paths of a generated serving setup.
pub struct GeneratedTls {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes (or reuses) a CA and a serving certificate for `hosts` in `dir`.
pub fn ensure_self_signed(dir: &Path, hosts: &[String]) -> Result<GeneratedTls, String> {
    let out = GeneratedTls {
        ca_cert: dir.join("ca.crt"),
        cert: dir.join("apiserver.crt"),
        key: dir.join("apiserver.key"),
    };
    if out.ca_cert.exists() && out.cert.exists() && out.key.exists() {
        return Ok(out);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("--cert-dir {}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "strata-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut names: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
    ];
    for h in hosts {
        if !names.contains(h) && h != "0.0.0.0" && h != "::" {
            names.push(h.clone());
        }
    }
    let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut leaf = rcgen::CertificateParams::new(names).map_err(err)?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "strata-apiserver");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    let write = |p: &Path, s: &str| {
        std::fs::write(p, s).map_err(|e| format!("writing {}: {e}", p.display()))
    };
    write(&out.ca_cert, &ca_cert.pem())?;
    write(&out.cert, &leaf_cert.pem())?;
    write(&out.key, &leaf_key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&out.key, std::fs::Permissions::from_mode(0o600));
    }
    Ok(out)
}

fn rustls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(|e| format!("{}: {e}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(|e| format!("{}: {e}", key.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", key.display()))?
    .ok_or_else(|| format!("{}: no private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Creates `obj` unless it exists (bootstrap namespaces and RBAC policy).
async fn ensure_object(store: &Store, mut obj: Value) -> Result<(), String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    let Some(res) = registry::by_kind(group, &kind) else {
        return Err(format!(
            "bootstrap object of unknown kind {api_version}/{kind}"
        ));
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let namespace = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    obj["metadata"]["creationTimestamp"] = json!(handlers::now());
    let obj = crate::validation::admit(&kind, obj, res.namespaced)
        .map_err(|_| format!("bootstrap {kind} {name} does not validate"))?;
    let bytes = Bytes::from(serde_json::to_vec(&obj).map_err(|e| e.to_string())?);
    match store
        .create(&res.key(&namespace, &name), bytes)
        .await
        .map_err(|e| e.to_string())?
    {
        Written::Ok(_) => {
            tracing::info!(kind, name, "created bootstrap object");
            Ok(())
        }
        Written::Conflict(_) => Ok(()),
    }
}

/// The namespaces every cluster has.
fn bootstrap_namespaces() -> Vec<Value> {
    ["default", "kube-system", "kube-public", "kube-node-lease"]
        .iter()
        .map(|n| json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": n } }))
        .collect()
}

/// Creates the bootstrap objects, retrying until the store answers, then waits until the
/// watch caches the authorizer reads have seen them, and only then reports ready (as
/// kube-apiserver's rbac/bootstrap-roles post-start hook does).
async fn bootstrap(
    store: Store,
    caches: Vec<Arc<Cache>>,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut objects = bootstrap_namespaces();
    objects.extend(auth::bootstrap_policy());
    let mut backoff = Duration::from_millis(100);
    for obj in objects {
        loop {
            match ensure_object(&store, obj.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bootstrap object not created yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
    loop {
        match store.current_revision().await {
            Ok(rev) => {
                let mut all = true;
                for c in &caches {
                    all &= c.wait_for(rev, Duration::from_secs(3)).await;
                }
                if all {
                    break;
                }
            }
            Err(e) => tracing::warn!(error = %e, "waiting for the store"),
        }
        tokio::time::sleep(backoff).await;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    tracing::info!("bootstrap objects in place");
}

/// Runs the apiserver until `shutdown` completes.
pub async fn run(
    cfg: ApiserverConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let metrics = Metrics::default();
    let store = Store::connect(
        &StoreConfig {
            endpoints: cfg.etcd_servers.clone(),
            ca_file: cfg.etcd_cafile.clone(),
            cert_file: cfg.etcd_certfile.clone(),
            key_file: cfg.etcd_keyfile.clone(),
            request_timeout: Duration::from_secs(cfg.etcd_request_timeout.max(1)),
        },
        metrics.clone(),
    )
    .await?;
    let audiences = if cfg.api_audiences.is_empty() {
        vec![cfg.service_account_issuer.clone()]
    } else {
        cfg.api_audiences.clone()
    };
    let authn = Authenticator::from_key_files(
        &cfg.service_account_key_file,
        &cfg.service_account_issuer,
        audiences,
    )?;
    let (cert, key) = match (&cfg.tls_cert_file, &cfg.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let g = ensure_self_signed(&cfg.cert_dir, &[cfg.bind_address.to_string()])?;
            tracing::info!(ca = %g.ca_cert.display(), "serving with a generated certificate");
            (g.cert, g.key)
        }
    };
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(rustls_config(&cert, &key)?));
    let mut caches = HashMap::new();
    for r in RESOURCES {
        caches.insert(
            r.plural,
            Cache::start(r, store.clone(), cfg.watch_cache_size, metrics.clone()),
        );
    }
    let bootstrapped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(bootstrap(
        store.clone(),
        ["namespaces", "clusterroles", "clusterrolebindings"]
            .iter()
            .filter_map(|p| caches.get(p).cloned())
            .collect(),
        bootstrapped.clone(),
    ));
    let api = Arc::new(Api {
        store,
        caches,
        metrics,
        authn,
        authz: cfg.authorization_mode,
        bookmark_interval: Duration::from_secs(cfg.watch_bookmark_interval.max(1)),
        coalesce: Duration::from_millis(cfg.watch_coalesce_ms),
        version: version_info(),
        bootstrapped,
    });
    let app = axum::Router::new()
        .fallback(handlers::handle)
        .with_state(api);
    let addr = SocketAddr::new(cfg.bind_address, cfg.secure_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, "apiserver serving https");
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http2()
                .max_concurrent_streams(1000)
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(4 << 20);
            if let Err(e) = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    tracing::info!("apiserver stopped");
    Ok(())
}
