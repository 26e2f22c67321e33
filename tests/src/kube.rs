//! Helpers for apiserver tests: a running `strata apiserver` process over a store (or etcd),
//! tokens minted from its signing key, and a small HTTPS client speaking the Kubernetes API.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, strata_bin, DEADLINE};

pub const ISSUER: &str = "https://strata.test";

/// A running `strata apiserver`.
pub struct ApiserverProc {
    pub port: u16,
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub signing_key: PathBuf,
    pub log: PathBuf,
    /// The --etcd-servers value, then the extra flags.
    args: Vec<String>,
    child: Option<Child>,
}

impl ApiserverProc {
    /// Starts an apiserver over `etcd_servers` (comma separated URLs), with RBAC, a generated
    /// certificate and signing key in `dir`, and waits until /readyz passes.
    pub async fn start(dir: &Path, etcd_servers: &str, extra: &[&str]) -> ApiserverProc {
        std::fs::create_dir_all(dir).expect("apiserver dir");
        let signing_key = dir.join("sa.key");
        if !signing_key.exists() {
            let pem = strata_apiserver::auth::generate_signing_key().expect("signing key");
            std::fs::write(&signing_key, pem).expect("write signing key");
        }
        let mut p = ApiserverProc {
            port: free_port(),
            dir: dir.to_path_buf(),
            ca: dir.join("certs").join("ca.crt"),
            signing_key,
            log: dir.join("apiserver.log"),
            args: std::iter::once(etcd_servers)
                .chain(extra.iter().copied())
                .map(str::to_string)
                .collect(),
            child: None,
        };
        p.spawn();
        p.wait_ready().await;
        p
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(strata_bin());
        cmd.args(["apiserver", "--etcd-servers", &self.args[0]])
            .args(["--bind-address", "127.0.0.1"])
            .args(["--secure-port", &self.port.to_string()])
            .arg("--cert-dir")
            .arg(self.dir.join("certs"))
            .arg("--service-account-key-file")
            .arg(&self.signing_key)
            .args(["--service-account-issuer", ISSUER])
            .args(["--watch-bookmark-interval", "1"])
            .args(&self.args[1..])
            .env("RUST_LOG", "info,strata_apiserver::http=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start strata apiserver");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(logf, "{line}");
            }
        });
        self.child = Some(child);
    }

    /// Kills the apiserver (SIGKILL) and starts it again on the same port, certificates and
    /// key, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "strata apiserver exited with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            if self.ca.exists() {
                let admin = self.admin();
                // Ready: the store answers, every cache has listed, and the bootstrap
                // namespaces and RBAC policy are in the caches the authorizer reads.
                if let Ok((200, _)) = admin.try_raw("GET", "/readyz", None, "").await {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "strata apiserver not ready within {DEADLINE:?}; log:\n{}",
            self.log_text()
        );
    }

    /// A token for `user` in `groups`.
    pub fn token(&self, user: &str, groups: &[&str]) -> String {
        self.token_with(user, groups, Duration::from_secs(3600))
    }

    pub fn token_with(&self, user: &str, groups: &[&str], ttl: Duration) -> String {
        self.mint(
            strata_apiserver::auth::Subject::User {
                name: user.to_string(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            ttl,
        )
    }

    /// A service account's token.
    pub fn sa_token(&self, namespace: &str, name: &str) -> String {
        self.mint(
            strata_apiserver::auth::Subject::ServiceAccount {
                namespace: namespace.into(),
                name: name.into(),
                uid: None,
            },
            Duration::from_secs(3600),
        )
    }

    /// A token for `subject`, signed with this apiserver's key, for its issuer and audience.
    fn mint(&self, subject: strata_apiserver::auth::Subject, ttl: Duration) -> String {
        let key = std::fs::read(&self.signing_key).expect("signing key");
        strata_apiserver::auth::mint(
            &key,
            &strata_apiserver::auth::TokenRequest {
                subject,
                issuer: ISSUER.into(),
                audiences: vec![ISSUER.into()],
                ttl,
            },
        )
        .expect("mint token")
    }

    /// A client as a member of system:masters.
    pub fn admin(&self) -> Kube {
        self.client(Some(&self.token("admin", &["system:masters"])))
    }

    /// A client with `token` (or none).
    pub fn client(&self, token: Option<&str>) -> Kube {
        let ca = std::fs::read(&self.ca).expect("apiserver CA");
        let cert = reqwest::Certificate::from_pem(&ca).expect("CA pem");
        let http = reqwest::Client::builder()
            .add_root_certificate(cert)
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("https client");
        Kube {
            http,
            base: format!("https://127.0.0.1:{}", self.port),
            token: token.map(str::to_string),
        }
    }

    pub fn kill9(&mut self) {
        crate::kill9(&mut self.child);
    }
}

impl Drop for ApiserverProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A Kubernetes API client for tests: every call returns (HTTP status, JSON body).
#[derive(Clone)]
pub struct Kube {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

impl Kube {
    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// One request with a raw body; (status, body text).
    pub async fn try_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<(u16, String), reqwest::Error> {
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r
                .header(
                    "content-type",
                    if content_type.is_empty() {
                        "application/json"
                    } else {
                        content_type
                    },
                )
                .body(b);
        }
        let resp = r.send().await?;
        let code = resp.status().as_u16();
        Ok((code, resp.text().await?))
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> (u16, String) {
        self.try_raw(method, path, body, content_type)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn json(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (code, text) = self
            .raw(
                method,
                path,
                body.map(|b| serde_json::to_vec(b).expect("encode")),
                "",
            )
            .await;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (code, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.json("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.json("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.json("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.json("DELETE", path, None).await
    }

    pub async fn delete_with(&self, path: &str, options: &Value) -> (u16, Value) {
        self.json("DELETE", path, Some(options)).await
    }

    pub async fn merge_patch(&self, path: &str, patch: &Value) -> (u16, Value) {
        let (code, text) = self
            .raw(
                "PATCH",
                path,
                Some(serde_json::to_vec(patch).expect("encode")),
                "application/merge-patch+json",
            )
            .await;
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Opens a watch; events are read with `Watch::next`.
    pub async fn watch(&self, path: &str) -> Watch {
        let resp = self
            .request("GET", path)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .unwrap_or_else(|e| panic!("watch {path}: {e}"));
        Watch {
            status: resp.status().as_u16(),
            resp: Some(resp),
            buf: Vec::new(),
        }
    }
}

/// A watch stream of JSON lines.
pub struct Watch {
    pub status: u16,
    resp: Option<reqwest::Response>,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event, None when the stream ended, panics after `timeout` without one.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("event line is JSON"));
            }
            let resp = self.resp.as_mut()?;
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.extend_from_slice(&c),
                Ok(Ok(None)) | Ok(Err(_)) => {
                    self.resp = None;
                    if self.buf.is_empty() {
                        return None;
                    }
                }
                Err(_) => panic!("no watch event within {timeout:?}"),
            }
        }
    }

    /// The next event within the default deadline.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(DEADLINE).await
    }

    /// The next event that is not a BOOKMARK.
    pub async fn next_change(&mut self) -> Option<Value> {
        loop {
            let ev = self.next().await?;
            if ev["type"] != "BOOKMARK" {
                return Some(ev);
            }
        }
    }
}
