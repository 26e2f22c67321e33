//! Loopback ports for members, chosen before they start (their URLs go into --initial-cluster).
//!
//! A port found by binding port 0 is in the kernel's ephemeral range, which it also hands out
//! for outgoing connections: a member dialling its peers can take it before the member it was
//! chosen for binds it. So ports come from below the ephemeral range, from an offset that
//! differs between processes, never twice in one process, each checked by binding it.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn free_port() -> Result<u16, String> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
        })
        .unwrap_or(32768);
    if ephemeral_low <= 12_000 {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free loopback port: {e}"));
    }
    let (low, high) = (10_000u32, ephemeral_low);
    let span = high - low;
    let offset = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (offset + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!(
        "no free loopback port below the ephemeral range {low}..{high}"
    ))
}
