//! Strata's reference clients: the scheduler, the controller-manager and the kubelet (with a
//! process runtime and a hollow one for scale tests). They are built on kube-rs (its client,
//! watcher and reflector) and k8s-openapi and talk to the apiserver only over HTTPS, exactly
//! as kube-scheduler, kube-controller-manager and the kubelet do, so they exercise the
//! apiserver and the store the way a real cluster does.
//!
//! Every component has the shape `run(config, shutdown)`: it returns once `shutdown`
//! completes and every task it started has finished.
//!
//! The decision logic (filters and scores, reconcile steps, pod phase and conditions) lives in
//! functions over plain objects, unit-tested without a server; the loops around them only
//! read caches, call those functions and write the outcome.

pub mod connect;
pub mod controllers;
pub mod events;
pub mod informer;
pub mod kubelet;
pub mod leader;
pub mod pod;
pub mod quantity;
pub mod scheduler;
pub mod selector;
pub mod workqueue;

/// A `watch` receiver that turns true when `shutdown` completes (the components pass it to
/// every task they start), and the task that watches `shutdown` (abort it when done).
pub fn shutdown_channel(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        shutdown.await;
        tx.send_replace(true);
        // Keep the sender alive so receivers do not see a closed channel as a stop.
        std::future::pending::<()>().await;
    });
    (rx, task)
}

/// Whether a stop signal has been given (without holding the channel's lock).
pub fn stopped(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    let v = *stop.borrow();
    v
}

/// Completes once a stop signal has been given (or its sender is gone).
pub async fn until_stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
