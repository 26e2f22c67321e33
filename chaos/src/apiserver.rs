//! The `strata apiserver` process for Kubernetes traffic: started over every store member,
//! killed and restarted by the apiserver-kill fault, and an HTTPS client with an admin token
//! minted by `strata token` (so this crate needs nothing of the apiserver's code).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::cluster::process::Proc;
use crate::cluster::{tail, DEADLINE};

const ISSUER: &str = "https://strata-chaos.local";

pub struct Apiserver {
    bin: PathBuf,
    dir: PathBuf,
    etcd_servers: String,
    pub port: u16,
    proc: Option<Proc>,
    pub token: String,
    log: PathBuf,
}

impl Apiserver {
    /// Creates the signing key and admin token, starts the apiserver and waits for /readyz.
    pub async fn launch(
        bin: PathBuf,
        dir: PathBuf,
        etcd_servers: String,
        port: u16,
    ) -> Result<Apiserver, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let key = dir.join("sa.key");
        let out = Command::new(&bin)
            .args(["token", "--create-key", "--key-file"])
            .arg(&key)
            .args([
                "--issuer",
                ISSUER,
                "--user",
                "chaos-admin",
                "--group",
                "system:masters",
            ])
            .output()
            .map_err(|e| format!("strata token: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "strata token: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut a = Apiserver {
            bin,
            log: dir.join("apiserver.log"),
            dir,
            etcd_servers,
            port,
            proc: None,
            token,
        };
        a.start().await?;
        Ok(a)
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("certs").join("ca.crt")
    }

    /// Starts (or restarts) the process and waits until it is ready.
    pub async fn start(&mut self) -> Result<(), String> {
        self.kill9();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["apiserver", "--etcd-servers", &self.etcd_servers])
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &self.port.to_string(),
            ])
            .arg("--cert-dir")
            .arg(self.dir.join("certs"))
            .arg("--service-account-key-file")
            .arg(self.dir.join("sa.key"))
            .args(["--service-account-issuer", ISSUER])
            .args(["--watch-bookmark-interval", "1"])
            .env("RUST_LOG", "info");
        self.proc = Some(Proc::spawn(cmd, &self.log)?);
        let end = tokio::time::Instant::now() + DEADLINE * 2;
        while tokio::time::Instant::now() < end {
            if let Some(st) = self.proc.as_mut().and_then(|p| p.exited()) {
                return Err(format!(
                    "strata apiserver exited with {st}:\n{}",
                    tail(&self.log, 30)
                ));
            }
            if self.ca().exists() {
                if let Ok(c) = self.client(Duration::from_secs(2)) {
                    let ready = c
                        .get(format!("{}/readyz", self.base()))
                        .bearer_auth(&self.token)
                        .send()
                        .await;
                    if matches!(ready, Ok(r) if r.status().as_u16() == 200) {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "strata apiserver not ready:\n{}",
            tail(&self.log, 30)
        ))
    }

    /// An HTTPS client trusting the apiserver's generated CA.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        let ca = std::fs::read(self.ca()).map_err(|e| format!("apiserver CA: {e}"))?;
        let cert = reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?;
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .tls_built_in_root_certs(false)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(10)).await;
        }
    }
}
