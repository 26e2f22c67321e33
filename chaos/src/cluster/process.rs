//! One child process (a store member or the apiserver): start with its output appended to a log,
//! kill -9, SIGTERM with a deadline, SIGSTOP/SIGCONT. Signals are sent with the `kill` command so
//! this crate needs no unsafe code. Dropping a `Proc` kills the child, so nothing outlives a run
//! (unless `strata chaos` itself is killed with SIGKILL: then its children are orphaned).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
    paused: bool,
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("kill {sig}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("kill {sig} {pid} failed"))
    }
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Proc, String> {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("log {}: {e}", log.display()))
        };
        // Its own process group: a Ctrl-C in the terminal reaches `strata chaos`, which ends
        // the run and stops its children itself, not the members in the middle of it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .spawn()
            .map_err(|e| format!("start {:?}: {e}", cmd.get_program()))?;
        Ok(Proc {
            child: Some(child),
            log: log.to_path_buf(),
            paused: false,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running (paused counts as running).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    pub fn pause(&mut self) -> Result<(), String> {
        let pid = self.pid().ok_or("not running")?;
        signal(pid, "-STOP")?;
        self.paused = true;
        Ok(())
    }

    pub fn resume(&mut self) -> Result<(), String> {
        let pid = self.pid().ok_or("not running")?;
        signal(pid, "-CONT")?;
        self.paused = false;
        Ok(())
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// SIGTERM, then wait up to `grace` for the exit (kill -9 after it); whether it exited
    /// cleanly on its own.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        let Some(pid) = self.pid() else { return true };
        if self.paused {
            let _ = self.resume();
        }
        if signal(pid, "-TERM").is_err() {
            self.kill9();
            return false;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if let Some(st) = self.exited() {
                self.child = None;
                return st.success();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill9();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}
