//! Response negotiation: which representation a read asked for in its Accept header.
//!
//! Kubernetes serves the same GET, LIST or WATCH as the object itself, as a Table
//! (`application/json;as=Table;v=v1;g=meta.k8s.io`, what `kubectl get` asks for), or as
//! PartialObjectMetadata(List) (metadata only, what metadata informers ask for). Objects are
//! served from the watch cache as pre-encoded JSON; the other forms are derived from that JSON
//! per request, so the shared fast path for ordinary clients is untouched.

use std::collections::HashMap;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::bytes_response;
use crate::registry::Resource;
use crate::status::{ApiError, ApiResult};
use crate::table;

/// What a Table row carries of its object (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

/// The representation a read is answered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Object,
    /// A Table of meta.k8s.io/<version>.
    Table(&'static str, Include),
    /// PartialObjectMetadata(List) of meta.k8s.io/<version>.
    Metadata(&'static str),
}

fn meta_version(params: &[(String, String)]) -> Option<&'static str> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    if get("g") != Some("meta.k8s.io") {
        return None;
    }
    match get("v") {
        Some("v1") => Some("v1"),
        Some("v1beta1") => Some("v1beta1"),
        _ => None,
    }
}

/// Picks the first media range of `accept` the apiserver can produce.
pub fn target(accept: &str, query: &HashMap<String, String>) -> ApiResult<Target> {
    let include = match query.get("includeObject").map(String::as_str) {
        None | Some("") | Some("Metadata") => Include::Metadata,
        Some("Object") => Include::Object,
        Some("None") => Include::None,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unrecognized includeObject value: \"{other}\""
            )))
        }
    };
    if accept.trim().is_empty() {
        return Ok(Target::Object);
    }
    let mut unsupported = Vec::new();
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .filter(|(k, _)| k != "q" && k != "stream")
            .collect();
        let json_like = matches!(
            media.as_str(),
            "application/json" | "*/*" | "application/*" | "application/vnd.kubernetes.protobuf"
        );
        if !json_like {
            unsupported.push(media);
            continue;
        }
        let as_ = params
            .iter()
            .find(|(k, _)| k == "as")
            .map(|(_, v)| v.as_str());
        match as_ {
            None => return Ok(Target::Object),
            Some("Table") => {
                if let Some(v) = meta_version(&params) {
                    return Ok(Target::Table(v, include));
                }
            }
            Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") => {
                if let Some(v) = meta_version(&params) {
                    return Ok(Target::Metadata(v));
                }
            }
            Some(_) => {}
        }
        unsupported.push(range.trim().to_string());
    }
    // YAML and CBOR readers and unknown forms: answered as JSON objects, which every client
    // library also accepts, unless the client asked only for a conversion we cannot make.
    if unsupported.iter().all(|m| !m.contains("as=")) {
        return Ok(Target::Object);
    }
    Err(ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io (got {accept})"
        ),
    ))
}

fn partial(version: &str, obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn row(res: &Resource, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let mut r = Map::new();
    r.insert(
        "cells".into(),
        Value::Array(table::cells(res.kind, obj, now)),
    );
    if let Some(c) = table::row_conditions(res.kind, obj) {
        r.insert("conditions".into(), c);
    }
    r.insert(
        "object".into(),
        match include {
            Include::None => Value::Null,
            Include::Metadata => partial("v1", obj),
            Include::Object => obj.clone(),
        },
    );
    Value::Object(r)
}

fn table_of(
    res: &Resource,
    version: &str,
    include: Include,
    objects: &[Value],
    metadata: Value,
    headers: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": metadata,
        "rows": objects.iter().map(|o| row(res, o, include, now)).collect::<Vec<_>>(),
    });
    if headers {
        t["columnDefinitions"] = table::column_definitions(res.kind);
    } else {
        t["columnDefinitions"] = Value::Null;
    }
    t
}

fn list_metadata(list: &Value) -> Value {
    let mut m = Map::new();
    if let Some(meta) = list.get("metadata").and_then(Value::as_object) {
        for k in ["resourceVersion", "continue", "remainingItemCount"] {
            if let Some(v) = meta.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
    }
    Value::Object(m)
}

/// Converts a GET or LIST answer (JSON bytes) into `target`.
fn convert_body(res: &Resource, target: Target, body: &[u8]) -> ApiResult<Bytes> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::internal(e.to_string()))?;
    let is_list = v.get("items").is_some_and(Value::is_array);
    let out = match (target, is_list) {
        (Target::Object, _) => return Ok(Bytes::copy_from_slice(body)),
        (Target::Table(version, include), true) => {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            table_of(res, version, include, &items, list_metadata(&v), true)
        }
        (Target::Table(version, include), false) => {
            let rv = v.pointer("/metadata/resourceVersion").cloned();
            let meta = rv
                .map(|rv| json!({ "resourceVersion": rv }))
                .unwrap_or(json!({}));
            table_of(res, version, include, std::slice::from_ref(&v), meta, true)
        }
        (Target::Metadata(version), true) => {
            let items: Vec<Value> = v["items"]
                .as_array()
                .map(|a| a.iter().map(|o| partial(version, o)).collect())
                .unwrap_or_default();
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": format!("meta.k8s.io/{version}"),
                "metadata": list_metadata(&v),
                "items": items,
            })
        }
        (Target::Metadata(version), false) => partial(version, &v),
    };
    Ok(Bytes::from(
        serde_json::to_vec(&out).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

/// Converts a successful GET or LIST response; anything else passes through.
pub async fn convert(
    res: &'static Resource,
    target: Target,
    resp: Response,
) -> ApiResult<Response> {
    if target == Target::Object || resp.status() != StatusCode::OK {
        return Ok(resp);
    }
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(bytes_response(
        StatusCode::OK,
        convert_body(res, target, &body)?,
    ))
}

/// Converts the lines of a watch stream, frame by frame. Table headers go with the first
/// event only, as kube-apiserver sends them.
struct WatchConverter {
    res: &'static Resource,
    target: Target,
    headers_sent: bool,
}

impl WatchConverter {
    fn line(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        let ev: Value = serde_json::from_slice(line).ok()?;
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
        let obj = ev.get("object").cloned().unwrap_or(Value::Null);
        let converted = if ty == "ERROR" {
            obj
        } else {
            match self.target {
                Target::Object => obj,
                Target::Metadata(version) => partial(version, &obj),
                Target::Table(version, include) => {
                    let rv = obj.pointer("/metadata/resourceVersion").cloned();
                    let meta = rv
                        .map(|rv| json!({ "resourceVersion": rv }))
                        .unwrap_or(json!({}));
                    let objects = if ty == "BOOKMARK" {
                        Vec::new()
                    } else {
                        vec![obj]
                    };
                    let headers = !self.headers_sent && ty != "BOOKMARK";
                    self.headers_sent |= headers;
                    table_of(self.res, version, include, &objects, meta, headers)
                }
            }
        };
        let mut out = serde_json::to_vec(&json!({ "type": ty, "object": converted })).ok()?;
        out.push(b'\n');
        Some(out)
    }

    fn frame(&mut self, frame: Bytes) -> Bytes {
        let mut out = Vec::with_capacity(frame.len() * 2);
        for line in frame.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(l) = self.line(line) {
                out.extend_from_slice(&l);
            }
        }
        Bytes::from(out)
    }
}

/// Converts a watch response's stream of event lines.
pub fn convert_watch(res: &'static Resource, target: Target, resp: Response) -> Response {
    use futures::StreamExt;
    if target == Target::Object || resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let mut conv = WatchConverter {
        res,
        target,
        headers_sent: false,
    };
    // Watch frames hold whole lines (the watcher writes complete events).
    let stream = body
        .into_data_stream()
        .map(move |chunk| chunk.map(|b| conv.frame(b)));
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> HashMap<String, String> {
        HashMap::new()
    }

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            target(accept, &q()).expect("ok"),
            Target::Table("v1", Include::Metadata)
        );
        assert_eq!(target("", &q()).expect("ok"), Target::Object);
        assert_eq!(
            target("application/vnd.kubernetes.protobuf,application/json", &q()).expect("ok"),
            Target::Object
        );
        assert_eq!(
            target(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                &q()
            )
            .expect("ok"),
            Target::Metadata("v1")
        );
        assert!(target("application/json;as=Table;v=v9;g=meta.k8s.io", &q()).is_err());
        let mut query = q();
        query.insert("includeObject".into(), "Bogus".into());
        assert!(target("", &query).is_err());
    }

    #[test]
    fn watch_tables_send_headers_once() {
        let res = crate::registry::lookup("", "v1", "pods").expect("pods");
        let mut conv = WatchConverter {
            res,
            target: Target::Table("v1", Include::Metadata),
            headers_sent: false,
        };
        let line = br#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"5"}}}"#;
        let mut frame = line.to_vec();
        frame.push(b'\n');
        frame.extend_from_slice(line);
        frame.push(b'\n');
        let out = conv.frame(Bytes::from(frame));
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0]["object"]["columnDefinitions"].is_array());
        assert!(lines[1]["object"]["columnDefinitions"].is_null());
        assert_eq!(lines[1]["object"]["rows"][0]["cells"][0], "p");
        assert_eq!(
            lines[1]["object"]["rows"][0]["object"]["kind"],
            "PartialObjectMetadata"
        );
        assert_eq!(lines[0]["object"]["metadata"]["resourceVersion"], "5");
    }
}
