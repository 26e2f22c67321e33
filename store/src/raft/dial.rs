//! Dial-address overrides for peer links: the hidden `--experimental-peer-dial-url` flag.
//!
//! A member normally dials each peer at the URL the peer advertises (the membership table). A
//! fault-injection harness (`strata chaos`) needs every *directed* link `i -> j` to go through a
//! proxy of its own, so it can cut, delay or slow one direction without touching the others;
//! with a single advertised URL per member, all members would share one proxy in front of `j`.
//! This override is the seam: member `i` is told "when you dial `ADVERTISED`, dial `DIAL`
//! instead", and the harness gives each member its own proxies. Nothing else changes: the
//! membership table, member ids (derived from advertised URLs) and what peers see are the same.
//!
//! It wraps the [`PeerDirectory`] the transport reads, so every outgoing peer connection (the
//! message stream, snapshots, forwarded lease and membership calls) follows it, and the joining
//! member's first `Peer.Members` call uses [`DialMap::rewrite`] too.

use std::sync::Arc;

use super::PeerDirectory;
use crate::error::{Error, Result};

/// Advertised peer URL -> URL to dial instead.
#[derive(Debug, Clone, Default)]
pub struct DialMap {
    pairs: Vec<(String, String)>,
}

impl DialMap {
    /// Parses `ADVERTISED=DIAL` entries (each an http:// or https:// URL).
    pub fn parse(entries: &[String]) -> Result<Self> {
        let mut pairs = Vec::new();
        for e in entries.iter().filter(|e| !e.trim().is_empty()) {
            let (from, to) = e.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "--experimental-peer-dial-url entry {e:?} is not ADVERTISED_URL=DIAL_URL"
                ))
            })?;
            crate::config::parse_url(from)?;
            crate::config::parse_url(to)?;
            pairs.push((norm(from), norm(to)));
        }
        Ok(Self { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The URL to dial for a peer advertised at `url` (itself when no override names it).
    pub fn rewrite(&self, url: &str) -> String {
        let u = norm(url);
        self.pairs
            .iter()
            .find(|(from, _)| *from == u)
            .map_or(u, |(_, to)| to.clone())
    }

    /// A directory that answers `inner`'s URLs rewritten through this map.
    pub fn wrap(self, inner: Arc<dyn PeerDirectory>) -> Arc<dyn PeerDirectory> {
        if self.is_empty() {
            return inner;
        }
        Arc::new(Rewritten { inner, map: self })
    }
}

fn norm(u: &str) -> String {
    u.trim().trim_end_matches('/').to_string()
}

struct Rewritten {
    inner: Arc<dyn PeerDirectory>,
    map: DialMap,
}

impl PeerDirectory for Rewritten {
    fn peer_urls(&self, id: u64) -> Vec<String> {
        self.inner
            .peer_urls(id)
            .iter()
            .map(|u| self.map.rewrite(u))
            .collect()
    }

    fn is_member(&self, id: u64) -> bool {
        self.inner.is_member(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One;
    impl PeerDirectory for One {
        fn peer_urls(&self, _: u64) -> Vec<String> {
            vec![
                "http://127.0.0.1:2380/".into(),
                "http://127.0.0.1:2381".into(),
            ]
        }
        fn is_member(&self, id: u64) -> bool {
            id == 1
        }
    }

    #[test]
    fn rewrites_only_named_urls() {
        let map = DialMap::parse(&["http://127.0.0.1:2380=http://127.0.0.1:9000".into()])
            .expect("valid entry");
        let dir = map.wrap(Arc::new(One));
        assert_eq!(
            dir.peer_urls(1),
            vec!["http://127.0.0.1:9000", "http://127.0.0.1:2381"]
        );
        assert!(dir.is_member(1) && !dir.is_member(2));
        assert!(DialMap::parse(&["http://a:1".into()]).is_err());
        assert!(DialMap::parse(&["a:1=http://b:2".into()]).is_err());
        assert!(DialMap::parse(&[]).expect("empty").is_empty());
    }
}
