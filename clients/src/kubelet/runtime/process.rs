//! The process runtime: a container is its command (`command` + `args`), run as a local child
//! process in its own process group, with the container's environment (and PATH), its
//! working directory, and stdout/stderr appended to a log file. The image is not used. Stop
//! sends SIGTERM to the whole group, waits the grace period, then SIGKILLs the group; when
//! the main process exits on its own, what is left of its group is killed too (a container's
//! processes end with it). A handle that is dropped kills its group, so no process outlives
//! the kubelet.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{Container, ContainerSpec, Exit, Runtime, StartError};

pub struct ProcessRuntime;

pub struct ProcessContainer {
    child: Child,
    pid: i32,
    exited: Option<Exit>,
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit { code, signal: None },
        (None, Some(sig)) => Exit {
            code: 128 + sig,
            signal: Some(sig),
        },
        (None, None) => Exit {
            code: 1,
            signal: None,
        },
    }
}

fn signal_group(pid: i32, sig: Signal) {
    if pid > 0 {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

fn command_for(spec: &ContainerSpec, argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("HOSTNAME", &spec.pod_name);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(dir) = &spec.working_dir {
        cmd.current_dir(dir);
    }
    cmd
}

impl Container for ProcessContainer {
    fn id(&self) -> String {
        format!("strata-process://{}", self.pid)
    }

    async fn wait(&mut self) -> Exit {
        if let Some(e) = &self.exited {
            return e.clone();
        }
        let exit = match self.child.wait().await {
            Ok(status) => exit_of(status),
            Err(_) => Exit {
                code: 1,
                signal: None,
            },
        };
        // The container is its whole process group.
        signal_group(self.pid, Signal::SIGKILL);
        self.exited = Some(exit.clone());
        exit
    }

    async fn stop(&mut self, grace: Duration) -> Exit {
        if let Some(e) = &self.exited {
            return e.clone();
        }
        signal_group(self.pid, Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => {
                signal_group(self.pid, Signal::SIGKILL);
                let e = exit_of(status);
                self.exited = Some(e.clone());
                e
            }
            _ => {
                signal_group(self.pid, Signal::SIGKILL);
                self.wait().await
            }
        }
    }
}

impl Drop for ProcessContainer {
    fn drop(&mut self) {
        if self.exited.is_none() {
            signal_group(self.pid, Signal::SIGKILL);
        }
    }
}

impl Runtime for ProcessRuntime {
    type Container = ProcessContainer;

    fn version(&self) -> String {
        format!("strata-process://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ProcessContainer, StartError> {
        if spec.argv.is_empty() {
            return Err(StartError {
                reason: "CreateContainerConfigError",
                message: "the process runtime runs a container's command and args; this container has neither".into(),
            });
        }
        if let Some(parent) = spec.log_path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|e| StartError {
                reason: "RunContainerError",
                message: format!("log file {}: {e}", spec.log_path.display()),
            })?;
        let err_log = log.try_clone().map_err(|e| StartError {
            reason: "RunContainerError",
            message: format!("log file: {e}"),
        })?;
        let mut cmd = command_for(spec, &spec.argv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| StartError {
            reason: "RunContainerError",
            message: format!("starting {:?}: {e}", spec.argv[0]),
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        Ok(ProcessContainer {
            child,
            pid,
            exited: None,
        })
    }

    async fn exec(
        &self,
        spec: &ContainerSpec,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<i32, String> {
        if cmd.is_empty() {
            return Err("empty exec command".into());
        }
        let mut c = command_for(spec, cmd);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = c.spawn().map_err(|e| format!("exec {:?}: {e}", cmd[0]))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                signal_group(pid, Signal::SIGKILL);
                Ok(exit_of(status).code)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                signal_group(pid, Signal::SIGKILL);
                let _ = child.wait().await;
                Err(format!("command timed out after {timeout:?}"))
            }
        }
    }

    fn runs_probes(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, argv: &[&str]) -> ContainerSpec {
        ContainerSpec {
            pod_uid: "u".into(),
            pod_namespace: "ns".into(),
            pod_name: "p".into(),
            name: "c".into(),
            image: "none".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("GREETING".into(), "hello".into())],
            working_dir: Some(dir.display().to_string()),
            log_path: dir.join("c.log"),
        }
    }

    #[tokio::test]
    async fn containers_run_with_their_env_and_report_exit_codes() {
        let dir = std::env::temp_dir().join(format!("strata-proc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = ProcessRuntime;
        let mut c = rt
            .start(&spec(&dir, &["sh", "-c", "echo $GREETING; exit 3"]))
            .await
            .unwrap();
        assert_eq!(
            c.wait().await,
            Exit {
                code: 3,
                signal: None
            }
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("c.log")).unwrap(),
            "hello\n"
        );
        assert_eq!(
            rt.exec(
                &spec(&dir, &[]),
                &["sh".into(), "-c".into(), "exit 7".into()],
                Duration::from_secs(10)
            )
            .await,
            Ok(7)
        );
        let err = rt.start(&spec(&dir, &[])).await.err().unwrap();
        assert_eq!(err.reason, "CreateContainerConfigError");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn stop_sends_sigterm_then_sigkill() {
        let dir = std::env::temp_dir().join(format!("strata-proc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = ProcessRuntime;
        // Exits on SIGTERM.
        let mut polite = rt.start(&spec(&dir, &["sleep", "60"])).await.unwrap();
        let e = polite.stop(Duration::from_secs(10)).await;
        assert_eq!(e.signal, Some(15));
        assert_eq!(e.code, 143);
        // Ignores SIGTERM: killed after the grace period.
        let mut stubborn = rt
            .start(&spec(
                &dir,
                &["sh", "-c", "trap '' TERM; touch ready; sleep 60 & wait"],
            ))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !dir.join("ready").exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the shell never set its trap"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = stubborn.stop(Duration::from_millis(300)).await;
        assert_eq!(e.signal, Some(9));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
