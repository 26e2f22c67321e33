//! Probes, as the kubelet's prober runs them for one container: the startup probe until it
//! passes, then liveness and readiness side by side, each every periodSeconds after
//! initialDelaySeconds, with timeoutSeconds, successThreshold and failureThreshold. Exec
//! probes run through the runtime; httpGet (2xx and 3xx pass) and tcpSocket probes connect to
//! the pod's IP. The prober reports transitions only: ready or not, started, or "kill it".

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;

use super::runtime::{ContainerSpec, Runtime};

/// What the prober tells the pod worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeEvent {
    Ready(bool),
    Started,
    /// Liveness (or startup) failed failureThreshold times: restart the container.
    Unhealthy(String),
}

struct Timing {
    delay: Duration,
    period: Duration,
    timeout: Duration,
    success: u32,
    failure: u32,
}

fn timing(p: &Probe) -> Timing {
    let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
    Timing {
        delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_millis(100)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_millis(100)),
        success: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure: p.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

/// Resolves a probe port (a number or a named container port).
fn port(c: &Container, p: &IntOrString) -> Option<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// One probe attempt: Ok(()) if it passed, Err(why) if not.
async fn once<R: Runtime>(
    rt: &R,
    spec: &ContainerSpec,
    c: &Container,
    p: &Probe,
    pod_ip: &str,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &p.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match rt.exec(spec, &cmd, timeout).await {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!("command {cmd:?} exited with {code}")),
            Err(e) => Err(e),
        };
    }
    if let Some(h) = &p.http_get {
        let port = port(c, &h.port).ok_or("invalid port")?;
        let host = h
            .host
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let url = format!("{scheme}://{host}:{port}{path}");
        let mut req = http.get(&url).timeout(timeout);
        for hd in h.http_headers.iter().flatten() {
            req = req.header(hd.name.as_str(), hd.value.as_str());
        }
        return match req.send().await {
            Ok(r) if (200..400).contains(&r.status().as_u16()) => Ok(()),
            Ok(r) => Err(format!(
                "HTTP probe failed with statuscode: {}",
                r.status().as_u16()
            )),
            Err(e) => Err(format!("Get \"{url}\": {e}")),
        };
    }
    if let Some(t) = &p.tcp_socket {
        let port = port(c, &t.port).ok_or("invalid port")?;
        let host = t
            .host
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: timeout")),
        };
    }
    // gRPC probes are not supported: they pass, so such pods still run.
    Ok(())
}

/// Runs `probe` until it reaches a verdict that changes: for readiness every transition is
/// sent; for liveness/startup only the failure (then it stops).
struct Runner<'a, R: Runtime> {
    rt: &'a R,
    spec: &'a ContainerSpec,
    c: &'a Container,
    pod_ip: &'a str,
    http: &'a reqwest::Client,
}

impl<R: Runtime> Runner<'_, R> {
    /// Probes until `success` consecutive passes (Ok) or `failure` consecutive failures (Err).
    async fn until_verdict(&self, p: &Probe, t: &Timing, want_success: bool) -> Result<(), String> {
        let (mut ok, mut bad) = (0, 0);
        loop {
            match once(
                self.rt,
                self.spec,
                self.c,
                p,
                self.pod_ip,
                self.http,
                t.timeout,
            )
            .await
            {
                Ok(()) => {
                    ok += 1;
                    bad = 0;
                    if want_success && ok >= t.success {
                        return Ok(());
                    }
                }
                Err(e) => {
                    bad += 1;
                    ok = 0;
                    if bad >= t.failure {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(t.period).await;
        }
    }
}

/// Probes one container for as long as it runs (the task is aborted when it stops).
pub async fn run<R: Runtime>(
    rt: &R,
    spec: ContainerSpec,
    c: Container,
    pod_ip: String,
    http: reqwest::Client,
    tx: mpsc::UnboundedSender<ProbeEvent>,
) {
    let r = Runner {
        rt,
        spec: &spec,
        c: &c,
        pod_ip: &pod_ip,
        http: &http,
    };
    if let Some(p) = c.startup_probe.as_ref() {
        let t = timing(p);
        tokio::time::sleep(t.delay).await;
        if let Err(e) = r.until_verdict(p, &t, true).await {
            let _ = tx.send(ProbeEvent::Unhealthy(format!("Startup probe failed: {e}")));
            return;
        }
    }
    let _ = tx.send(ProbeEvent::Started);
    let liveness = async {
        let Some(p) = c.liveness_probe.as_ref() else {
            return std::future::pending::<()>().await;
        };
        let t = timing(p);
        tokio::time::sleep(t.delay).await;
        // Liveness never "succeeds" for good: it runs until it fails.
        let t = Timing {
            success: u32::MAX,
            ..t
        };
        if let Err(e) = r.until_verdict(p, &t, false).await {
            let _ = tx.send(ProbeEvent::Unhealthy(format!("Liveness probe failed: {e}")));
        }
    };
    let readiness = async {
        let Some(p) = c.readiness_probe.as_ref() else {
            let _ = tx.send(ProbeEvent::Ready(true));
            return std::future::pending::<()>().await;
        };
        let t = timing(p);
        tokio::time::sleep(t.delay).await;
        let mut ready = false;
        let (mut ok, mut bad) = (0, 0);
        loop {
            match once(rt, &spec, &c, p, &pod_ip, &http, t.timeout).await {
                Ok(()) => {
                    ok += 1;
                    bad = 0;
                }
                Err(_) => {
                    bad += 1;
                    ok = 0;
                }
            }
            if !ready && ok >= t.success {
                ready = true;
                let _ = tx.send(ProbeEvent::Ready(true));
            } else if ready && bad >= t.failure {
                ready = false;
                let _ = tx.send(ProbeEvent::Ready(false));
            }
            tokio::time::sleep(t.period).await;
        }
    };
    tokio::select! {
        _ = liveness => {}
        _ = readiness => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::runtime::process::ProcessRuntime;
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    fn spec() -> ContainerSpec {
        ContainerSpec {
            pod_uid: "u".into(),
            pod_namespace: "ns".into(),
            pod_name: "p".into(),
            name: "c".into(),
            image: "x".into(),
            argv: vec![],
            env: vec![],
            working_dir: None,
            log_path: std::env::temp_dir().join("unused.log"),
        }
    }

    #[tokio::test]
    async fn exec_readiness_and_liveness_report_transitions() {
        let c = container(json!({"name": "c",
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            run(
                &ProcessRuntime,
                spec(),
                c,
                "127.0.0.1".into(),
                reqwest::Client::new(),
                tx,
            )
            .await;
        });
        let mut seen = Vec::new();
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
        {
            let end = matches!(ev, ProbeEvent::Unhealthy(_));
            seen.push(ev);
            if end {
                break;
            }
        }
        task.await.unwrap();
        assert_eq!(seen[0], ProbeEvent::Started);
        assert!(seen.contains(&ProbeEvent::Ready(true)));
        assert!(
            matches!(seen.last(), Some(ProbeEvent::Unhealthy(m)) if m.starts_with("Liveness probe failed"))
        );
    }

    #[tokio::test]
    async fn tcp_and_http_probes_reach_the_pod() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            }
        });
        let http = reqwest::Client::new();
        let c = container(json!({"name": "c", "ports": [{"name": "web", "containerPort": port}]}));
        let tcp: Probe = serde_json::from_value(json!({"tcpSocket": {"port": "web"}})).unwrap();
        assert!(once(
            &ProcessRuntime,
            &spec(),
            &c,
            &tcp,
            "127.0.0.1",
            &http,
            Duration::from_secs(5)
        )
        .await
        .is_ok());
        let get: Probe =
            serde_json::from_value(json!({"httpGet": {"port": port, "path": "/healthz"}})).unwrap();
        let e = once(
            &ProcessRuntime,
            &spec(),
            &c,
            &get,
            "127.0.0.1",
            &http,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.contains("503"), "{e}");
        server.abort();
    }
}
