//! RFC 6902 appendix A, plus the evanphx/json-patch v4 behaviour kube-apiserver has.

use serde_json::{json, Value};

use super::*;

fn run(doc: Value, patch: Value) -> Result<Value, JsonPatchError> {
    let ops = decode(patch.to_string().as_bytes())?;
    apply(&doc, &ops)
}

fn ok(doc: Value, patch: Value, want: Value) {
    assert_eq!(run(doc.clone(), patch.clone()), Ok(want), "{doc} + {patch}");
}

fn fails(doc: Value, patch: Value) -> String {
    match run(doc.clone(), patch.clone()) {
        Err(JsonPatchError::Apply(m)) => m,
        other => panic!("{doc} + {patch}: expected an apply error, got {other:?}"),
    }
}

#[test]
fn rfc_6902_appendix_a() {
    ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux"}]),
        json!({"baz": "qux", "foo": "bar"}),
    );
    ok(
        json!({"foo": ["bar", "baz"]}),
        json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
        json!({"foo": ["bar", "qux", "baz"]}),
    );
    ok(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "remove", "path": "/baz"}]),
        json!({"foo": "bar"}),
    );
    ok(
        json!({"foo": ["bar", "qux", "baz"]}),
        json!([{"op": "remove", "path": "/foo/1"}]),
        json!({"foo": ["bar", "baz"]}),
    );
    ok(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
        json!({"baz": "boo", "foo": "bar"}),
    );
    ok(
        json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
        json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
        json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    );
    ok(
        json!({"foo": ["all", "grass", "cows", "eat"]}),
        json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
        json!({"foo": ["all", "cows", "eat", "grass"]}),
    );
    ok(
        json!({"baz": "qux", "foo": ["a", 2, "c"]}),
        json!([
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2}
        ]),
        json!({"baz": "qux", "foo": ["a", 2, "c"]}),
    );
    fails(
        json!({"baz": "qux"}),
        json!([{"op": "test", "path": "/baz", "value": "bar"}]),
    );
    ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
        json!({"foo": "bar", "child": {"grandchild": {}}}),
    );
    ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
        json!({"foo": "bar", "baz": "qux"}),
    );
    fails(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    );
    // ~01 is "~1", not "/".
    ok(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": 10}]),
        json!({"/": 9, "~1": 10}),
    );
    fails(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": "10"}]),
    );
    ok(
        json!({"foo": ["bar"]}),
        json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
        json!({"foo": ["bar", ["abc", "def"]]}),
    );
}

#[test]
fn escapes_copy_and_whole_document() {
    ok(
        json!({"metadata": {"annotations": {}}}),
        json!([{"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "me"}]),
        json!({"metadata": {"annotations": {"example.com/owner": "me"}}}),
    );
    ok(
        json!({"a": {"b": [1]}}),
        json!([{"op": "copy", "from": "/a/b", "path": "/c"}]),
        json!({"a": {"b": [1]}, "c": [1]}),
    );
    ok(
        json!({"a": 1}),
        json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
        json!({"b": 2}),
    );
}

#[test]
fn go_library_behaviour() {
    // Negative indices count from the end.
    ok(
        json!({"l": [1, 2, 3]}),
        json!([{"op": "remove", "path": "/l/-1"}]),
        json!({"l": [1, 2]}),
    );
    // Numbers compare by value; an absent member tests equal to null.
    ok(
        json!({"n": 1}),
        json!([{"op": "test", "path": "/n", "value": 1.0}, {"op": "test", "path": "/x", "value": null}]),
        json!({"n": 1}),
    );
    assert!(
        fails(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}]))
            .contains("Unable to remove nonexistent key: b")
    );
    assert!(fails(
        json!({"a": 1}),
        json!([{"op": "replace", "path": "/b", "value": 1}])
    )
    .contains("doc is missing key: /b"));
    assert!(fails(
        json!({"l": [1]}),
        json!([{"op": "add", "path": "/l/5", "value": 1}])
    )
    .contains("invalid index"));
    assert_eq!(
        fails(json!({}), json!([{"op": "frob", "path": "/a"}])),
        "Unexpected kind: frob"
    );
    assert!(fails(json!({}), json!([{"op": "add", "value": 1}])).contains("missing path"));
    // A failing operation leaves nothing half-applied: the caller's document is unchanged.
    let doc = json!({"a": 1});
    let ops =
        decode(br#"[{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}]"#)
            .expect("decode");
    assert!(apply(&doc, &ops).is_err());
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn decoding_rejects_what_is_not_a_list_of_operations() {
    assert!(matches!(
        decode(b"{\"op\":\"add\"}"),
        Err(JsonPatchError::Decode(_))
    ));
    assert!(matches!(decode(b"[1]"), Err(JsonPatchError::Decode(_))));
    let many = format!(
        "[{}]",
        vec![r#"{"op":"test","path":""}"#; MAX_OPERATIONS + 1].join(",")
    );
    assert_eq!(
        decode(many.as_bytes()),
        Err(JsonPatchError::TooManyOperations(MAX_OPERATIONS + 1))
    );
}
