//! The progress line: elapsed time, operations so far (ok / unknown / refused), write
//! throughput, faults injected, the leader, and the fault in place now. Redrawn in place every
//! second on a terminal, printed every ten seconds otherwise (CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::history::{Clock, Recorder};

pub struct Progress {
    pub clock: Clock,
    pub rec: Recorder,
    pub scenario: String,
    pub duration: Duration,
    /// The fault in place now ("" when none).
    pub now: Arc<Mutex<String>>,
    /// Name of the leader as last observed.
    pub leader: Arc<Mutex<Option<String>>>,
}

pub async fn run(p: Progress, mut stop: watch::Receiver<bool>) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let mut last_writes = 0u64;
    let mut last_t = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::stop::raised(&mut stop) => break,
        }
        let c = p.rec.counts();
        let (ok, unknown, refused, writes) = (
            c.ok.load(Relaxed),
            c.unknown.load(Relaxed),
            c.refused.load(Relaxed),
            c.writes_ok.load(Relaxed),
        );
        let t = p.clock.now();
        let rate = (writes - last_writes) as f64 / ((t - last_t).max(1) as f64 / 1e9);
        (last_writes, last_t) = (writes, t);
        let faults = p.rec.with(|h| h.faults.len());
        let leader = p.leader.lock().clone().unwrap_or_else(|| "none".into());
        let now = p.now.lock().clone();
        let line = format!(
            "[{:>5.0}s/{:.0}s] {}: ops {} ok, {} unknown, {} refused | {:.0} writes/s | faults {faults} | leader {leader}{}",
            t as f64 / 1e9,
            p.duration.as_secs_f64(),
            p.scenario,
            ok,
            unknown,
            refused,
            rate,
            if now.is_empty() { String::new() } else { format!(" | now: {now}") }
        );
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
    if tty {
        eprintln!();
    }
}
