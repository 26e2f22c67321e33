//! Waiting on a stop signal (a `watch<bool>` raised once).
//!
//! `watch::Receiver::wait_for` yields a borrow guard, which is not `Send`; inside `select!` in a
//! loop it would be held across other branches' awaits. These helpers drop it at once.

use tokio::sync::watch;

/// Completes when the signal is raised (or its sender is gone).
pub async fn raised(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Completes when `cond` holds for the watched value; false if the sender is gone.
pub async fn until<T>(rx: &mut watch::Receiver<T>, cond: impl FnMut(&T) -> bool) -> bool {
    rx.wait_for(cond).await.is_ok()
}
