//! Data-driven tests of the store below the wire: each file in `tests/testdata/` is a script of
//! commands, each followed by `----` and the output it must produce. The commands run against a
//! real member (RocksDB engine, raft-rs, applier, MVCC, lessor, watch hub) in a temporary
//! directory. Set `UPDATE_SCRIPTS=1` to rewrite the expected output after a deliberate change.
//!
//! Commands:
//!   put KEY VALUE [lease=ID] [prev]
//!   get KEY [end=END|prefix|all] [rev=N] [limit=N] [keys] [count] [serializable]
//!       [sort=key|version|create|mod|value] [order=asc|desc] [minmod=N] [maxmod=N]
//!   del KEY [end=END|prefix] [prev]
//!   txn CMP[ CMP...] then OP[, OP...] [else OP[, OP...]]
//!       CMP is target(KEY)OP VALUE, target one of value|version|create|mod|lease, OP = != < >;
//!       OP is `put K V`, `get K`, `del K`
//!   compact REV
//!   lease-grant ID TTL | lease-revoke ID
//!   watch NAME KEY [prefix] [from=N] [prev] [noput] [nodelete]   (opens a watcher)
//!   events NAME                                                  (prints what it received)
//!   restart                                                      (stops and reopens the member)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_proto::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op::Request as Op,
    response_op::Response as OpResp,
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest,
    PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use strata_proto::mvccpb::{event::EventType, KeyValue};
use strata_proto::peer::RaftRequest;
use strata_store::apply::{range, Response};
use strata_store::member::Member;
use strata_store::watch::{StreamMsg, WatchSpec, WatchStream};
use strata_store::StoreConfig;
use tokio::sync::mpsc;

/// Proposes one request through the member and takes the applied response of the expected kind;
/// a failed request becomes the command's `error:` output.
macro_rules! replicate {
    ($h:expr, $field:ident: $value:expr => $variant:ident) => {
        match $h
            .propose(RaftRequest {
                $field: Some($value),
                ..Default::default()
            })
            .await?
        {
            Response::$variant(r) => r,
            other => panic!("unexpected applied result {other:?}"),
        }
    };
}

struct Harness {
    dir: tempfile::TempDir,
    member: Option<Arc<Member>>,
    watches: HashMap<String, (WatchStream, mpsc::Receiver<StreamMsg>)>,
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn prefix_end(k: &str) -> Bytes {
    let mut end = k.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end.into();
        }
    }
    Bytes::from_static(&[0])
}

fn kv_line(kv: &KeyValue) -> String {
    let mut s = format!(
        "{}={} create={} mod={} ver={}",
        String::from_utf8_lossy(&kv.key),
        String::from_utf8_lossy(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version
    );
    if kv.lease != 0 {
        let _ = write!(s, " lease={}", kv.lease);
    }
    s
}

fn flag<'a>(args: &'a [&'a str], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

fn has(args: &[&str], name: &str) -> bool {
    args.contains(&name)
}

fn range_end(key: &str, args: &[&str]) -> Bytes {
    if has(args, "prefix") {
        prefix_end(key)
    } else if has(args, "all") {
        Bytes::from_static(&[0])
    } else {
        flag(args, "end").map(b).unwrap_or_default()
    }
}

fn parse_op(s: &str) -> RequestOp {
    let w: Vec<&str> = s.split_whitespace().collect();
    let request = match w.as_slice() {
        ["put", k, v] => Op::RequestPut(PutRequest {
            key: b(k),
            value: b(v),
            ..Default::default()
        }),
        ["get", k] => Op::RequestRange(RangeRequest {
            key: b(k),
            ..Default::default()
        }),
        ["del", k] => Op::RequestDeleteRange(DeleteRangeRequest {
            key: b(k),
            ..Default::default()
        }),
        _ => panic!("bad txn op {s:?}"),
    };
    RequestOp {
        request: Some(request),
    }
}

fn parse_compare(s: &str) -> Compare {
    let open = s.find('(').expect("target(key)");
    let close = s.find(')').expect("target(key)");
    let (target, key) = (&s[..open], &s[open + 1..close]);
    let rest = &s[close + 1..];
    let (op, value) = if let Some(v) = rest.strip_prefix("!=") {
        (CompareResult::NotEqual, v)
    } else {
        let (o, v) = rest.split_at(1);
        let op = match o {
            "=" => CompareResult::Equal,
            "<" => CompareResult::Less,
            ">" => CompareResult::Greater,
            _ => panic!("bad compare {s:?}"),
        };
        (op, v)
    };
    let num = || value.parse::<i64>().expect("numeric compare value");
    let (t, u) = match target {
        "value" => (CompareTarget::Value, TargetUnion::Value(b(value))),
        "version" => (CompareTarget::Version, TargetUnion::Version(num())),
        "create" => (CompareTarget::Create, TargetUnion::CreateRevision(num())),
        "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(num())),
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(num())),
        _ => panic!("bad compare target {target:?}"),
    };
    Compare {
        result: op as i32,
        target: t as i32,
        key: b(key),
        target_union: Some(u),
        ..Default::default()
    }
}

impl Harness {
    fn open(dir: tempfile::TempDir) -> Self {
        let cfg = StoreConfig {
            data_dir: dir.path().join("data"),
            election_timeout: 500,
            heartbeat_interval: 50,
            ..Default::default()
        };
        let member = Member::open(cfg, None, None).expect("open member");
        Harness {
            dir,
            member: Some(member),
            watches: HashMap::new(),
        }
    }

    fn m(&self) -> &Arc<Member> {
        self.member.as_ref().expect("member is open")
    }

    async fn propose(&self, req: RaftRequest) -> Result<Response, String> {
        self.m().propose(req).await.map_err(|e| e.to_string())
    }

    async fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = (words[0], &words[1..]);
        let mut out = String::new();
        let result: Result<(), String> = async {
            match cmd {
                "put" => {
                    let lease = flag(args, "lease").map_or(0, |l| l.parse().expect("lease id"));
                    let put = PutRequest {
                        key: b(args[0]),
                        value: b(args[1]),
                        lease,
                        prev_kv: has(args, "prev"),
                        ..Default::default()
                    };
                    let r = replicate!(self, put: put => Put);
                    let _ = write!(out, "rev={}", r.header.expect("header").revision);
                    if let Some(p) = r.prev_kv {
                        let _ = write!(out, "\nprev: {}", kv_line(&p));
                    }
                }
                "get" => {
                    let sort_target = match flag(args, "sort") {
                        Some("version") => SortTarget::Version,
                        Some("create") => SortTarget::Create,
                        Some("mod") => SortTarget::Mod,
                        Some("value") => SortTarget::Value,
                        _ => SortTarget::Key,
                    };
                    let sort_order = match flag(args, "order") {
                        Some("asc") => SortOrder::Ascend,
                        Some("desc") => SortOrder::Descend,
                        _ => SortOrder::None,
                    };
                    let req = RangeRequest {
                        key: b(args[0]),
                        range_end: range_end(args[0], args),
                        revision: flag(args, "rev").map_or(0, |r| r.parse().expect("rev")),
                        limit: flag(args, "limit").map_or(0, |r| r.parse().expect("limit")),
                        keys_only: has(args, "keys"),
                        count_only: has(args, "count"),
                        serializable: has(args, "serializable"),
                        sort_target: sort_target as i32,
                        sort_order: sort_order as i32,
                        min_mod_revision: flag(args, "minmod")
                            .map_or(0, |r| r.parse().expect("minmod")),
                        max_mod_revision: flag(args, "maxmod")
                            .map_or(0, |r| r.parse().expect("maxmod")),
                        ..Default::default()
                    };
                    if !req.serializable {
                        self.m()
                            .linearizable_barrier()
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    let view = self
                        .m()
                        .mvcc
                        .read_at(req.revision)
                        .map_err(|e| e.to_string())?;
                    let r = range::execute(&view, &req).map_err(|e| e.to_string())?;
                    for kv in &r.kvs {
                        let _ = writeln!(out, "{}", kv_line(kv));
                    }
                    let _ = write!(
                        out,
                        "count={} more={} rev={}",
                        r.count,
                        r.more,
                        r.header.expect("header").revision
                    );
                }
                "del" => {
                    let del = DeleteRangeRequest {
                        key: b(args[0]),
                        range_end: range_end(args[0], args),
                        prev_kv: has(args, "prev"),
                    };
                    let r = replicate!(self, delete_range: del => DeleteRange);
                    let _ = write!(
                        out,
                        "deleted={} rev={}",
                        r.deleted,
                        r.header.expect("header").revision
                    );
                    for p in r.prev_kvs {
                        let _ = write!(out, "\nprev: {}", kv_line(&p));
                    }
                }
                "txn" => {
                    let text = line.trim_start_matches("txn").trim();
                    let (cmp_text, rest) = text.split_once(" then ").expect("txn ... then ...");
                    let (then_text, else_text) = rest.split_once(" else ").unwrap_or((rest, ""));
                    let ops = |t: &str| {
                        t.split(',')
                            .filter(|s| !s.trim().is_empty())
                            .map(|s| parse_op(s.trim()))
                            .collect()
                    };
                    let txn = TxnRequest {
                        compare: cmp_text.split_whitespace().map(parse_compare).collect(),
                        success: ops(then_text),
                        failure: ops(else_text),
                    };
                    let r = replicate!(self, txn: txn => Txn);
                    let _ = write!(
                        out,
                        "succeeded={} rev={}",
                        r.succeeded,
                        r.header.expect("header").revision
                    );
                    for op in r.responses {
                        match op.response {
                            Some(OpResp::ResponseRange(rr)) => {
                                for kv in rr.kvs {
                                    let _ = write!(out, "\n  get: {}", kv_line(&kv));
                                }
                            }
                            Some(OpResp::ResponsePut(_)) => out.push_str("\n  put"),
                            Some(OpResp::ResponseDeleteRange(d)) => {
                                let _ = write!(out, "\n  del: {}", d.deleted);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                "compact" => {
                    let c = CompactionRequest {
                        revision: args[0].parse().expect("rev"),
                        physical: true,
                    };
                    let r = replicate!(self, compaction: c => Compaction);
                    let _ = write!(out, "ok rev={}", r.header.expect("header").revision);
                }
                "lease-grant" => {
                    let g = LeaseGrantRequest {
                        id: args[0].parse().expect("id"),
                        ttl: args[1].parse().expect("ttl"),
                    };
                    let r = replicate!(self, lease_grant: g => LeaseGrant);
                    let _ = write!(out, "id={} ttl={}", r.id, r.ttl);
                }
                "lease-revoke" => {
                    let rv = LeaseRevokeRequest {
                        id: args[0].parse().expect("id"),
                    };
                    let r = replicate!(self, lease_revoke: rv => LeaseRevoke);
                    let _ = write!(out, "ok rev={}", r.header.expect("header").revision);
                }
                "watch" => {
                    let (stream, rx) = self.m().hub.open_stream();
                    let spec = WatchSpec {
                        key: b(args[1]),
                        range_end: range_end(args[1], args),
                        start_revision: flag(args, "from").map_or(0, |r| r.parse().expect("from")),
                        prev_kv: has(args, "prev"),
                        no_put: has(args, "noput"),
                        no_delete: has(args, "nodelete"),
                        ..Default::default()
                    };
                    let id = stream.create(0, spec).map_err(|e| format!("{e:?}"))?;
                    self.watches.insert(args[0].to_string(), (stream, rx));
                    let _ = write!(out, "watch id={id}");
                }
                "events" => {
                    let (_, rx) = self.watches.get_mut(args[0]).expect("known watch");
                    // Everything published so far is queued or being caught up; wait briefly
                    // for catch-up tasks, then drain.
                    let mut lines = Vec::new();
                    loop {
                        match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                            Ok(Some(StreamMsg::Events { rev, events, .. })) => {
                                let evs: Vec<String> = events
                                    .iter()
                                    .map(|e| {
                                        let kv = e.kv.as_ref().expect("kv");
                                        let t = if e.r#type == EventType::Put as i32 {
                                            "PUT"
                                        } else {
                                            "DELETE"
                                        };
                                        format!("{t} {}", String::from_utf8_lossy(&kv.key))
                                    })
                                    .collect();
                                lines.push(format!("rev={rev}: {}", evs.join(", ")));
                            }
                            Ok(Some(StreamMsg::Compacted { compact_rev, .. })) => {
                                lines.push(format!("compacted at {compact_rev}"))
                            }
                            Ok(Some(other)) => lines.push(format!("{other:?}")),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    out.push_str(if lines.is_empty() { "(none)" } else { "" });
                    out.push_str(&lines.join("\n"));
                }
                "restart" => {
                    self.watches.clear();
                    let m = self.member.take().expect("open");
                    m.stop().map_err(|e| e.to_string())?;
                    drop(m);
                    let dir =
                        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
                    let reopened = Harness::open(dir);
                    *self = reopened;
                    out.push_str("ok");
                }
                other => panic!("unknown command {other:?}"),
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => out.trim_end().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }
}

async fn run_script(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("read script");
    let mut h = Harness::open(tempfile::tempdir().expect("tempdir"));
    // Wait for the one-member group to elect itself.
    h.m().linearizable_barrier().await.expect("member ready");
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    for block in text.split("\n\n") {
        let block = block.trim_matches('\n');
        if block.is_empty() {
            continue;
        }
        let (cmd_part, expected) = block.split_once("\n----").unwrap_or((block, ""));
        let expected = expected.trim_start_matches('\n').trim_end();
        let mut actual = String::new();
        for line in cmd_part
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let got = h.run(line).await;
            if !actual.is_empty() {
                actual.push('\n');
            }
            actual.push_str(&got);
        }
        if actual != expected {
            failures.push(format!(
                "{cmd_part}\n--- expected:\n{expected}\n--- actual:\n{actual}"
            ));
        }
        let _ = write!(rewritten, "{cmd_part}\n----\n{actual}\n\n");
    }
    if std::env::var("UPDATE_SCRIPTS").is_ok() {
        std::fs::write(path, rewritten.trim_end().to_string() + "\n").expect("rewrite script");
        return;
    }
    if let Some(m) = h.member.take() {
        let _ = m.stop();
    }
    assert!(
        failures.is_empty(),
        "{}: {} mismatches:\n\n{}",
        path.display(),
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for p in paths {
        run_script(&p).await;
    }
}
