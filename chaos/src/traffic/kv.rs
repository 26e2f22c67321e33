//! KV clients: each picks an operation at random, sends it to its member, records it, and moves
//! to the next member when one fails (as etcd's client balancer would).
//!
//! The key space is small so operations on one key overlap. Every write carries a value unique
//! in the run (`c<client>.<n>`), so the revision history names the write behind each change;
//! deletes are a transaction that also writes a unique marker for the same reason. A
//! compare-and-swap expects the value this client last saw for the key, so it succeeds often
//! enough to matter. A lease cycle grants a lease (with an id chosen here, so a grant that timed
//! out can still be revoked), puts a key with it, keeps it alive once and revokes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_proto::etcdserverpb::{
    compare, kv_client::KvClient, lease_client::LeaseClient, request_op, response_op, Compare,
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest,
};

use super::{failure, kv_of, timed_out, Ctx};
use crate::history::{Input, KeepAlive, LeaseRecord, Op, Output};

/// Relative weights of the operations.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub put: u32,
    pub get: u32,
    pub get_serializable: u32,
    pub delete: u32,
    pub cas: u32,
    pub lease: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            put: 30,
            get: 25,
            get_serializable: 10,
            delete: 5,
            cas: 22,
            lease: 8,
        }
    }
}

/// Seconds a lease lives without keep-alives: far longer than a cycle can take (three requests
/// of at most `--op-timeout` each before the revoke is sent), so a lease only expires after its
/// revoke failed, and an expiry is never mistaken for the revoke that followed it.
const LEASE_TTL: i64 = 30;

struct Client {
    ctx: Arc<Ctx>,
    id: u32,
    member: usize,
    seq: u64,
    keys: usize,
    lease_keys: usize,
    /// The last value this client saw for each key (None: absent).
    seen: HashMap<String, Option<String>>,
    rng: StdRng,
}

pub async fn run(
    ctx: Arc<Ctx>,
    id: u32,
    member: usize,
    keys: usize,
    lease_keys: usize,
    mix: Mix,
    seed: u64,
) {
    let mut c = Client {
        ctx,
        id,
        member,
        seq: 0,
        keys,
        lease_keys,
        seen: HashMap::new(),
        rng: StdRng::seed_from_u64(seed),
    };
    let total = mix.put + mix.get + mix.get_serializable + mix.delete + mix.cas + mix.lease;
    while !c.ctx.stopped() {
        let mut pick = c.rng.random_range(0..total.max(1));
        let mut take = |w: u32| {
            if pick < w {
                true
            } else {
                pick -= w;
                false
            }
        };
        let ok = if take(mix.put) {
            c.put().await
        } else if take(mix.get) {
            c.get(false).await
        } else if take(mix.get_serializable) {
            c.get(true).await
        } else if take(mix.delete) {
            c.delete().await
        } else if take(mix.cas) {
            c.cas().await
        } else {
            c.lease_cycle().await
        };
        if !ok {
            // Another member, after a short pause, so a dead one is not hammered.
            c.member = (c.member + 1) % c.ctx.channels.len();
            if !super::pause(&c.ctx, Duration::from_millis(20)).await {
                break;
            }
        }
    }
}

impl Client {
    fn value(&mut self) -> String {
        self.seq += 1;
        format!("c{}.{}", self.id, self.seq)
    }

    fn key(&mut self) -> String {
        let k = self.rng.random_range(0..self.keys);
        self.ctx.kv_key(k)
    }

    fn kv(&self) -> KvClient<tonic::transport::Channel> {
        KvClient::new(self.ctx.channels[self.member].clone())
    }

    /// Runs `call` with the operation timeout; records the op; whether it succeeded.
    async fn record<F>(&mut self, input: Input, call: F) -> bool
    where
        F: std::future::Future<Output = Result<Output, tonic::Status>>,
    {
        let started = self.ctx.clock.now();
        let result = tokio::time::timeout(self.ctx.op_timeout, call).await;
        let now = self.ctx.clock.now();
        let (output, ret) = match result {
            Ok(Ok(o)) => (o, Some(now)),
            Ok(Err(s)) => {
                let o = failure(&s);
                let ret = matches!(o, Output::Refused { .. }).then_some(now);
                (o, ret)
            }
            Err(_) => (timed_out(self.ctx.op_timeout), None),
        };
        let ok = ret.is_some() && !matches!(output, Output::Refused { .. });
        self.learn(&input, &output);
        self.ctx.rec.op(Op {
            id: 0,
            client: self.id,
            member: self.member,
            call: started,
            ret,
            input,
            output,
        });
        ok
    }

    /// Remembers what the key holds, for the next compare-and-swap.
    fn learn(&mut self, input: &Input, output: &Output) {
        let key = input.key().to_string();
        match (input, output) {
            (Input::Put { value, .. }, Output::Put { .. }) => {
                self.seen.insert(key, Some(value.clone()));
            }
            (_, Output::Get { kv, .. }) => {
                self.seen.insert(key, kv.as_ref().map(|k| k.value.clone()));
            }
            (
                Input::Cas { value, .. },
                Output::Cas {
                    succeeded: true, ..
                },
            ) => {
                self.seen.insert(key, Some(value.clone()));
            }
            (_, Output::Cas { current, .. }) => {
                self.seen
                    .insert(key, current.as_ref().map(|k| k.value.clone()));
            }
            (Input::Delete { .. }, Output::Delete { .. }) => {
                self.seen.insert(key, None);
            }
            _ => {}
        }
    }

    async fn put(&mut self) -> bool {
        let (key, value) = (self.key(), self.value());
        let mut kv = self.kv();
        let req = PutRequest {
            key: key.clone().into(),
            value: value.clone().into(),
            ..Default::default()
        };
        self.record(
            Input::Put {
                key,
                value,
                lease: 0,
            },
            async move {
                let r = kv.put(req).await?.into_inner();
                Ok(Output::Put {
                    rev: r.header.map_or(0, |h| h.revision),
                })
            },
        )
        .await
    }

    async fn get(&mut self, serializable: bool) -> bool {
        let key = self.key();
        let mut kv = self.kv();
        let req = RangeRequest {
            key: key.clone().into(),
            serializable,
            ..Default::default()
        };
        self.record(Input::Get { key, serializable }, async move {
            let r = kv.range(req).await?.into_inner();
            Ok(Output::Get {
                rev: r.header.map_or(0, |h| h.revision),
                kv: r.kvs.first().map(kv_of),
            })
        })
        .await
    }

    async fn delete(&mut self) -> bool {
        let key = self.key();
        let marker = format!("{}.del", self.value());
        let marker_key = self.ctx.marker_key(self.id);
        let mut kv = self.kv();
        let req = TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(
                        DeleteRangeRequest {
                            key: key.clone().into(),
                            ..Default::default()
                        },
                    )),
                },
                RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: marker_key.into(),
                        value: marker.clone().into(),
                        ..Default::default()
                    })),
                },
            ],
            failure: vec![],
        };
        self.record(Input::Delete { key, marker }, async move {
            let r = kv.txn(req).await?.into_inner();
            let deleted = r
                .responses
                .first()
                .and_then(|x| match &x.response {
                    Some(response_op::Response::ResponseDeleteRange(d)) => Some(d.deleted),
                    _ => None,
                })
                .ok_or_else(|| {
                    tonic::Status::internal("txn answered without its delete response")
                })?;
            Ok(Output::Delete {
                rev: r.header.map_or(0, |h| h.revision),
                deleted,
            })
        })
        .await
    }

    async fn cas(&mut self) -> bool {
        let key = self.key();
        let expect = self.seen.get(&key).cloned().unwrap_or(None);
        let value = self.value();
        let cmp = match &expect {
            Some(v) => Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Value as i32,
                key: key.clone().into(),
                target_union: Some(compare::TargetUnion::Value(v.clone().into())),
                range_end: Default::default(),
            },
            None => Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                key: key.clone().into(),
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
                range_end: Default::default(),
            },
        };
        let req = TxnRequest {
            compare: vec![cmp],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.clone().into(),
                    value: value.clone().into(),
                    ..Default::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: key.clone().into(),
                    ..Default::default()
                })),
            }],
        };
        let mut kv = self.kv();
        self.record(Input::Cas { key, expect, value }, async move {
            let r = kv.txn(req).await?.into_inner();
            let current = if r.succeeded {
                None
            } else {
                match r.responses.first().and_then(|x| x.response.as_ref()) {
                    Some(response_op::Response::ResponseRange(g)) => g.kvs.first().map(kv_of),
                    _ => return Err(tonic::Status::internal("txn else branch without its range")),
                }
            };
            Ok(Output::Cas {
                rev: r.header.map_or(0, |h| h.revision),
                succeeded: r.succeeded,
                current,
            })
        })
        .await
    }

    /// Grant, put with the lease, one keep-alive, revoke.
    async fn lease_cycle(&mut self) -> bool {
        let id: i64 = self.rng.random_range(1..i64::MAX);
        let k = self.rng.random_range(0..self.lease_keys.max(1));
        let key = self.ctx.lease_key(k);
        let mut lc = LeaseClient::new(self.ctx.channels[self.member].clone());
        let limit = self.ctx.op_timeout;
        let grant_call = self.ctx.clock.now();
        let granted = tokio::time::timeout(
            limit,
            lc.lease_grant(LeaseGrantRequest { ttl: LEASE_TTL, id }),
        )
        .await;
        let granted = matches!(granted, Ok(Ok(ref r)) if r.get_ref().error.is_empty());
        let mut rec = LeaseRecord {
            id,
            client: self.id,
            ttl: LEASE_TTL,
            grant_call,
            grant_ret: granted.then(|| self.ctx.clock.now()),
            keepalives: Vec::new(),
            revoke_call: None,
        };
        let mut ok = granted;
        if granted {
            let value = self.value();
            let req = PutRequest {
                key: key.clone().into(),
                value: value.clone().into(),
                lease: id,
                ..Default::default()
            };
            let mut kv = self.kv();
            ok = self
                .record(
                    Input::Put {
                        key: key.clone(),
                        value: value.clone(),
                        lease: id,
                    },
                    async move {
                        let r = kv.put(req).await?.into_inner();
                        Ok(Output::Put {
                            rev: r.header.map_or(0, |h| h.revision),
                        })
                    },
                )
                .await;
            rec.keepalives.push(self.keep_alive(&mut lc, id).await);
            rec.revoke_call = Some(self.ctx.clock.now());
            let mut lc2 = lc.clone();
            ok &= self
                .record(
                    Input::Revoke {
                        key,
                        lease: id,
                        value,
                    },
                    async move {
                        let r = lc2
                            .lease_revoke(LeaseRevokeRequest { id })
                            .await?
                            .into_inner();
                        Ok(Output::Revoke {
                            rev: r.header.map_or(0, |h| h.revision),
                        })
                    },
                )
                .await;
        } else {
            // The grant may have been applied: do not leave a lease behind (nothing uses it).
            let _ = tokio::time::timeout(limit, lc.lease_revoke(LeaseRevokeRequest { id })).await;
        }
        self.ctx.rec.with(|h| h.leases.push(rec));
        ok
    }

    async fn keep_alive(
        &self,
        lc: &mut LeaseClient<tonic::transport::Channel>,
        id: i64,
    ) -> KeepAlive {
        let call = self.ctx.clock.now();
        let limit = self.ctx.op_timeout;
        let attempt = async {
            let req = futures::stream::iter(vec![LeaseKeepAliveRequest { id }]);
            let mut stream = lc.lease_keep_alive(req).await.ok()?.into_inner();
            stream.message().await.ok().flatten().map(|r| r.ttl)
        };
        let ttl = tokio::time::timeout(limit, attempt).await.ok().flatten();
        KeepAlive {
            call,
            ret: ttl.map(|_| self.ctx.clock.now()),
            ttl,
        }
    }
}
