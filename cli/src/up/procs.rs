//! The processes `strata up` runs: each a `strata` subcommand in its own process group (so
//! the terminal's Ctrl-C reaches only `strata up`, which then stops them in order), its
//! output appended to `<data-dir>/logs/<name>.log`. A watcher task per child reports when it
//! exits; stopping sends SIGTERM, waits, and SIGKILLs only a child that has not exited yet.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};

/// A child that exited: (name, how).
pub type Exited = (String, String);

pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    pid: i32,
    /// Some(how) once the child has exited.
    exited: watch::Receiver<Option<String>>,
}

impl Proc {
    /// Starts `strata <args>` as `name`; its exit is also sent on `exits`.
    pub fn spawn(
        name: &str,
        args: &[String],
        logs: &Path,
        rust_log: &str,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> Result<Proc, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the strata binary: {e}"))?;
        std::fs::create_dir_all(logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = tokio::process::Command::new(exe)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let (tx, exited) = watch::channel(None);
        let n = name.to_string();
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            tx.send_replace(Some(how.clone()));
            let _ = exits.send((n, how));
        });
        Ok(Proc {
            name: name.to_string(),
            log,
            pid,
            exited,
        })
    }

    pub fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }

    /// SIGTERM, up to `grace` for it to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        if self.has_exited() || self.pid <= 0 {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        let timed_out = tokio::time::timeout(grace, self.exited.wait_for(|e| e.is_some()))
            .await
            .is_err();
        if timed_out && !self.has_exited() {
            eprintln!(
                "strata up: {} did not stop within {grace:?}; killing it",
                self.name
            );
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = self.exited.wait_for(|e| e.is_some()).await;
        }
    }
}
