//! JSON patch (RFC 6902): add, remove, replace, move, copy and test, with JSON pointers
//! (RFC 6901: `~1` is `/`, `~0` is `~`, `-` is past the end of an array).
//!
//! Behaviour follows the library kube-apiserver uses (evanphx/json-patch v4): negative array
//! indices count from the end, `test` of an absent member against `null` passes, numbers
//! compare by value (1 equals 1.0), and a failed operation leaves the document untouched
//! (operations run on a copy).

use serde_json::{Map, Value};

/// kube-apiserver's cap on operations in one JSON patch.
pub const MAX_OPERATIONS: usize = 10_000;

/// Why a JSON patch was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPatchError {
    /// The body is not a JSON array of operations (400).
    Decode(String),
    /// More than [`MAX_OPERATIONS`] operations (413).
    TooManyOperations(usize),
    /// An operation does not apply, or a `test` failed (422).
    Apply(String),
}

impl std::fmt::Display for JsonPatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonPatchError::Decode(m) | JsonPatchError::Apply(m) => f.write_str(m),
            JsonPatchError::TooManyOperations(n) => write!(
                f,
                "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {n}"
            ),
        }
    }
}

/// Decodes a JSON patch body into its operations.
pub fn decode(body: &[u8]) -> Result<Vec<Map<String, Value>>, JsonPatchError> {
    let ops: Vec<Map<String, Value>> = serde_json::from_slice(body)
        .map_err(|e| JsonPatchError::Decode(format!("invalid JSON patch: {e}")))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(JsonPatchError::TooManyOperations(ops.len()));
    }
    Ok(ops)
}

/// Applies the operations in order to a copy of `doc`, returning the result.
pub fn apply(doc: &Value, ops: &[Map<String, Value>]) -> Result<Value, JsonPatchError> {
    let mut out = doc.clone();
    for op in ops {
        apply_one(&mut out, op).map_err(JsonPatchError::Apply)?;
    }
    Ok(out)
}

fn str_field<'a>(op: &'a Map<String, Value>, field: &str, kind: &str) -> Result<&'a str, String> {
    match op.get(field) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(format!(
            "{kind} operation missing {field} field: missing value"
        )),
    }
}

fn apply_one(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    match kind {
        "add" => {
            let path = str_field(op, "path", kind)?;
            let value = op
                .get("value")
                .ok_or("add operation, missing value field: missing value")?;
            add(doc, path, value.clone())
        }
        "remove" => {
            let path = str_field(op, "path", kind)?;
            remove(doc, path).map(|_| ())
        }
        "replace" => {
            let path = str_field(op, "path", kind)?;
            let value = op
                .get("value")
                .ok_or("replace operation, missing value field: missing value")?;
            replace(doc, path, value.clone())
        }
        "move" => {
            let from = str_field(op, "from", kind)?;
            let path = str_field(op, "path", kind)?;
            if from == path {
                return Ok(());
            }
            if path.starts_with(&format!("{from}/")) {
                return Err(format!(
                    "move operation does not apply: from {from} is a prefix of path {path}"
                ));
            }
            let value = remove(doc, from).map_err(|_| {
                format!("move operation does not apply: doc is missing from path: {from}: missing value")
            })?;
            add(doc, path, value)
        }
        "copy" => {
            let from = str_field(op, "from", kind)?;
            let path = str_field(op, "path", kind)?;
            let value = get(doc, from)?.cloned().ok_or_else(|| {
                format!("copy operation does not apply: doc is missing from path: {from}: missing value")
            })?;
            add(doc, path, value)
        }
        "test" => {
            let path = str_field(op, "path", kind)?;
            let want = op.get("value").unwrap_or(&Value::Null);
            let have = get(doc, path)?;
            let equal = match have {
                None => want.is_null(),
                Some(v) => json_equal(v, want),
            };
            if equal {
                Ok(())
            } else {
                Err(format!("testing value {path} failed: test failed"))
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// The reference tokens of a JSON pointer ("" is the whole document).
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "invalid JSON pointer {path:?}: must start with '/'"
        ));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// An array index: non-negative, or negative counting from the end (`len` is the size the
/// index may address).
fn index(token: &str, len: usize) -> Result<usize, String> {
    let i: i64 = token
        .parse()
        .map_err(|_| format!("value was not a proper array index: '{token}'"))?;
    let len = len as i64;
    let i = if i < 0 { i + len } else { i };
    if i < 0 || i >= len {
        return Err(format!(
            "Unable to access invalid index: {token}: invalid index referenced"
        ));
    }
    Ok(i as usize)
}

fn child<'v>(v: &'v Value, token: &str) -> Result<Option<&'v Value>, String> {
    match v {
        Value::Object(m) => Ok(m.get(token)),
        Value::Array(a) => Ok(Some(&a[index(token, a.len())?])),
        _ => Ok(None),
    }
}

fn child_mut<'v>(v: &'v mut Value, token: &str) -> Option<&'v mut Value> {
    match v {
        Value::Object(m) => m.get_mut(token),
        Value::Array(a) => {
            let i = index(token, a.len()).ok()?;
            a.get_mut(i)
        }
        _ => None,
    }
}

fn get<'v>(doc: &'v Value, path: &str) -> Result<Option<&'v Value>, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        match child(cur, &t)? {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// The container holding the pointer's last token, and that token.
fn parent<'v>(
    doc: &'v mut Value,
    path: &str,
    kind: &str,
) -> Result<(&'v mut Value, String), String> {
    let mut toks = tokens(path)?;
    let last = toks
        .pop()
        .ok_or_else(|| format!("{kind} operation on the document root"))?;
    let mut cur = doc;
    for t in &toks {
        cur = child_mut(cur, t).ok_or_else(|| {
            format!(
                "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
            )
        })?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, key) = parent(doc, path, "add")?;
    match container {
        Value::Object(m) => {
            m.insert(key, value);
            Ok(())
        }
        Value::Array(a) => {
            let at = if key == "-" {
                a.len()
            } else {
                index(&key, a.len() + 1)
                    .map_err(|e| format!("error in add for path: '{path}': {e}"))?
            };
            a.insert(at, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        )),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (container, key) = parent(doc, path, "remove")?;
    match container {
        Value::Object(m) => m.remove(&key).ok_or_else(|| {
            format!("error in remove for path: '{path}': Unable to remove nonexistent key: {key}: missing value")
        }),
        Value::Array(a) => {
            let i = index(&key, a.len()).map_err(|e| format!("error in remove for path: '{path}': {e}"))?;
            Ok(a.remove(i))
        }
        _ => Err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": missing value"
        )),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, key) = parent(doc, path, "replace")?;
    let slot = match container {
        Value::Object(m) => m.get_mut(&key),
        Value::Array(a) => match index(&key, a.len()) {
            Ok(i) => a.get_mut(i),
            Err(e) => return Err(format!("error in replace for path: '{path}': {e}")),
        },
        _ => None,
    };
    match slot {
        Some(s) => {
            *s = value;
            Ok(())
        }
        None => Err(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        )),
    }
}

/// JSON equality with numbers compared by value, as the Go library compares decoded
/// documents (float64 numbers).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
