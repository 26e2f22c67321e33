//! The progress bar drawn on stderr while a run goes (etcd's tool uses cheggaaa/pb).
//!
//! It is drawn only when stderr is a terminal, so logs, CI output and `--json` pipelines stay
//! clean; it never touches stdout, where the summary goes. Counting is one relaxed atomic add
//! per request, so the bar costs the measured clients nothing noticeable.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared counter with a drawing task; `finish` draws the last state and stops the task.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    done: AtomicU64,
    total: u64,
    label: String,
    started: Instant,
    stop: AtomicBool,
    draw: bool,
}

impl Progress {
    /// Starts a bar for `total` units (0 = unknown total); draws only on a terminal.
    pub fn start(label: &str, total: u64) -> Progress {
        let draw = std::io::stderr().is_terminal();
        let p = Progress {
            inner: Arc::new(Inner {
                done: AtomicU64::new(0),
                total,
                label: label.to_string(),
                started: Instant::now(),
                stop: AtomicBool::new(false),
                draw,
            }),
        };
        if draw {
            // A weak reference: the task ends with `finish` or when the last handle is gone.
            let weak = Arc::downgrade(&p.inner);
            tokio::spawn(async move {
                while let Some(inner) = weak.upgrade() {
                    if inner.stop.load(Ordering::Acquire) {
                        break;
                    }
                    inner.render(false);
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        p
    }

    /// A bar that never draws (for callers that run workloads in-process, like `compare`).
    pub fn hidden() -> Progress {
        Progress {
            inner: Arc::new(Inner {
                done: AtomicU64::new(0),
                total: 0,
                label: String::new(),
                started: Instant::now(),
                stop: AtomicBool::new(true),
                draw: false,
            }),
        }
    }

    pub fn inc(&self, n: u64) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.inner.done.load(Ordering::Relaxed)
    }

    /// Draws the final state on its own line and stops the drawing task.
    pub fn finish(&self) {
        if !self.inner.stop.swap(true, Ordering::AcqRel) && self.inner.draw {
            self.inner.render(true);
        }
    }
}

impl Inner {
    fn render(&self, last: bool) {
        let done = self.done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let line = if self.total > 0 {
            let frac = (done as f64 / self.total as f64).min(1.0);
            let width = 40;
            let filled = (frac * width as f64) as usize;
            format!(
                "\r{} {done} / {} [{}{}] {:5.1}% {rate:.0}/s {secs:.1}s",
                self.label,
                self.total,
                "=".repeat(filled),
                " ".repeat(width - filled),
                frac * 100.0
            )
        } else {
            format!("\r{} {done} {rate:.0}/s {secs:.1}s", self.label)
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        if last {
            let _ = err.write_all(b"\n");
        }
        let _ = err.flush();
    }
}
