//! LIST: from the watch cache (consistent reads wait for the cache to reach the store's
//! revision), or, for pagination and exact revisions, from the store at one revision so every
//! page comes from the same snapshot.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, BytesMut};
use http::StatusCode;
use serde_json::{json, Value};

use super::bytes_response;
use super::objects::{store_error, Ctx};
use crate::cache::{Filter, Obj};
use crate::selectors::{field_selector_fields, FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::storage::{prefix_end, StoreError};

/// How long a read waits for the cache to reach a revision before giving up on it.
const FRESH_WAIT: Duration = Duration::from_secs(3);

/// The namespace, label and field selectors of a list or watch.
pub fn filter_from_query(ctx: &Ctx<'_>) -> ApiResult<Filter> {
    let labels = match ctx.query.get("labelSelector") {
        Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
        None => LabelSelector::everything(),
    };
    let fields = match ctx.query.get("fieldSelector") {
        Some(s) => FieldSelector::parse(s, field_selector_fields(ctx.res.kind))
            .map_err(ApiError::bad_request)?,
        None => FieldSelector::everything(),
    };
    // A list over all namespaces pinned to one by metadata.namespace reads only that one.
    let namespace = if ctx.namespace.is_empty() && ctx.res.namespaced {
        fields.exact("metadata.namespace").unwrap_or("").to_string()
    } else {
        ctx.namespace.to_string()
    };
    Ok(Filter {
        prefix: ctx.res.namespace_prefix(&namespace),
        labels,
        fields,
    })
}

/// A continue token, in Kubernetes' format: base64url of
/// `{"v":"meta.k8s.io/v1","rv":R,"start":"<key after the prefix>\u0000"}`.
fn encode_continue(rv: i64, next_key: &[u8], prefix: &str) -> String {
    let rel = String::from_utf8_lossy(&next_key[prefix.len().min(next_key.len())..]).into_owned();
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": rel });
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str, prefix: &str) -> ApiResult<(i64, Vec<u8>)> {
    let bad = || ApiError::bad_request("continue key is not valid: the token could not be decoded");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    let mut key = prefix.as_bytes().to_vec();
    key.extend_from_slice(start.as_bytes());
    Ok((rv, key))
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// One page read from the store.
struct StorePage {
    items: Vec<Arc<Obj>>,
    rv: i64,
    next: Option<Vec<u8>>,
    remaining: Option<i64>,
}

/// Reads up to `limit` matching objects (0 = all) from `start` at revision `rv` (0 = now).
async fn read_store(
    ctx: &Ctx<'_>,
    filter: &Filter,
    start: Vec<u8>,
    rv: i64,
    limit: i64,
) -> Result<StorePage, StoreError> {
    let end = prefix_end(filter.prefix.as_bytes());
    let mut items = Vec::new();
    let mut key = start;
    let mut rev = rv;
    let filtering = !filter.labels.is_empty() || !filter.fields.is_empty();
    loop {
        let want = if limit > 0 {
            (limit - items.len() as i64).max(1)
        } else {
            1000
        };
        // With selectors, read bigger pages: most keys may not match.
        let batch = if filtering && limit > 0 {
            want.max(500)
        } else {
            want
        };
        let page = ctx.api.store.range(&key, &end, rev, batch).await?;
        if rev == 0 {
            rev = page.revision;
        }
        let n = page.kvs.len();
        for (i, kv) in page.kvs.iter().enumerate() {
            let k = String::from_utf8_lossy(&kv.key).into_owned();
            let obj = match Obj::decode(&k, &kv.value, kv.mod_revision) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping undecodable stored object");
                    continue;
                }
            };
            if filter.matches(&obj) {
                items.push(Arc::new(obj));
            }
            if limit > 0 && items.len() as i64 >= limit {
                let more = i + 1 < n || page.more;
                if !more {
                    return Ok(StorePage {
                        items,
                        rv: rev,
                        next: None,
                        remaining: None,
                    });
                }
                let mut next = kv.key.to_vec();
                next.push(0);
                let remaining = (!filtering).then(|| (page.count - (i as i64 + 1)).max(0));
                return Ok(StorePage {
                    items,
                    rv: rev,
                    next: Some(next),
                    remaining,
                });
            }
        }
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => {
                key = last.key.to_vec();
                key.push(0);
            }
            _ => {
                return Ok(StorePage {
                    items,
                    rv: rev,
                    next: None,
                    remaining: None,
                })
            }
        }
    }
}

/// Every matching object, read from the store at its current revision.
pub async fn read_all_from_store(
    ctx: &Ctx<'_>,
    filter: &Filter,
) -> ApiResult<(Vec<Arc<Obj>>, i64)> {
    let page = read_store(ctx, filter, filter.prefix.as_bytes().to_vec(), 0, 0)
        .await
        .map_err(store_error)?;
    Ok((page.items, page.rv))
}

/// Writes the list object around already-encoded items.
fn list_body(
    ctx: &Ctx<'_>,
    items: &[Arc<Obj>],
    rv: i64,
    cont: Option<String>,
    remaining: Option<i64>,
) -> bytes::Bytes {
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let head = format!(
        "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        ctx.res.list_kind(),
        ctx.res.api_version(),
        meta
    );
    let size: usize = items.iter().map(|o| o.json.len() + 1).sum();
    let mut b = BytesMut::with_capacity(head.len() + size + 2);
    b.put_slice(head.as_bytes());
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.put_slice(&o.json);
    }
    b.put_slice(b"]}");
    b.freeze()
}

fn parse_rv(s: &str) -> ApiResult<i64> {
    s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid resourceVersion \"{s}\": must be a non-negative integer"
        ))
    })
}

/// A too-new resourceVersion (the cache did not reach it in time).
pub fn too_large(rv: i64, current: i64) -> ApiError {
    let mut e = ApiError::timeout(format!(
        "Timeout: Too large resource version: {rv}, current: {current}"
    ));
    e.details = Some(
        json!({ "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }], "retryAfterSeconds": 1 }),
    );
    e
}

/// GET on a collection.
pub async fn list(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let filter = filter_from_query(ctx)?;
    let limit = match ctx.query.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit \"{l}\"")))?
            .max(0),
        None => 0,
    };
    let rv = ctx
        .query
        .get("resourceVersion")
        .filter(|s| !s.is_empty())
        .cloned();
    let rv_match = ctx
        .query
        .get("resourceVersionMatch")
        .filter(|s| !s.is_empty())
        .cloned();
    if let Some(m) = &rv_match {
        if !matches!(m.as_str(), "NotOlderThan" | "Exact") {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        if rv.is_none() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if m == "Exact" && rv.as_deref() == Some("0") {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if let Some(token) = ctx.query.get("continue").filter(|s| !s.is_empty()) {
        if rv.is_some() {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (at, start) = decode_continue(token, &filter.prefix)?;
        let page = read_store(ctx, &filter, start, at, limit)
            .await
            .map_err(|e| match e {
                StoreError::Compacted => ApiError::expired(EXPIRED_CONTINUE),
                e => store_error(e),
            })?;
        return Ok(store_page_response(ctx, &filter, page));
    }
    let cache = ctx.api.cache(ctx.res);
    match (rv.as_deref(), rv_match.as_deref()) {
        // Consistent: the store's current revision, served from the cache once it has
        // caught up (or from the store when a page size is asked for).
        (None, _) => {
            if limit > 0 {
                let page = read_store(ctx, &filter, filter.prefix.as_bytes().to_vec(), 0, limit)
                    .await
                    .map_err(store_error)?;
                return Ok(store_page_response(ctx, &filter, page));
            }
            let current = ctx
                .api
                .store
                .current_revision()
                .await
                .map_err(store_error)?;
            if cache.wait_for(current, FRESH_WAIT).await {
                let (items, at) = cache.list(&filter);
                return Ok(bytes_response(
                    StatusCode::OK,
                    list_body(ctx, &items, at, None, None),
                ));
            }
            let (items, at) = read_all_from_store(ctx, &filter).await?;
            Ok(bytes_response(
                StatusCode::OK,
                list_body(ctx, &items, at, None, None),
            ))
        }
        // Any revision: whatever the cache has.
        (Some("0"), _) => {
            if !cache.ready() && !cache.wait_for(0, FRESH_WAIT).await {
                let (items, at) = read_all_from_store(ctx, &filter).await?;
                return Ok(bytes_response(
                    StatusCode::OK,
                    list_body(ctx, &items, at, None, None),
                ));
            }
            let (items, at) = cache.list(&filter);
            Ok(bytes_response(
                StatusCode::OK,
                list_body(ctx, &items, at, None, None),
            ))
        }
        // Exactly revision N (or N with a page size, as Kubernetes does): from the store.
        (Some(v), m) if m == Some("Exact") || (m.is_none() && limit > 0) => {
            let at = parse_rv(v)?;
            let page = read_store(ctx, &filter, filter.prefix.as_bytes().to_vec(), at, limit)
                .await
                .map_err(|e| match e {
                    StoreError::Compacted => ApiError::expired(format!(
                        "The resourceVersion for the provided list is too old. (requested {at})"
                    )),
                    StoreError::FutureRevision => too_large(at, 0),
                    e => store_error(e),
                })?;
            Ok(store_page_response(ctx, &filter, page))
        }
        // Not older than N with a page size: pages from the store's current revision.
        (Some(v), _) if limit > 0 => {
            parse_rv(v)?;
            let page = read_store(ctx, &filter, filter.prefix.as_bytes().to_vec(), 0, limit)
                .await
                .map_err(store_error)?;
            Ok(store_page_response(ctx, &filter, page))
        }
        // Not older than N: the cache once it has reached N.
        (Some(v), _) => {
            let at = parse_rv(v)?;
            if !cache.wait_for(at, FRESH_WAIT).await {
                return Err(too_large(at, cache.revision()));
            }
            let (items, rev) = cache.list(&filter);
            Ok(bytes_response(
                StatusCode::OK,
                list_body(ctx, &items, rev, None, None),
            ))
        }
    }
}

fn store_page_response(ctx: &Ctx<'_>, filter: &Filter, page: StorePage) -> Response {
    let cont = page
        .next
        .as_ref()
        .map(|k| encode_continue(page.rv, k, &filter.prefix));
    bytes_response(
        StatusCode::OK,
        list_body(ctx, &page.items, page.rv, cont, page.remaining),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, b"/registry/pods/a/b\0", "/registry/pods/");
        let (rv, key) = decode_continue(&t, "/registry/pods/").expect("decodes");
        assert_eq!(rv, 42);
        assert_eq!(key, b"/registry/pods/a/b\0".to_vec());
        assert!(decode_continue("!!!", "/registry/pods/").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/x"}"#);
        assert!(decode_continue(&evil, "/registry/pods/").is_err());
    }
}
