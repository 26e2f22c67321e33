//! The hollow runtime: no processes. A container "starts" after the configured delay (what
//! pulling an image and starting it would take) and then runs until it is stopped, which
//! takes no time. Exec probes succeed. This is kubemark's hollow node, made lighter: one
//! tokio task per pod instead of a fake container runtime behind a gRPC socket.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Container, ContainerSpec, Exit, Runtime, StartError};

pub struct SimRuntime {
    pub startup_delay: Duration,
    next_id: AtomicU64,
}

impl SimRuntime {
    pub fn new(startup_delay: Duration) -> SimRuntime {
        SimRuntime {
            startup_delay,
            next_id: AtomicU64::new(1),
        }
    }
}

pub struct SimContainer {
    id: u64,
}

impl Container for SimContainer {
    fn id(&self) -> String {
        format!("strata-sim://{:016x}", self.id)
    }

    fn wait(&mut self) -> impl Future<Output = Exit> + Send {
        // Runs until stopped.
        std::future::pending()
    }

    async fn stop(&mut self, _grace: Duration) -> Exit {
        Exit {
            code: 0,
            signal: None,
        }
    }
}

impl Runtime for SimRuntime {
    type Container = SimContainer;

    fn version(&self) -> String {
        format!("strata-sim://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn start(&self, _spec: &ContainerSpec) -> Result<SimContainer, StartError> {
        if !self.startup_delay.is_zero() {
            tokio::time::sleep(self.startup_delay).await;
        }
        Ok(SimContainer {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        })
    }

    async fn exec(
        &self,
        _spec: &ContainerSpec,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<i32, String> {
        Ok(0)
    }

    fn runs_probes(&self) -> bool {
        false
    }
}
