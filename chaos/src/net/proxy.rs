//! A TCP fault proxy for one directed peer link (member i dialling member j), without root.
//!
//! Member i is told (with the store's hidden `--experimental-peer-dial-url`) to dial j's peer URL
//! at this proxy, which forwards to j's real listener. Everything i sends j goes through it; what
//! j sends i goes through the proxy of the link j -> i. So cutting one proxy is a one-way cut at
//! the message level, and cutting both directions of every link of a member isolates it.
//!
//! What the faults do, as close to a real network as a proxy can get:
//! - **cut** is a blackhole, not a reset: connections stay open and nothing is forwarded in
//!   either direction (reads stop, so TCP's own back-pressure holds the sender); new connections
//!   are accepted and held without reaching j. Peers notice through their HTTP/2 keep-alives,
//!   as they would on a partitioned network. When healed, held data flows again (as TCP
//!   retransmission would deliver it) unless an end gave up and closed meanwhile.
//! - **delay** holds each chunk i sends for a fixed time plus jitter, keeping order.
//! - **loss** cannot drop bytes inside a TCP stream without corrupting it; what packet loss does
//!   to a TCP connection is stall it for a retransmission timeout. So each chunk is, with the
//!   given probability, held for an extra RTO (200 ms, Linux's minimum, doubling on consecutive
//!   losses as TCP backs off). The network-namespace mode uses the kernel's real packet loss
//!   where the kernel has netem.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a link does to the traffic of its direction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LinkFault {
    #[default]
    Pass,
    Cut,
    Slow {
        delay: Duration,
        jitter: Duration,
        loss: f64,
    },
}

impl LinkFault {
    fn is_cut(&self) -> bool {
        matches!(self, LinkFault::Cut)
    }
}

/// Minimum retransmission timeout of Linux TCP.
const RTO: Duration = Duration::from_millis(200);
const CHUNK: usize = 64 * 1024;

/// A running link proxy. Dropping the handle does not stop it; `shutdown` does.
pub struct LinkProxy {
    pub port: u16,
    fault: watch::Sender<LinkFault>,
    stop: watch::Sender<bool>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl LinkProxy {
    /// Listens on a free loopback port and forwards to `target` (host:port).
    pub async fn start(target: String) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (fault, _) = watch::channel(LinkFault::Pass);
        let (stop, _) = watch::channel(false);
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let (f, s, t) = (fault.subscribe(), stop.subscribe(), tasks.clone());
        tasks.lock().spawn(accept_loop(listener, target, f, s, t));
        Ok(LinkProxy {
            port,
            fault,
            stop,
            tasks,
        })
    }

    pub fn set(&self, f: LinkFault) {
        self.fault.send_replace(f);
    }

    pub fn get(&self) -> LinkFault {
        *self.fault.borrow()
    }

    /// Stops accepting, closes every connection and waits for all its tasks (aborting, after a
    /// grace period, one stuck writing to a peer that stopped reading).
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (empty, joined) = {
                let mut t = self.tasks.lock();
                if Instant::now() > deadline {
                    t.abort_all();
                }
                let joined = t.try_join_next().is_some();
                (t.is_empty(), joined)
            };
            if empty {
                return;
            }
            if !joined {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: String,
    fault: watch::Receiver<LinkFault>,
    mut stop: watch::Receiver<bool>,
    tasks: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::stop::raised(&mut stop) => return,
        };
        let Ok((client, _)) = accepted else { continue };
        let _ = client.set_nodelay(true);
        let (f, s, t) = (fault.clone(), stop.clone(), target.clone());
        let mut set = tasks.lock();
        while set.try_join_next().is_some() {}
        set.spawn(connection(client, t, f, s));
    }
}

/// Waits until the link is not cut (or the proxy stops: false).
async fn wait_open(
    fault: &mut watch::Receiver<LinkFault>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        r = crate::stop::until(fault, |f| !f.is_cut()) => r,
        _ = crate::stop::raised(stop) => false,
    }
}

async fn connection(
    client: TcpStream,
    target: String,
    mut fault: watch::Receiver<LinkFault>,
    mut stop: watch::Receiver<bool>,
) {
    // A connection made while cut is held until the link heals (a SYN into a blackhole would
    // wait too); the dialler's own timeouts decide when to give up.
    if !wait_open(&mut fault, &mut stop).await {
        return;
    }
    let server = tokio::select! {
        s = TcpStream::connect(&target) => s,
        _ = crate::stop::raised(&mut stop) => return,
    };
    let Ok(server) = server else { return };
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // Forward (i -> j) gets delay and loss; both directions stop while cut.
    let fwd = pump(cr, sw, true, fault.clone(), stop.clone());
    let back = pump(sr, cw, false, fault, stop);
    tokio::join!(fwd, back);
}

/// Copies one direction until EOF, an error or the proxy stops, applying the link's fault.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    forward: bool,
    mut fault: watch::Receiver<LinkFault>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let (mut wfault, mut wstop) = (fault.clone(), stop.clone());
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = crate::stop::raised(&mut wstop) => return,
            }
            if !wait_open(&mut wfault, &mut wstop).await {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut last = Instant::now();
        let mut backoff = RTO;
        loop {
            if !wait_open(&mut fault, &mut stop).await {
                return;
            }
            let n = tokio::select! {
                n = from.read(&mut buf) => n,
                _ = crate::stop::until(&mut fault, |f| f.is_cut()) => continue,
                _ = crate::stop::raised(&mut stop) => return,
            };
            let n = match n {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut at = Instant::now();
            if let (
                true,
                LinkFault::Slow {
                    delay,
                    jitter,
                    loss,
                },
            ) = (forward, *fault.borrow())
            {
                let mut rng = rand::rng();
                at += delay;
                if !jitter.is_zero() {
                    at += jitter.mul_f64(rng.random::<f64>());
                }
                if loss > 0.0 && rng.random_bool(loss.clamp(0.0, 1.0)) {
                    at += backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                } else {
                    backoff = RTO;
                }
            }
            // Never reorder: a chunk leaves no earlier than the one before it.
            at = at.max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> (u16, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let h = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (port, h)
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> bool {
        if s.write_all(msg).await.is_err() {
            return false;
        }
        let mut b = vec![0u8; msg.len()];
        matches!(
            tokio::time::timeout(within, s.read_exact(&mut b)).await,
            Ok(Ok(_))
        ) && b == msg
    }

    #[tokio::test]
    async fn forwards_cuts_and_heals() {
        let (port, server) = echo_server().await;
        let p = LinkProxy::start(format!("127.0.0.1:{port}"))
            .await
            .expect("proxy");
        let mut c = TcpStream::connect(("127.0.0.1", p.port))
            .await
            .expect("connect");
        assert!(roundtrip(&mut c, b"hello", Duration::from_secs(30)).await);
        p.set(LinkFault::Cut);
        assert!(!roundtrip(&mut c, b"lost?", Duration::from_millis(300)).await);
        p.set(LinkFault::Pass);
        // What was sent during the cut arrives after it, as over TCP.
        let mut b = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(30), c.read_exact(&mut b))
            .await
            .expect("delivered after the heal")
            .expect("read");
        assert_eq!(&b, b"lost?");
        p.set(LinkFault::Slow {
            delay: Duration::from_millis(150),
            jitter: Duration::ZERO,
            loss: 0.0,
        });
        let t = Instant::now();
        assert!(roundtrip(&mut c, b"slow", Duration::from_secs(30)).await);
        assert!(t.elapsed() >= Duration::from_millis(150));
        p.shutdown().await;
        server.abort();
    }
}
