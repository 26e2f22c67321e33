//! Field validation (`?fieldValidation=Strict|Warn|Ignore`): fields a body sets that its kind's
//! schema does not declare, and keys a JSON object repeats, found before the body is decoded
//! (decoding drops both silently). `Strict` (kubectl's default) refuses the request with 400,
//! `Warn` (the server default) answers with a `Warning` header per field, `Ignore` says nothing.
//! The messages are kube-apiserver's: `unknown field "spec.bogus"`, `duplicate field "a"`.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::schema::{Node, Shape};

/// The directive of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// Parses the query value ("" means the server default, Warn).
    pub fn parse(v: Option<&str>) -> Result<FieldValidation, String> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )),
        }
    }
}

/// Every field of `value` the schema at `node` does not declare, as dotted paths with list
/// indexes (`spec.containers[0].bogus`), in document order.
pub fn unknown_fields(node: Node<'_>, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(node, value, String::new(), &mut out);
    out
}

fn walk(node: Node<'_>, value: &Value, path: String, out: &mut Vec<String>) {
    match (node.shape(), value) {
        (Shape::Struct, Value::Object(m)) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if node.has_field(k) {
                    walk(node.field(k), v, p, out);
                } else {
                    out.push(p);
                }
            }
        }
        (Shape::Map, Value::Object(m)) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(node.values(), v, p, out);
            }
        }
        (Shape::List, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                walk(node.items(), v, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Keys repeated within one JSON object of `body`, as dotted paths (`metadata.name`).
/// Malformed JSON yields nothing here: the decoder reports it.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Dups {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

/// Walks a JSON document without building it, recording repeated keys.
struct Dups<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Dups<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Dups<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let seed = Dups {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.out.push(path.clone());
            }
            map.next_value_seed(Dups {
                path,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// The problems of a body under a directive: `Err(message)` for Strict, `Ok(warnings)` otherwise.
pub fn check(
    directive: FieldValidation,
    node: Node<'_>,
    value: &Value,
    raw_json: Option<&[u8]>,
) -> Result<Vec<String>, String> {
    if directive == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let mut problems: Vec<String> = raw_json
        .map(duplicate_fields)
        .unwrap_or_default()
        .into_iter()
        .map(|p| format!("duplicate field \"{p}\""))
        .collect();
    problems.extend(
        unknown_fields(node, value)
            .into_iter()
            .map(|p| format!("unknown field \"{p}\"")),
    );
    if directive == FieldValidation::Strict && !problems.is_empty() {
        return Err(format!("strict decoding error: {}", problems.join(", ")));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_node() -> Node<'static> {
        let res = crate::registry::lookup("", "v1", "pods").expect("pods");
        crate::schema::get().root(res)
    }

    #[test]
    fn unknown_fields_are_found_at_every_depth() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "bogus": 1,
            "metadata": { "name": "p", "labels": { "any": "thing" }, "nope": true },
            "spec": { "containers": [{ "name": "c", "image": "i", "imagee": "typo" }] },
        });
        assert_eq!(
            unknown_fields(pod_node(), &pod),
            vec!["bogus", "metadata.nope", "spec.containers[0].imagee"]
        );
    }

    #[test]
    fn duplicates_are_found_without_building_the_value() {
        let body = br#"{"a":1,"b":{"c":1,"c":2},"a":3,"l":[{"x":1,"x":1}]}"#;
        assert_eq!(duplicate_fields(body), vec!["b.c", "a", "l[0].x"]);
        assert!(duplicate_fields(b"{not json").is_empty());
    }

    #[test]
    fn directives() {
        let pod = json!({ "kind": "Pod", "bogus": 1 });
        let e = check(FieldValidation::Strict, pod_node(), &pod, None).expect_err("strict");
        assert_eq!(e, "strict decoding error: unknown field \"bogus\"");
        assert_eq!(
            check(FieldValidation::Warn, pod_node(), &pod, None).expect("warn"),
            vec!["unknown field \"bogus\""]
        );
        assert!(check(FieldValidation::Ignore, pod_node(), &pod, None)
            .expect("ignore")
            .is_empty());
        assert!(FieldValidation::parse(Some("Nope")).is_err());
    }
}
