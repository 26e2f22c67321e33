//! Plain-HTTP endpoints beside gRPC: `/metrics` (Prometheus text), `/health`, `/version`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use strata_proto::etcdserverpb::AlarmType;

use crate::member::{Member, CLUSTER_VERSION, ETCD_VERSION};
use crate::metrics::sample;

pub fn add_routes(router: Router, member: Arc<Member>) -> Router {
    let own: Router = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/version", get(version))
        .with_state(member);
    router.merge(own)
}

async fn metrics(State(m): State<Arc<Member>>) -> impl IntoResponse {
    let mut out = String::with_capacity(8192);
    m.metrics.render(&mut out);
    let st = m.raft.status();
    let size = m.engine.size();
    let (watchers, slow) = m.hub.counts();
    sample(
        &mut out,
        "etcd_server_has_leader",
        "gauge",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        u8::from(st.leader != 0),
    );
    sample(
        &mut out,
        "etcd_server_is_leader",
        "gauge",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        u8::from(st.leader == m.id),
    );
    sample(
        &mut out,
        "etcd_server_proposals_pending",
        "gauge",
        "The current number of pending proposals to commit.",
        m.waiters.len(),
    );
    sample(&mut out, "etcd_server_id", "gauge", "Member ID.", m.id);
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!(
        "# HELP etcd_server_version Which version is running.\n# TYPE etcd_server_version gauge\netcd_server_version{{server_version=\"{ETCD_VERSION}\"}} 1\n"
    ));
    sample(
        &mut out,
        "etcd_server_quota_backend_bytes",
        "gauge",
        "Current backend storage quota size in bytes.",
        m.cfg.quota_bytes(),
    );
    sample(
        &mut out,
        "etcd_mvcc_db_total_size_in_bytes",
        "gauge",
        "Total size of the underlying database physically allocated in bytes.",
        size.total,
    );
    sample(
        &mut out,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "gauge",
        "Total size of the underlying database logically in use in bytes.",
        size.in_use,
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_keys_total",
        "gauge",
        "Total number of keys.",
        m.mvcc.key_count(),
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_current_revision",
        "gauge",
        "The current revision of store.",
        m.mvcc.current_revision(),
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_compact_revision",
        "gauge",
        "The revision of the last compaction in store.",
        m.mvcc.compact_revision(),
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_watcher_total",
        "gauge",
        "Total number of watchers.",
        watchers,
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_slow_watcher_total",
        "gauge",
        "Total number of unsynced slow watchers.",
        slow,
    );
    sample(
        &mut out,
        "etcd_debugging_mvcc_events_total",
        "counter",
        "Total number of events sent by this member.",
        m.hub.events_total.load(Ordering::Relaxed),
    );
    sample(
        &mut out,
        "etcd_debugging_lease_total",
        "gauge",
        "The number of leases.",
        m.lessor.len(),
    );
    sample(
        &mut out,
        "etcd_server_slow_watchers_caught_up_total",
        "counter",
        "Watchers that fell behind into catch-up from history.",
        m.hub.slow_total.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn health(State(m): State<Arc<Member>>) -> impl IntoResponse {
    let reason = if m.raft.status().leader == 0 {
        "RAFT NO LEADER".to_string()
    } else if m.alarms.has(AlarmType::Nospace) {
        "ALARM NOSPACE".to_string()
    } else if m.raft.is_stopped() {
        "RAFT STOPPED".to_string()
    } else {
        String::new()
    };
    let healthy = reason.is_empty();
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = format!("{{\"health\":\"{healthy}\",\"reason\":\"{reason}\"}}");
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn version() -> impl IntoResponse {
    let body =
        format!("{{\"etcdserver\":\"{ETCD_VERSION}\",\"etcdcluster\":\"{CLUSTER_VERSION}\"}}");
    ([(header::CONTENT_TYPE, "application/json")], body)
}
