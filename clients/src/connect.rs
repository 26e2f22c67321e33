//! A kube-rs [`Client`] from a kubeconfig, over HTTP/2.
//!
//! kube-rs' default stack speaks HTTP/1.1 only, so every watch holds a TCP connection of its
//! own. The clients here keep several watches open (the scheduler two, the controller-manager
//! one per kind, a hollow kubelet process one for hundreds of nodes) and issue many small
//! writes; over HTTP/2 they share one TLS connection per process, as client-go's do. The
//! stack is otherwise kube-rs' own: its TLS configuration from the kubeconfig (CA, client
//! certificate), its base-URI and authentication layers, rustls with the ring provider.

use std::path::Path;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::{BoxError, ServiceBuilder};

/// Everything that can go wrong while building a client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("client setup: {0}")]
    Client(#[from] kube::Error),
}

/// Reads `path` (its current context) into a kube-rs [`Config`].
pub async fn load_config(path: &Path) -> Result<Config, ConnectError> {
    let err = |source| ConnectError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(err)?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(err)
}

/// A client for the kubeconfig at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, ConnectError> {
    let config = load_config(path).await?;
    client_from_config(config)
}

/// A client for `config` whose connections negotiate HTTP/2 (ALPN) and fall back to HTTP/1.1.
pub fn client_from_config(config: Config) -> Result<Client, ConnectError> {
    // Only the ring provider is compiled in; installing it explicitly keeps rustls from
    // having to guess (it refuses when it cannot tell which provider to use).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let hyper_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // A dead apiserver connection is noticed within ~40 s even when no request is
        // in flight (watches otherwise wait for their timeout).
        .http2_keep_alive_interval(Duration::from_secs(20))
        .http2_keep_alive_timeout(Duration::from_secs(20))
        .http2_keep_alive_while_idle(true)
        .build(connector);
    let default_ns = config.default_namespace.clone();
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .map_err(BoxError::from)
        .service(hyper_client);
    Ok(Client::new(service, default_ns))
}

/// A kubeconfig document for `server` with a bearer token, trusting the CA at `ca_file`.
pub fn kubeconfig_yaml(server: &str, ca_file: &Path, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: strata\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: strata\n  context:\n    cluster: strata\n    user: {user}\ncurrent-context: strata\n",
        ca = ca_file.display(),
    )
}
