//! Bodies captured from kubectl v1.33 (`-v=9`) against the JSON the same command prints with
//! `--dry-run=client -o json` (Go's JSON encoding of the same object).

use serde_json::{json, Value};

use super::{decode, go_duration};

/// Go writes a zero metav1.Time as `null`; the decoder leaves such fields out.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        v => v,
    }
}

fn check(name: &str, pb: &[u8], json: &str) {
    let want: Value = serde_json::from_str(json).expect("test JSON");
    let got = decode(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got, without_nulls(want), "{name}");
}

#[test]
fn kubectl_bodies_decode_to_the_json_kubectl_would_send() {
    check(
        "configmap",
        include_bytes!("testdata/configmap.pb"),
        include_str!("testdata/configmap.json"),
    );
    check(
        "secret",
        include_bytes!("testdata/secret.pb"),
        include_str!("testdata/secret.json"),
    );
    check(
        "namespace",
        include_bytes!("testdata/namespace.pb"),
        include_str!("testdata/namespace.json"),
    );
    // replicas: 0 is a set pointer and survives; the container's empty strings do not.
    check(
        "deployment",
        include_bytes!("testdata/deployment.pb"),
        include_str!("testdata/deployment.json"),
    );
    // targetPort is an IntOrString.
    check(
        "service",
        include_bytes!("testdata/service.pb"),
        include_str!("testdata/service.json"),
    );
}

#[test]
fn access_review_from_kubectl_auth_can_i() {
    let got = decode(include_bytes!("testdata/ssar.pb")).expect("decodes");
    assert_eq!(got["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(got["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        got["spec"]["resourceAttributes"],
        json!({ "namespace": "default", "verb": "create", "resource": "pods" })
    );
}

#[test]
fn bad_bodies_are_errors_not_panics() {
    assert!(decode(b"").is_err());
    assert!(decode(b"{}").is_err());
    assert!(decode(b"k8s\0\xff\xff\xff").is_err());
    // A kind the apiserver has no message for.
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(b"\x0a\x0c\x0a\x02v1\x12\x06NoSuch");
    let e = decode(&body).expect_err("unknown kind");
    assert!(e.contains("NoSuch"), "{e}");
    // Truncated object bytes.
    let pb = include_bytes!("testdata/deployment.pb");
    assert!(decode(&pb[..pb.len() - 7]).is_err());
}

#[test]
fn durations_print_as_go_does() {
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
    assert_eq!(go_duration(300_000_000), "300ms");
    assert_eq!(go_duration(-2_000), "-2µs");
    assert_eq!(go_duration(60_000_000_000), "1m0s");
}
