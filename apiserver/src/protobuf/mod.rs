//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! Typed Go clients (kubectl's `create configmap`, `auth can-i`, controllers built on
//! client-go) send protobuf by default. A body is the 4-byte magic `k8s\0` followed by a
//! `runtime.Unknown` envelope: the object's apiVersion and kind, and its bytes in the message
//! of that kind from Kubernetes' `generated.proto` files (compiled into a descriptor set by
//! build.rs). The apiserver works on JSON throughout, so a body is decoded dynamically into the
//! JSON the same Go client would have sent, and enters the same path as a JSON body.
//!
//! The Go encoder differs from its JSON encoder in one way that matters: it writes every
//! non-pointer field even when it holds the zero value, where JSON leaves such fields out. So a
//! zero scalar is dropped unless its field is a pointer in the Go type ([`pointers`]), and a few
//! message types with a JSON form of their own (times, quantities, int-or-string, raw JSON) are
//! converted as Kubernetes' JSON marshallers write them. Responses are JSON: every client that
//! sends protobuf accepts JSON too.

mod pointers;

use std::sync::OnceLock;

use base64::Engine;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as PValue,
};
use serde_json::{Map, Value};

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS).expect("build.rs compiled a valid descriptor set")
    })
}

/// `runtime.Unknown`, the envelope of every protobuf-encoded object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// The protobuf package of an API group/version: `k8s.io.api.<group's first label>.<version>`,
/// core as `k8s.io.api.core.v1`, meta.k8s.io (DeleteOptions and friends) in apimachinery.
fn package(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if group == "meta.k8s.io" || (group.is_empty() && matches!(kind, "DeleteOptions" | "Status")) {
        return format!("k8s.io.apimachinery.pkg.apis.meta.{version}");
    }
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("k8s.io.api.{short}.{version}")
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the protobuf magic number")?;
    let unknown = Unknown::decode(rest).map_err(|e| format!("invalid protobuf envelope: {e}"))?;
    if unknown
        .content_encoding
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err("content encodings other than none are not supported".into());
    }
    let tm = unknown.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err("the object has no apiVersion or kind".into());
    }
    let name = format!("{}.{kind}", package(&api_version, &kind));
    let desc = pool()
        .get_message_by_name(&name)
        .ok_or_else(|| format!("no kind \"{kind}\" is registered for version \"{api_version}\""))?;
    let msg = DynamicMessage::decode(desc, unknown.raw.unwrap_or_default().as_slice())
        .map_err(|e| format!("invalid {kind}: {e}"))?;
    let mut out = match message_json(&msg) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // Typed objects carry no type meta of their own: it is in the envelope.
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    obj.append(&mut out);
    Ok(Value::Object(obj))
}

fn is_pointer(msg: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    pointers::POINTER_SCALARS
        .binary_search_by(|(m, n)| (*m, *n).cmp(&(msg.full_name(), field.number())))
        .is_ok()
}

fn is_zero(v: &PValue) -> bool {
    match v {
        PValue::Bool(b) => !b,
        PValue::I32(n) | PValue::EnumNumber(n) => *n == 0,
        PValue::I64(n) => *n == 0,
        PValue::U32(n) => *n == 0,
        PValue::U64(n) => *n == 0,
        PValue::F32(n) => *n == 0.0,
        PValue::F64(n) => *n == 0.0,
        PValue::String(s) => s.is_empty(),
        PValue::Bytes(b) => b.is_empty(),
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => false,
    }
}

fn int_field(msg: &DynamicMessage, name: &str) -> i64 {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::I64(n)) => *n,
        Some(PValue::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn str_field(msg: &DynamicMessage, name: &str) -> String {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn bytes_field(msg: &DynamicMessage, name: &str) -> Vec<u8> {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::Bytes(b)) => b.to_vec(),
        _ => Vec::new(),
    }
}

/// A message as JSON; `Value::Null` means "leave the field out" (a zero time).
fn message_json(msg: &DynamicMessage) -> Value {
    let desc = msg.descriptor();
    match desc.full_name() {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => {
            time_json(int_field(msg, "seconds"), int_field(msg, "nanos"), false)
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            time_json(int_field(msg, "seconds"), int_field(msg, "nanos"), true)
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            Value::String(go_duration(int_field(msg, "duration")))
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => Value::String(str_field(msg, "string")),
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            if int_field(msg, "type") == 1 {
                Value::String(str_field(msg, "strVal"))
            } else {
                Value::from(int_field(msg, "intVal"))
            }
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => raw_json(&bytes_field(msg, "raw")),
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => raw_json(&bytes_field(msg, "Raw")),
        _ => {
            // Go's named slice types (`type ExtraValue []string`) are messages of one repeated
            // `items` field on the wire and plain arrays in JSON.
            let fields: Vec<FieldDescriptor> = desc.fields().collect();
            if fields.len() == 1 && fields[0].name() == "items" && fields[0].is_list() {
                return match msg.get_field(&fields[0]).as_ref() {
                    PValue::List(items) => {
                        Value::Array(items.iter().map(|v| value_json(&fields[0], v)).collect())
                    }
                    _ => Value::Array(Vec::new()),
                };
            }
            let mut out = Map::new();
            for (field, value) in msg.fields() {
                if !field.is_list()
                    && !field.is_map()
                    && is_zero(value)
                    && !is_pointer(&desc, &field)
                {
                    continue;
                }
                let v = value_json(&field, value);
                if v.is_null() {
                    continue;
                }
                out.insert(field.json_name_or_name(), v);
            }
            Value::Object(out)
        }
    }
}

trait JsonName {
    fn json_name_or_name(&self) -> String;
}

impl JsonName for FieldDescriptor {
    /// Kubernetes' .proto files name fields by their JSON names already; protoc's derived
    /// json_name would camel-case names such as `Raw`, so the declared name is used.
    fn json_name_or_name(&self) -> String {
        self.name().to_string()
    }
}

fn value_json(field: &FieldDescriptor, v: &PValue) -> Value {
    match v {
        PValue::Bool(b) => Value::Bool(*b),
        PValue::I32(n) | PValue::EnumNumber(n) => Value::from(*n),
        PValue::I64(n) => Value::from(*n),
        PValue::U32(n) => Value::from(*n),
        PValue::U64(n) => Value::from(*n),
        PValue::F32(n) => serde_json::Number::from_f64(f64::from(*n))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        PValue::F64(n) => serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        PValue::String(s) => Value::String(s.clone()),
        PValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::Message(m) => message_json(m),
        PValue::List(items) => Value::Array(
            items
                .iter()
                .map(|i| value_json(field, i))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        PValue::Map(entries) => {
            let value_field = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field(),
                _ => return Value::Null,
            };
            let mut out = Map::new();
            for (k, v) in entries {
                let key = match k {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                out.insert(key, value_json(&value_field, v));
            }
            Value::Object(out)
        }
    }
}

/// Embedded raw JSON (RawExtension, FieldsV1); anything else is left out.
fn raw_json(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw).unwrap_or(Value::Null)
}

/// metav1.Time (RFC 3339, whole seconds) or MicroTime (microseconds), UTC; the zero time is
/// null, as Kubernetes marshals it.
fn time_json(seconds: i64, nanos: i64, micro: bool) -> Value {
    if seconds == 0 && nanos == 0 {
        return Value::Null;
    }
    let Ok(t) = jiff::Timestamp::new(seconds, nanos.clamp(0, 999_999_999) as i32) else {
        return Value::Null;
    };
    let s = if micro {
        t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    } else {
        t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Value::String(s)
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s".
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    fn frac(v: u64, unit: u64, digits: usize) -> String {
        let whole = v / unit;
        let rem = v % unit;
        if rem == 0 {
            return whole.to_string();
        }
        let f = format!("{rem:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 1_000_000, 6));
    }
    let mut out = String::from(sign);
    let hours = u / 3_600_000_000_000;
    let rest = u % 3_600_000_000_000;
    let minutes = rest / 60_000_000_000;
    let secs = rest % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h{minutes}m"));
    } else if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", frac(secs, 1_000_000_000, 9)));
    out
}

#[cfg(test)]
mod tests;
