//! The network between members, and the faults it can inject on each directed link.
//!
//! Two modes:
//! - [`proxy`] (default, no privileges): members on loopback, every directed peer link i -> j
//!   through its own TCP fault proxy (member i dials j's advertised peer URL at the proxy, via the
//!   store's hidden `--experimental-peer-dial-url`).
//! - [`netns`] (root): every member in its own network namespace on a bridge; cuts are
//!   blackhole routes (real packet drops) and delay/loss use the kernel's netem, where the
//!   kernel has it.
//!
//! Client traffic reaches members directly in both modes: faults are between members, as in
//! etcd's robustness tests.

pub mod netns;
pub mod proxy;

use std::collections::BTreeMap;
use std::process::Command;

pub use proxy::LinkFault;

/// How members are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Proxy,
    Netns,
}

pub enum Network {
    Proxy {
        /// (from, to) -> proxy
        links: BTreeMap<(usize, usize), proxy::LinkProxy>,
        client_ports: Vec<u16>,
        peer_ports: Vec<u16>,
    },
    Netns(netns::Namespaces),
}

impl Network {
    /// Sets up the network for `n` members.
    pub async fn new(mode: Mode, n: usize) -> Result<Network, String> {
        use crate::cluster::ports::free_port;
        match mode {
            Mode::Proxy => {
                let client_ports = (0..n)
                    .map(|_| free_port())
                    .collect::<Result<Vec<u16>, _>>()?;
                let peer_ports = (0..n)
                    .map(|_| free_port())
                    .collect::<Result<Vec<u16>, _>>()?;
                let mut links = BTreeMap::new();
                for i in 0..n {
                    for (j, port) in peer_ports.iter().enumerate() {
                        if i != j {
                            let p = proxy::LinkProxy::start(format!("127.0.0.1:{port}"))
                                .await
                                .map_err(|e| format!("start a link proxy: {e}"))?;
                            links.insert((i, j), p);
                        }
                    }
                }
                Ok(Network::Proxy {
                    links,
                    client_ports,
                    peer_ports,
                })
            }
            Mode::Netns => Ok(Network::Netns(netns::Namespaces::create(n)?)),
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Network::Proxy { .. } => Mode::Proxy,
            Network::Netns(_) => Mode::Netns,
        }
    }

    /// host:port of member `i`'s client listener.
    pub fn client_addr(&self, i: usize) -> String {
        match self {
            Network::Proxy { client_ports, .. } => format!("127.0.0.1:{}", client_ports[i]),
            Network::Netns(ns) => format!("{}:2379", ns.ip(i)),
        }
    }

    pub fn peer_url(&self, i: usize) -> String {
        match self {
            Network::Proxy { peer_ports, .. } => format!("http://127.0.0.1:{}", peer_ports[i]),
            Network::Netns(ns) => format!("http://{}:2380", ns.ip(i)),
        }
    }

    /// Extra `strata store` flags for member `i` (its dial overrides in proxy mode).
    pub fn member_flags(&self, i: usize) -> Vec<String> {
        match self {
            Network::Proxy { links, .. } => {
                let map: Vec<String> = links
                    .iter()
                    .filter(|((from, _), _)| *from == i)
                    .map(|((_, to), p)| {
                        format!("{}=http://127.0.0.1:{}", self.peer_url(*to), p.port)
                    })
                    .collect();
                if map.is_empty() {
                    Vec::new()
                } else {
                    vec![format!("--experimental-peer-dial-url={}", map.join(","))]
                }
            }
            Network::Netns(_) => Vec::new(),
        }
    }

    /// A command that runs `program` where member `i` lives.
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        match self {
            Network::Proxy { .. } => Command::new(program),
            Network::Netns(ns) => ns.command(i, program),
        }
    }

    /// Sets the fault of the directed link `from -> to`.
    pub fn set(&self, from: usize, to: usize, f: LinkFault) -> Result<(), String> {
        match self {
            Network::Proxy { links, .. } => {
                if let Some(p) = links.get(&(from, to)) {
                    p.set(f);
                }
                Ok(())
            }
            Network::Netns(ns) => ns.set(from, to, f),
        }
    }

    /// Whether delay and loss can be injected.
    pub fn supports_slow_links(&self) -> bool {
        match self {
            Network::Proxy { .. } => true,
            Network::Netns(ns) => ns.has_netem(),
        }
    }

    /// Every link back to normal.
    pub fn heal(&self, n: usize) -> Result<(), String> {
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    self.set(i, j, LinkFault::Pass)?;
                }
            }
        }
        Ok(())
    }

    /// Stops every proxy or removes every namespace.
    pub async fn shutdown(&mut self) {
        match self {
            Network::Proxy { links, .. } => {
                for p in links.values() {
                    p.shutdown().await;
                }
            }
            Network::Netns(ns) => ns.remove(),
        }
    }
}
