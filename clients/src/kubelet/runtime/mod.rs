//! The container runtime seen by the kubelet: start a container, wait for it to exit, stop it
//! (SIGTERM, a grace period, SIGKILL), run a command in it (exec probes). Two
//! implementations: [`process`] runs each container's command as a local child process;
//! [`sim`] (hollow, kubemark's idea) runs nothing and reports a container running after a
//! configurable delay, so one process can pretend to be hundreds of nodes.
//!
//! Everything above this trait (restart policy, back-off, probes, pod status) is the same for
//! both, so the hollow kubelet exercises the control plane exactly as the real one does.

pub mod process;
pub mod sim;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// What the kubelet asks the runtime to run.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    pub pod_uid: String,
    pub pod_namespace: String,
    pub pod_name: String,
    pub name: String,
    pub image: String,
    /// The container's command and args, joined (command first).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// Where the container's stdout and stderr go.
    pub log_path: PathBuf,
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// The signal that ended it, if a signal did.
    pub signal: Option<i32>,
}

impl Exit {
    /// Kubernetes' terminated reason: Completed for exit 0, else Error.
    pub fn reason(&self) -> &'static str {
        if self.code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// Why a container could not be started: a waiting reason and a message for its status.
#[derive(Clone, Debug)]
pub struct StartError {
    pub reason: &'static str,
    pub message: String,
}

/// A running container.
pub trait Container: Send + 'static {
    /// The containerID reported in the pod status (`<runtime>://<id>`).
    fn id(&self) -> String;
    /// Completes when the container exits. Cancel-safe: may be called again after a drop.
    fn wait(&mut self) -> impl Future<Output = Exit> + Send;
    /// SIGTERM, then SIGKILL after `grace` if it has not exited; completes once it is gone.
    fn stop(&mut self, grace: Duration) -> impl Future<Output = Exit> + Send;
}

/// A container runtime.
pub trait Runtime: Send + Sync + 'static {
    type Container: Container;
    /// Reported as the node's containerRuntimeVersion.
    fn version(&self) -> String;
    /// Starts a container (the sim runtime takes its configured start-up delay here).
    fn start(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<Self::Container, StartError>> + Send;
    /// Runs `cmd` in the container's environment; its exit code, or why it could not run.
    fn exec(
        &self,
        spec: &ContainerSpec,
        cmd: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<i32, String>> + Send;
    /// Whether probes really run (the sim runtime reports them as passing).
    fn runs_probes(&self) -> bool;
}
