//! Every PATCH type over HTTP against a real apiserver and store: JSON merge patch, JSON patch
//! (and its 422 on a failed `test`), strategic merge patch (merge keys, `$patch`,
//! `$setElementOrder`, `$deleteFromPrimitiveList`), server-side apply (create, managedFields,
//! conflicts, force, pruning), the status and scale subresources, fieldValidation, and
//! managedFields kept by creates and updates. Then, where kubectl is installed, kubectl's own
//! requests (validating against the server's OpenAPI): `apply` twice with a change, `edit`,
//! `patch` in its three types, `apply --server-side` twice and against a second field
//! manager.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use strata_tests::kube::{ApiserverProc, Kube};
use strata_tests::StoreProc;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

async fn patch(k: &Kube, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let (code, text) = k
        .raw("PATCH", path, Some(body.as_bytes().to_vec()), content_type)
        .await;
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn managers(v: &Value) -> Vec<String> {
    v["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}/{}{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or(""),
                        e["subresource"]
                            .as_str()
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry<'v>(v: &'v Value, manager: &str) -> &'v Value {
    v["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}: {v}"))
}

fn container_names(v: &Value) -> Vec<&str> {
    v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_type_apply_conflicts_and_managed_fields() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("store"), &[]);
    let api = ApiserverProc::start(&tmp.path().join("api"), &store.url(), &[]).await;
    let k = api.admin();
    let web = format!("{DEPLOYMENTS}/web");

    // Creates record their field manager.
    let (code, created) = k
        .post(
            &format!("{DEPLOYMENTS}?fieldManager=creator"),
            &deployment("web"),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(managers(&created), ["creator/Update"]);
    let fields = &entry(&created, "creator")["fieldsV1"];
    assert_eq!(
        fields["f:metadata"],
        json!({"f:labels": {".": {}, "f:app": {}}})
    );
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]
            ["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]
            .is_object()
    );

    // JSON merge patch, recorded for the named field manager.
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldManager=merger"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"tier":"front"}}}"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        entry(&v, "merger")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );

    // JSON patch, with ~1 escapes and `-`; a failed test is 422 with kube's generic message.
    // No fieldManager and no User-Agent: the manager is "unknown", as in kube-apiserver.
    let (code, v) = patch(
        &k,
        &web,
        "application/json-patch+json",
        r#"[
        {"op":"test","path":"/spec/replicas","value":1},
        {"op":"replace","path":"/spec/replicas","value":2},
        {"op":"add","path":"/metadata/annotations","value":{}},
        {"op":"add","path":"/metadata/annotations/example.com~1owner","value":"me"},
        {"op":"add","path":"/spec/template/spec/containers/0/args","value":[]},
        {"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--x"}
    ]"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(v["metadata"]["annotations"]["example.com/owner"], "me");
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--x"])
    );
    assert_eq!(v["metadata"]["generation"], 2);
    let (code, v) = patch(&k, &web, "application/json-patch+json",
        r#"[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":5}]"#).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    assert_eq!(
        v["message"],
        "the server rejected our request due to an error in our request"
    );
    let (code, v) = patch(&k, &web, "application/json-patch+json", r#"{"op":"add"}"#).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    let (_, v) = k.get(&web).await;
    assert_eq!(
        v["spec"]["replicas"], 2,
        "a failed JSON patch writes nothing"
    );

    // Strategic merge patch: containers merge by name, $setElementOrder orders them,
    // $patch: delete removes one, finalizers merge as a set.
    let (code, v) = patch(
        &k,
        &web,
        "application/strategic-merge-patch+json",
        r#"{
        "metadata": {"finalizers": ["example.com/a"]},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "main"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "busybox:1.36"}]
        }}}
    }"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(container_names(&v), ["main", "sidecar"]);
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    let (code, v) = patch(&k, &web, "application/strategic-merge-patch+json", r#"{
        "metadata": {"finalizers": ["example.com/b"], "$deleteFromPrimitiveList/finalizers": ["example.com/a"]},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }"#).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(container_names(&v), ["main"]);
    assert_eq!(v["metadata"]["finalizers"], json!(["example.com/b"]));
    let (code, v) = patch(
        &k,
        &web,
        "application/strategic-merge-patch+json",
        r#"{"spec": {"template": {"spec": {"$setElementOrder": []}}}}"#,
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    let (code, _) = patch(
        &k,
        &web,
        "application/strategic-merge-patch+json",
        r#"{"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]}}"#,
    )
    .await;
    assert_eq!(code, 200);

    // Server-side apply: fieldManager is required; a field another manager owns conflicts.
    let apply_yaml =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n";
    let (code, v) = patch(&k, &web, "application/apply-patch+yaml", apply_yaml).await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    assert_eq!(v["details"]["causes"][0]["field"], "fieldManager");
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldManager=alice"),
        "application/apply-patch+yaml",
        apply_yaml,
    )
    .await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["reason"], "Conflict");
    assert_eq!(
        v["message"],
        "Apply failed with 1 conflict: conflict with \"unknown\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        v["details"]["causes"],
        json!([{"type": "FieldManagerConflict", "message": "conflict with \"unknown\" using apps/v1", "field": ".spec.replicas"}])
    );
    // The same value as the live object is shared ownership, not a conflict.
    let same =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n";
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldManager=alice"),
        "application/apply-patch+yaml",
        same,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(entry(&v, "alice")["operation"], "Apply");
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldManager=alice&force=true"),
        "application/apply-patch+yaml",
        apply_yaml,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["replicas"], 3);
    assert_eq!(
        entry(&v, "alice")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    let (code, v) = patch(
        &k,
        &format!("{web}?force=true"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (422, Some("Invalid")),
        "force is for apply only: {v}"
    );

    // Apply refuses fields the schema does not declare, as kube-apiserver's typed conversion.
    let bad =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicaz: 3\n";
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldManager=alice"),
        "application/apply-patch+yaml",
        bad,
    )
    .await;
    assert_eq!(code, 500, "{v}");
    assert_eq!(
        v["message"],
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema"
    );
    // fieldValidation=Strict refuses unknown fields in the patched object; Warn (the
    // default) drops them.
    let (code, v) = patch(
        &k,
        &format!("{web}?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec":{"replicaz":3}}"#,
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("strict decoding error: unknown field \"spec.replicaz\""),
        "{v}"
    );
    let (code, v) = patch(
        &k,
        &web,
        "application/merge-patch+json",
        r#"{"spec":{"replicaz":3}}"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert!(v["spec"].get("replicaz").is_none());

    // Apply creates, and removes what the applier stops specifying.
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |data: &str| {
        format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"settings\"}},\"data\":{data}}}")
    };
    let (code, v) = patch(
        &k,
        &format!("{cms}/settings?fieldManager=tool"),
        "application/apply-patch+yaml",
        &cm(r#"{"a":"1","b":"2"}"#),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(managers(&v), ["tool/Apply"]);
    let (code, v) = patch(
        &k,
        &format!("{cms}/settings?fieldManager=tool"),
        "application/apply-patch+yaml",
        &cm(r#"{"a":"1"}"#),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], json!({"a": "1"}));
    let (code, v) = patch(
        &k,
        &format!("{cms}/settings?fieldManager=tool"),
        "application/apply-patch+yaml",
        "apiVersion: v2\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );

    // Status and scale subresources.
    let (code, v) = patch(
        &k,
        &format!("{web}/status?fieldManager=ctrl"),
        "application/merge-patch+json",
        r#"{"status":{"observedGeneration":3},"spec":{"replicas":9}}"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["observedGeneration"], 3);
    assert_eq!(v["spec"]["replicas"], 3, "status patches leave spec alone");
    assert!(
        managers(&v).contains(&"ctrl/Update/status".to_string()),
        "{:?}",
        managers(&v)
    );
    let (code, v) = patch(
        &k,
        &format!("{web}/scale"),
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(4))
    );
    let (code, v) = patch(
        &k,
        &format!("{web}/scale"),
        "application/strategic-merge-patch+json",
        r#"{"spec":{"replicas":-1}}"#,
    )
    .await;
    assert_eq!(code, 422, "{v}");

    // A PUT that changes a label moves ownership of that label.
    let (_, mut cur) = k.get(&web).await;
    cur["metadata"]["labels"]["tier"] = json!("back");
    let (code, v) = k.put(&format!("{web}?fieldManager=editor"), &cur).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        entry(&v, "editor")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );
    assert!(v["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["manager"] == "editor"
            || e["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:tier")
                .is_none()));

    let (code, v) = patch(&k, &web, "text/plain", "x").await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (415, Some("UnsupportedMediaType")),
        "{v}"
    );

    kubectl_requests(&api, tmp.path()).await;
    drop(store);
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs kubectl with a kubeconfig for this apiserver; (success, stdout + stderr). `kubectl
/// edit` edits with sed (KUBE_EDITOR): replicas 2 becomes 3.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .env("KUBE_EDITOR", r"sed -i s/replicas:\ 2/replicas:\ 3/")
        .args(["--request-timeout=60s"])
        .args(args)
        .output()
        .expect("run kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn kubectl_requests(api: &ApiserverProc, dir: &Path) {
    if !kubectl_available() {
        eprintln!("kubectl is not installed: skipping kubectl's patch and apply requests");
        return;
    }
    let token = api.token("admin", &["system:masters"]);
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: s\n  context: {{cluster: s, user: admin}}\ncurrent-context: s\n",
            api.port,
            api.ca.display()
        ),
    )
    .expect("kubeconfig");
    let manifest = dir.join("app.yaml");
    let write_manifest = |replicas: u32, image: &str| {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels: {{app: app}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: app}}}}\n  template:\n    metadata: {{labels: {{app: app}}}}\n    spec:\n      containers:\n      - name: main\n        image: {image}\n"
        );
        std::fs::write(&manifest, yaml).expect("manifest");
    };
    let kc = kubeconfig.clone();
    let m = manifest.display().to_string();
    let run = move |args: Vec<String>| {
        let kc = kc.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out) = tokio::task::spawn_blocking({
                let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
                move || {
                    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
                    kubectl(&kc, &r)
                }
            })
            .await
            .expect("kubectl task");
            (ok, out)
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();

    // Client-side apply twice with a change (kubectl computes a three-way strategic patch).
    write_manifest(1, "nginx:1.25");
    let (ok, out) = run(s(&["apply", "-f", &m])).await;
    assert!(ok && out.contains("created"), "{out}");
    write_manifest(2, "nginx:1.26");
    let (ok, out) = run(s(&["apply", "-f", &m])).await;
    assert!(ok && out.contains("configured"), "{out}");
    let (ok, out) = run(s(&[
        "get",
        "deploy",
        "app",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
    ]))
    .await;
    assert!(ok && out.trim() == "2 nginx:1.26", "{out}");

    // kubectl edit sends a strategic merge patch computed against the server's OpenAPI.
    let (ok, out) = run(s(&["edit", "deploy", "app"])).await;
    assert!(ok && out.contains("edited"), "{out}");
    let (ok, out) = run(s(&[
        "get",
        "deploy",
        "app",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.managedFields[*].manager}",
    ]))
    .await;
    assert!(
        ok && out.trim() == "3 kubectl-client-side-apply kubectl-edit",
        "{out}"
    );

    // kubectl patch in its three types.
    for (kind, p) in [
        ("merge", r#"{"metadata":{"labels":{"merged":"yes"}}}"#),
        (
            "json",
            r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#,
        ),
        (
            "strategic",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox:1.36"}]}}}}"#,
        ),
    ] {
        let (ok, out) = run(s(&["patch", "deploy", "app", "--type", kind, "-p", p])).await;
        assert!(
            ok && out.contains("patched"),
            "kubectl patch --type {kind}: {out}"
        );
    }
    let (ok, out) = run(s(&[
        "patch",
        "deploy",
        "app",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":7}]"#,
    ]))
    .await;
    assert!(
        !ok && out.contains("the server rejected our request due to an error in our request"),
        "{out}"
    );
    let (ok, out) = run(s(&["get", "deploy", "app", "-o", "jsonpath={.metadata.labels.merged} {.metadata.labels.json} {.spec.template.spec.containers[*].name}"])).await;
    assert!(ok && out.trim() == "yes yes side main", "{out}");

    // Server-side apply twice, then a conflict with a second field manager, then forced.
    let (ok, out) = run(s(&["delete", "deploy", "app"])).await;
    assert!(ok, "{out}");
    write_manifest(1, "nginx:1.25");
    let (ok, out) = run(s(&["apply", "--server-side", "-f", &m])).await;
    assert!(ok && out.contains("serverside-applied"), "{out}");
    write_manifest(1, "nginx:1.27");
    let (ok, out) = run(s(&["apply", "--server-side", "-f", &m])).await;
    assert!(ok && out.contains("serverside-applied"), "{out}");
    write_manifest(5, "nginx:1.27");
    let (ok, out) = run(s(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        &m,
    ]))
    .await;
    assert!(
        !ok && out
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{out}"
    );
    let (ok, out) = run(s(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-f",
        &m,
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(s(&["get", "deploy", "app", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.managedFields[*].manager}"])).await;
    assert!(ok && out.trim() == "5 nginx:1.27 kubectl other", "{out}");
}
