//! The Kubernetes watcher: lists for a resourceVersion, watches from it with bookmarks and a
//! short `timeoutSeconds` (so it resumes often), resumes at the last resourceVersion it saw, and
//! relists after 410 Gone. Each watch request is one recorded [`KubeWatchSession`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::kube::{object_of, KubeEvent, KubeTarget, KubeWatchSession};
use super::Ctx;

/// A watcher of the run's ConfigMaps: lists to get a resourceVersion, watches from it with
/// bookmarks, resumes from the last resourceVersion it saw when the stream ends (and from a new
/// list after 410 Gone).
pub async fn watcher(ctx: Arc<Ctx>, t: KubeTarget, id: u32) {
    let Ok(http) = t.client(Duration::from_secs(3600)) else {
        return;
    };
    let Ok(short) = t.client(ctx.op_timeout) else {
        return;
    };
    let mut from: Option<i64> = None;
    while !ctx.stopped() {
        let start = match from {
            Some(rv) => rv,
            None => {
                let list = short.get(t.collection()).bearer_auth(&t.token).send().await;
                let rv = match list {
                    Ok(r) if r.status().is_success() => {
                        r.json::<Value>().await.ok().and_then(|v| {
                            v.pointer("/metadata/resourceVersion")?
                                .as_str()?
                                .parse()
                                .ok()
                        })
                    }
                    _ => None,
                };
                match rv {
                    Some(rv) => rv,
                    None => {
                        if !super::pause(&ctx, Duration::from_millis(200)).await {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        let mut s = KubeWatchSession {
            watcher: id,
            start_rv: start,
            events: Vec::new(),
        };
        let url = format!(
            "{}?watch=1&allowWatchBookmarks=true&resourceVersion={start}&timeoutSeconds={}",
            t.collection(),
            5 + id % 7
        );
        let gone = watch_stream(&ctx, &http, &t.token, &url, &mut s).await;
        let last = s
            .events
            .iter()
            .filter(|e| e.kind != "ERROR")
            .map(|e| e.rv)
            .max()
            .unwrap_or(start);
        ctx.rec.with(|h| h.kube_watches.push(s));
        from = if gone { None } else { Some(last) };
        if !super::pause(&ctx, Duration::from_millis(50)).await {
            break;
        }
    }
}

/// Reads one watch stream into `s`; whether it ended with 410 Gone.
async fn watch_stream(
    ctx: &Ctx,
    http: &reqwest::Client,
    token: &str,
    url: &str,
    s: &mut KubeWatchSession,
) -> bool {
    let Ok(Ok(mut resp)) =
        tokio::time::timeout(ctx.op_timeout, http.get(url).bearer_auth(token).send()).await
    else {
        return false;
    };
    if resp.status().as_u16() == 410 {
        return true;
    }
    if !resp.status().is_success() {
        return false;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut stop = ctx.stop.clone();
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(30), resp.chunk()) => c,
            _ = crate::stop::raised(&mut stop) => return false,
        };
        let Ok(Ok(Some(chunk))) = chunk else {
            return false;
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let obj = v.get("object").cloned().unwrap_or(Value::Null);
            let at = ctx.clock.now();
            if kind == "ERROR" {
                let code = obj.get("code").and_then(Value::as_u64).map(|c| c as u16);
                s.events.push(KubeEvent {
                    at,
                    kind,
                    rv: 0,
                    obj: None,
                    code,
                });
                return code == Some(410);
            }
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let o = if kind == "BOOKMARK" {
                None
            } else {
                object_of(&obj)
            };
            s.events.push(KubeEvent {
                at,
                kind,
                rv,
                obj: o,
                code: None,
            });
        }
    }
}
