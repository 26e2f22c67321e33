//! Network-namespace mode (root only): each member in its own network namespace, all attached to
//! one bridge in the host namespace, so faults are real packet-level faults made by the kernel.
//!
//! - Member i lives in namespace `sc<run>n<i>` with address 10.A.B.(i+1) on `eth0`, a veth
//!   whose other end is on bridge `scb<run>` (10.A.B.254), which is how the chaos process (in the
//!   host namespace) reaches every member's client port.
//! - A cut of i -> j is a blackhole route to j's address in i's namespace: i's packets to j are
//!   dropped. Unlike the proxy's message-level one-way cut, this also drops i's acknowledgements
//!   of j's packets, so TCP connections between the two stall in both directions, as with a
//!   real asymmetric packet loss.
//! - Delay and loss use netem, per destination (a prio qdisc with one band per peer, selected by
//!   u32 filters on the destination address). Many minimal kernels (this project's CI VM among
//!   them) have no traffic control at all; then slow links are reported as unsupported and the
//!   flaky-network scenario refuses to run in this mode.
//!
//! Everything created is named after the run and removed on shutdown (and on drop).

use std::path::Path;
use std::process::{Command, Stdio};

use parking_lot::Mutex;
use rand::Rng;

use super::LinkFault;

pub struct Namespaces {
    run: String,
    net: (u8, u8),
    n: usize,
    netem: bool,
    removed: Mutex<bool>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether this process can create namespaces, veth pairs and bridges (root, iproute2, and
/// the capabilities a container may lack): tried once on a throwaway namespace and bridge.
pub fn available() -> Result<(), String> {
    if !is_root() {
        return Err("--network netns needs root (use the default proxy network)".into());
    }
    let probe = format!("scprobe{}", std::process::id() % 100_000);
    let bridge = format!("scpb{}", std::process::id() % 100_000);
    let tried = ip(&["netns", "add", &probe]).and_then(|_| {
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["link", "del", &bridge])
    });
    let _ = ip(&["netns", "del", &probe]);
    tried.map_err(|e| format!("--network netns cannot create namespaces here: {e}"))
}

impl Namespaces {
    pub fn create(n: usize) -> Result<Namespaces, String> {
        available()?;
        let mut rng = rand::rng();
        let run_id = format!("{:04x}", rng.random::<u16>());
        let used = Command::new("ip")
            .args(["-o", "-4", "addr"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let net = (0..64)
            .map(|_| (rng.random_range(200..=250u8), rng.random::<u8>()))
            .find(|(a, b)| !used.contains(&format!("10.{a}.{b}.")))
            .ok_or("no free 10.x.y.0/24 subnet for the namespaces")?;
        let mut ns = Namespaces {
            run: run_id,
            net,
            n,
            netem: false,
            removed: Mutex::new(false),
        };
        match ns.build() {
            Ok(netem) => {
                ns.netem = netem;
                Ok(ns)
            }
            Err(e) => {
                ns.remove();
                Err(e)
            }
        }
    }

    fn bridge(&self) -> String {
        format!("scb{}", self.run)
    }

    pub fn name(&self, i: usize) -> String {
        format!("sc{}n{}", self.run, i + 1)
    }

    fn veth(&self, i: usize) -> String {
        format!("sc{}v{}", self.run, i + 1)
    }

    pub fn ip(&self, i: usize) -> String {
        format!("10.{}.{}.{}", self.net.0, self.net.1, i + 1)
    }

    /// Creates the bridge and namespaces; whether netem works.
    fn build(&self) -> Result<bool, String> {
        let br = self.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        let gw = format!("10.{}.{}.254/24", self.net.0, self.net.1);
        ip(&["addr", "add", &gw, "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..self.n {
            let ns = self.name(i);
            let veth = self.veth(i);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &br, "up"])?;
            let addr = format!("{}/24", self.ip(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok((0..self.n).all(|i| self.prepare_netem(i).is_ok()))
    }

    /// One prio band per peer (band j+2 for traffic to member j; band 1 for the rest), so a
    /// netem qdisc can be attached to one destination.
    fn prepare_netem(&self, i: usize) -> Result<(), String> {
        let ns = self.name(i);
        let bands = (self.n + 1).clamp(3, 16).to_string();
        let mut args = vec![
            "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:",
            "prio", "bands", &bands, "priomap",
        ];
        args.extend(std::iter::repeat_n("0", 16));
        ip(&args)?;
        for j in (0..self.n).filter(|j| *j != i) {
            let dst = format!("{}/32", self.ip(j));
            let flow = format!("1:{}", j + 2);
            ip(&[
                "netns", "exec", &ns, "tc", "filter", "add", "dev", "eth0", "parent", "1:",
                "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst", &dst, "flowid", &flow,
            ])?;
        }
        Ok(())
    }

    pub fn has_netem(&self) -> bool {
        self.netem
    }

    pub fn command(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name(i)]).arg(program);
        c
    }

    pub fn set(&self, from: usize, to: usize, f: LinkFault) -> Result<(), String> {
        let ns = self.name(from);
        let dst = format!("{}/32", self.ip(to));
        let parent = format!("1:{}", to + 2);
        match f {
            LinkFault::Cut => ip(&["-n", &ns, "route", "replace", "blackhole", &dst]),
            LinkFault::Pass => {
                // Either may already be gone; a missing route or qdisc is the healed state.
                let _ = ip(&["-n", &ns, "route", "del", "blackhole", &dst]);
                if self.netem {
                    let _ = ip(&[
                        "netns", "exec", &ns, "tc", "qdisc", "del", "dev", "eth0", "parent",
                        &parent,
                    ]);
                }
                Ok(())
            }
            LinkFault::Slow {
                delay,
                jitter,
                loss,
            } => {
                if !self.netem {
                    return Err("this kernel has no netem (traffic control), so links cannot be slowed in --network netns; use --network proxy".into());
                }
                let handle = format!("{}:", to + 10);
                let d = format!("{}ms", delay.as_millis());
                let j = format!("{}ms", jitter.as_millis());
                let l = format!("{:.2}%", loss * 100.0);
                ip(&[
                    "netns", "exec", &ns, "tc", "qdisc", "replace", "dev", "eth0", "parent",
                    &parent, "handle", &handle, "netem", "delay", &d, &j, "loss", &l,
                ])
            }
        }
    }

    /// Removes every namespace, veth and the bridge (idempotent).
    pub fn remove(&self) {
        let mut removed = self.removed.lock();
        if *removed {
            return;
        }
        *removed = true;
        for i in 0..self.n {
            let _ = ip(&["link", "del", &self.veth(i)]);
            let _ = ip(&["netns", "del", &self.name(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.remove();
    }
}
