//! The apiserver against a real store process: Kubernetes REST semantics (conflicts,
//! server-set metadata, status subresources, selectors, pagination, watch, deletion,
//! binding, scale, dry runs) and every authentication and authorization failure mode.

use std::time::Duration;

use serde_json::{json, Value};
use strata_tests::kube::{ApiserverProc, Kube};
use strata_tests::StoreProc;

struct Env {
    _tmp: tempfile::TempDir,
    _store: StoreProc,
    api: ApiserverProc,
    store_endpoint: String,
}

async fn env(extra: &[&str]) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("store"), &[]);
    let api = ApiserverProc::start(&tmp.path().join("api"), &store.url(), extra).await;
    Env {
        store_endpoint: store.endpoint(),
        _tmp: tmp,
        _store: store,
        api,
    }
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": { "containers": [{ "name": "c", "image": "busybox:1.36" }] }
    })
}

fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

fn rv(v: &Value) -> i64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

fn assert_status(v: &Value, code: u16, reason: &str) {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["apiVersion"], "v1", "{v}");
    assert_eq!(v["status"], "Failure", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_conflicts_and_server_metadata() {
    let e = env(&[]).await;
    let k = e.api.admin();
    let (c, _) = k.post("/api/v1/namespaces", &namespace("team")).await;
    assert_eq!(c, 201);

    // Create: server-set metadata and defaults.
    let (c, p) = k
        .post(
            "/api/v1/namespaces/team/pods",
            &pod("web", json!({"app": "web"})),
        )
        .await;
    assert_eq!(c, 201, "{p}");
    assert!(
        p["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36),
        "{p}"
    );
    assert!(p["metadata"]["creationTimestamp"].as_str().is_some(), "{p}");
    assert_eq!(p["metadata"]["namespace"], "team");
    assert_eq!(p["spec"]["restartPolicy"], "Always", "defaulted: {p}");
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    let rv1 = rv(&p);

    // The key layout and resourceVersion = mod_revision, seen through the etcd API.
    let mut etcd = etcd_client::Client::connect([e.store_endpoint.as_str()], None)
        .await
        .expect("etcd client");
    let got = etcd
        .get("/registry/pods/team/web", None)
        .await
        .expect("etcd get");
    assert_eq!(got.kvs()[0].mod_revision(), rv1);

    // An existing name: 409 AlreadyExists.
    let (c, s) = k
        .post("/api/v1/namespaces/team/pods", &pod("web", json!({})))
        .await;
    assert_eq!(c, 409);
    assert_status(&s, 409, "AlreadyExists");
    assert_eq!(s["details"]["name"], "web");
    assert_eq!(s["details"]["kind"], "pods");

    // Update with the current resourceVersion, then with the stale one.
    let mut upd = p.clone();
    upd["metadata"]["labels"]["tier"] = json!("front");
    let (c, p2) = k.put("/api/v1/namespaces/team/pods/web", &upd).await;
    assert_eq!(c, 200, "{p2}");
    assert!(rv(&p2) > rv1);
    assert_eq!(p2["metadata"]["uid"], p["metadata"]["uid"]);
    let (c, s) = k.put("/api/v1/namespaces/team/pods/web", &upd).await;
    assert_eq!(c, 409);
    assert_status(&s, 409, "Conflict");
    assert!(s["message"]
        .as_str()
        .expect("message")
        .contains("the object has been modified"));

    // Get and 404.
    let (c, g) = k.get("/api/v1/namespaces/team/pods/web").await;
    assert_eq!(
        (c, g["metadata"]["labels"]["tier"].clone()),
        (200, json!("front"))
    );
    let (c, s) = k.get("/api/v1/namespaces/team/pods/nope").await;
    assert_eq!(c, 404);
    assert_status(&s, 404, "NotFound");
    assert_eq!(s["message"], "pods \"nope\" not found");

    // A namespace that does not exist.
    let (c, s) = k
        .post("/api/v1/namespaces/ghost/pods", &pod("x", json!({})))
        .await;
    assert_eq!(c, 404);
    assert_eq!(s["message"], "namespaces \"ghost\" not found");

    // generateName.
    let mut gen = pod("", json!({}));
    gen["metadata"] = json!({ "generateName": "worker-" });
    let (c, g) = k.post("/api/v1/namespaces/team/pods", &gen).await;
    assert_eq!(c, 201, "{g}");
    let name = g["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("worker-") && name.len() == 12, "{name}");

    // dryRun=All persists nothing.
    let (c, d) = k
        .post(
            "/api/v1/namespaces/team/pods?dryRun=All",
            &pod("dry", json!({})),
        )
        .await;
    assert_eq!(c, 201, "{d}");
    let (c, _) = k.get("/api/v1/namespaces/team/pods/dry").await;
    assert_eq!(c, 404);

    // Bad input: malformed JSON, wrong kind/apiVersion, invalid name, too large a body.
    let (c, body) = k
        .raw(
            "POST",
            "/api/v1/namespaces/team/pods",
            Some(b"{nope".to_vec()),
            "",
        )
        .await;
    assert_eq!(c, 400, "{body}");
    let mut wrong = pod("w", json!({}));
    wrong["kind"] = json!("Service");
    let (c, s) = k.post("/api/v1/namespaces/team/pods", &wrong).await;
    assert_eq!(c, 400);
    assert_status(&s, 400, "BadRequest");
    let mut wrong = pod("w", json!({}));
    wrong["apiVersion"] = json!("apps/v1");
    let (c, _) = k.post("/api/v1/namespaces/team/pods", &wrong).await;
    assert_eq!(c, 400);
    let (c, s) = k
        .post("/api/v1/namespaces/team/pods", &pod("Bad_Name", json!({})))
        .await;
    assert_eq!(c, 422, "{s}");
    assert_status(&s, 422, "Invalid");
    let big = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "big" },
        "data": { "x": "a".repeat(4 * 1024 * 1024) }
    });
    let (c, s) = k.post("/api/v1/namespaces/team/configmaps", &big).await;
    assert_eq!(c, 413, "{s}");
    assert_status(&s, 413, "RequestEntityTooLarge");

    // A pod's spec is immutable except the image.
    let (_, cur) = k.get("/api/v1/namespaces/team/pods/web").await;
    let mut img = cur.clone();
    img["spec"]["containers"][0]["image"] = json!("busybox:1.37");
    let (c, s) = k.put("/api/v1/namespaces/team/pods/web", &img).await;
    assert_eq!(c, 200, "{s}");
    let mut bad = s.clone();
    bad["spec"]["restartPolicy"] = json!("Never");
    let (c, s) = k.put("/api/v1/namespaces/team/pods/web", &bad).await;
    assert_eq!(c, 422, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_generation_scale_and_binding() {
    let e = env(&[]).await;
    let k = e.api.admin();
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "c", "image": "nginx:1.27" }] }
            }
        },
        "status": { "replicas": 99 }
    });
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let (c, d) = k.post(base, &deploy).await;
    assert_eq!(c, 201, "{d}");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(
        d["spec"]["strategy"]["type"], "RollingUpdate",
        "defaulted: {d}"
    );
    assert!(
        d["status"].get("replicas").is_none(),
        "status is not set on create: {d}"
    );

    // Main endpoint: status changes ignored; a label change does not bump generation.
    let mut upd = d.clone();
    upd["metadata"]["labels"] = json!({ "x": "y" });
    upd["status"] = json!({ "replicas": 5 });
    let (c, d2) = k.put(&format!("{base}/web"), &upd).await;
    assert_eq!(c, 200, "{d2}");
    assert_eq!(d2["metadata"]["generation"], 1);
    assert!(d2["status"].get("replicas").is_none(), "{d2}");

    // /status changes only status.
    let mut st = d2.clone();
    st["status"] = json!({ "replicas": 2, "readyReplicas": 1 });
    st["spec"]["replicas"] = json!(7);
    let (c, d3) = k.put(&format!("{base}/web/status"), &st).await;
    assert_eq!(c, 200, "{d3}");
    assert_eq!(d3["status"]["replicas"], 2);
    assert_eq!(d3["spec"]["replicas"], 2);
    assert_eq!(d3["metadata"]["generation"], 1);

    // A spec change bumps generation.
    let mut sp = d3.clone();
    sp["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let (c, d4) = k.put(&format!("{base}/web"), &sp).await;
    assert_eq!(c, 200, "{d4}");
    assert_eq!(d4["metadata"]["generation"], 2);

    // Scale.
    let (c, s) = k.get(&format!("{base}/web/scale")).await;
    assert_eq!(c, 200, "{s}");
    assert_eq!(
        (s["kind"].clone(), s["apiVersion"].clone()),
        (json!("Scale"), json!("autoscaling/v1"))
    );
    assert_eq!(s["spec"]["replicas"], 2);
    assert_eq!(s["status"]["selector"], "app=web");
    let mut s2 = s.clone();
    s2["spec"]["replicas"] = json!(5);
    let (c, s3) = k.put(&format!("{base}/web/scale"), &s2).await;
    assert_eq!(c, 200, "{s3}");
    assert_eq!(s3["spec"]["replicas"], 5);
    let (_, d5) = k.get(&format!("{base}/web")).await;
    assert_eq!(d5["spec"]["replicas"], 5);
    assert_eq!(d5["metadata"]["generation"], 3);
    let (c, _) = k
        .merge_patch(
            &format!("{base}/web/scale"),
            &json!({ "spec": { "replicas": 1 } }),
        )
        .await;
    assert_eq!(c, 200);
    let (_, d6) = k.get(&format!("{base}/web")).await;
    assert_eq!(d6["spec"]["replicas"], 1);

    // pods/binding: sets nodeName once, PodScheduled=True; a second binding is a 409.
    let pods = "/api/v1/namespaces/default/pods";
    let (c, _) = k.post(pods, &pod("p", json!({}))).await;
    assert_eq!(c, 201);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": { "name": "p" },
        "target": { "apiVersion": "v1", "kind": "Node", "name": "n1" }
    });
    let (c, s) = k.post(&format!("{pods}/p/binding"), &binding).await;
    assert_eq!(c, 201, "{s}");
    assert_eq!(s["status"], "Success");
    let (_, p) = k.get(&format!("{pods}/p")).await;
    assert_eq!(p["spec"]["nodeName"], "n1");
    let cond = p["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .expect("PodScheduled")
        .clone();
    assert_eq!(cond["status"], "True");
    let mut again = binding.clone();
    again["target"]["name"] = json!("n2");
    let (c, s) = k.post(&format!("{pods}/p/binding"), &again).await;
    assert_eq!(c, 409, "{s}");
    assert_status(&s, 409, "Conflict");

    // Pod status through /status; the main endpoint ignores it.
    let mut ps = p.clone();
    ps["status"]["phase"] = json!("Running");
    let (c, p2) = k.put(&format!("{pods}/p/status"), &ps).await;
    assert_eq!(c, 200, "{p2}");
    assert_eq!(p2["status"]["phase"], "Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selectors_pagination_and_resource_versions() {
    let e = env(&[]).await;
    let k = e.api.admin();
    let (c, empty) = k.get("/api/v1/namespaces/default/configmaps").await;
    assert_eq!(c, 200);
    assert_eq!(
        empty["items"],
        json!([]),
        "items is always present: {empty}"
    );
    assert!(empty["metadata"]["resourceVersion"].as_str().is_some());
    assert_eq!(empty["kind"], "ConfigMapList");

    for i in 0..12 {
        let tier = if i % 3 == 0 { "db" } else { "web" };
        let mut p = pod(
            &format!("p{i:02}"),
            json!({ "tier": tier, "idx": i.to_string() }),
        );
        if i < 4 {
            p["spec"]["nodeName"] = json!("n1");
        }
        let (c, b) = k.post("/api/v1/namespaces/default/pods", &p).await;
        assert_eq!(c, 201, "{b}");
    }
    let names = |l: &Value| -> Vec<String> {
        l["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().expect("name").to_string())
            .collect()
    };
    let q = |s: &str| s.replace(' ', "%20").replace('!', "%21");
    let count = |sel: &str| {
        let k = k.clone();
        let path = format!("/api/v1/namespaces/default/pods?labelSelector={}", q(sel));
        let sel = sel.to_string();
        async move {
            let (c, l) = k.get(&path).await;
            assert_eq!(c, 200, "{sel}: {l}");
            l["items"].as_array().expect("items").len()
        }
    };
    assert_eq!(count("tier=db").await, 4);
    assert_eq!(count("tier==web").await, 8);
    assert_eq!(count("tier!=db").await, 8);
    assert_eq!(count("tier in (db,web)").await, 12);
    assert_eq!(count("idx notin (0,1,2)").await, 9);
    assert_eq!(count("tier").await, 12);
    assert_eq!(count("!tier").await, 0);
    assert_eq!(count("tier=db,idx=3").await, 1);
    let (c, s) = k
        .get("/api/v1/namespaces/default/pods?labelSelector=a%20in")
        .await;
    assert_eq!(c, 400, "{s}");

    // Field selectors.
    let (_, l) = k.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1").await;
    assert_eq!(names(&l), ["p00", "p01", "p02", "p03"]);
    let (_, l) = k
        .get("/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3D")
        .await;
    assert_eq!(l["items"].as_array().expect("items").len(), 8);
    let (_, l) = k
        .get("/api/v1/pods?fieldSelector=metadata.name%3Dp05,status.phase%3DPending")
        .await;
    assert_eq!(names(&l), ["p05"]);
    let (c, s) = k.get("/api/v1/pods?fieldSelector=spec.bogus%3Dx").await;
    assert_eq!(c, 400);
    assert_status(&s, 400, "BadRequest");

    // Pagination: every page comes from the first page's snapshot, even across writes.
    let (c, p1) = k.get("/api/v1/namespaces/default/pods?limit=5").await;
    assert_eq!(c, 200, "{p1}");
    assert_eq!(names(&p1), ["p00", "p01", "p02", "p03", "p04"]);
    assert_eq!(p1["metadata"]["remainingItemCount"], 7);
    let token = p1["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let (c, _) = k
        .post("/api/v1/namespaces/default/pods", &pod("p99", json!({})))
        .await;
    assert_eq!(c, 201);
    let (c, _) = k.delete("/api/v1/namespaces/default/pods/p07").await;
    assert_eq!(c, 200);
    let (c, p2) = k
        .get(&format!(
            "/api/v1/namespaces/default/pods?limit=5&continue={token}"
        ))
        .await;
    assert_eq!(c, 200, "{p2}");
    assert_eq!(names(&p2), ["p05", "p06", "p07", "p08", "p09"]);
    assert_eq!(
        p2["metadata"]["resourceVersion"],
        p1["metadata"]["resourceVersion"]
    );
    let token2 = p2["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let (_, p3) = k
        .get(&format!(
            "/api/v1/namespaces/default/pods?limit=5&continue={token2}"
        ))
        .await;
    assert_eq!(names(&p3), ["p10", "p11"]);
    assert!(p3["metadata"].get("continue").is_none(), "{p3}");
    // Pagination with a selector.
    let (_, s1) = k
        .get("/api/v1/namespaces/default/pods?limit=2&labelSelector=tier%3Ddb")
        .await;
    assert_eq!(names(&s1), ["p00", "p03"]);
    assert!(s1["metadata"]["continue"].as_str().is_some());

    // After compaction past the snapshot, the token has expired: 410.
    let (_, now) = k.get("/api/v1/namespaces/default/pods").await;
    let mut etcd = etcd_client::Client::connect([e.store_endpoint.as_str()], None)
        .await
        .expect("etcd client");
    etcd.compact(rv(&now), None).await.expect("compact");
    let (c, s) = k
        .get(&format!(
            "/api/v1/namespaces/default/pods?limit=5&continue={token}"
        ))
        .await;
    assert_eq!(c, 410, "{s}");
    assert_status(&s, 410, "Expired");

    // resourceVersion semantics.
    let (c, l0) = k
        .get("/api/v1/namespaces/default/pods?resourceVersion=0")
        .await;
    assert_eq!(c, 200);
    assert_eq!(l0["items"].as_array().expect("items").len(), 12);
    let at = rv(&now);
    let (c, lx) = k
        .get(&format!(
            "/api/v1/namespaces/default/pods?resourceVersion={at}&resourceVersionMatch=NotOlderThan"
        ))
        .await;
    assert_eq!(c, 200, "{lx}");
    assert!(rv(&lx) >= at);
    let (c, s) = k
        .get("/api/v1/namespaces/default/pods?resourceVersionMatch=Exact")
        .await;
    assert_eq!(c, 400, "{s}");
    let (c, s) = k
        .get("/api/v1/namespaces/default/pods?resourceVersion=2&resourceVersionMatch=Exact")
        .await;
    assert_eq!(c, 410, "compacted revision: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_bookmarks_initial_events_and_expiry() {
    // A small watch cache, so that its window can be moved past quickly.
    let e = env(&["--watch-cache-size", "16"]).await;
    let k = e.api.admin();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str, v: &str| json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name, "labels": { "v": v } }, "data": { "v": v } });
    let (_, a) = k.post(cms, &cm("a", "1")).await;
    let start = rv(&a);

    // No resourceVersion: synthetic ADDED for what exists, then live events.
    let mut w = k.watch(&format!("{cms}?watch=true")).await;
    assert_eq!(w.status, 200);
    let ev = w.next().await.expect("event");
    assert_eq!(
        (ev["type"].clone(), ev["object"]["metadata"]["name"].clone()),
        (json!("ADDED"), json!("a"))
    );
    let (_, b) = k.post(cms, &cm("b", "1")).await;
    let ev = w.next().await.expect("event");
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(
        ev["object"]["metadata"]["resourceVersion"],
        b["metadata"]["resourceVersion"]
    );
    let mut b2 = b.clone();
    b2["data"]["v"] = json!("2");
    let (_, b2) = k.put(&format!("{cms}/b"), &b2).await;
    let ev = w.next().await.expect("event");
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["data"]["v"], "2");
    let (c, _) = k.delete(&format!("{cms}/b")).await;
    assert_eq!(c, 200);
    let ev = w.next().await.expect("event");
    assert_eq!(ev["type"], "DELETED");
    assert!(rv(&ev["object"]) > rv(&b2));

    // resourceVersion=N: strictly after N, replayed from the cache.
    let mut w2 = k
        .watch(&format!("{cms}?watch=true&resourceVersion={start}"))
        .await;
    let types: Vec<String> = [
        w2.next().await.expect("e1"),
        w2.next().await.expect("e2"),
        w2.next().await.expect("e3"),
    ]
    .iter()
    .map(|e| {
        format!(
            "{}:{}",
            e["type"].as_str().unwrap_or(""),
            e["object"]["metadata"]["name"].as_str().unwrap_or("")
        )
    })
    .collect();
    assert_eq!(types, ["ADDED:b", "MODIFIED:b", "DELETED:b"]);

    // Label selector transitions: leaving the selection is a DELETED for this watcher.
    let mut ws = k
        .watch(&format!(
            "{cms}?watch=true&labelSelector=v%3D1&resourceVersion={}",
            rv(&a)
        ))
        .await;
    let (_, a_now) = k.get(&format!("{cms}/a")).await;
    let mut a2 = a_now.clone();
    a2["metadata"]["labels"]["v"] = json!("9");
    let (c, _) = k.put(&format!("{cms}/a"), &a2).await;
    assert_eq!(c, 200);
    // Events before: b ADDED (v=1), b MODIFIED (still v=1 label), b DELETED; then a leaves.
    let mut last = Value::Null;
    for _ in 0..4 {
        last = ws.next_change().await.expect("event");
    }
    assert_eq!(
        (
            last["type"].clone(),
            last["object"]["metadata"]["name"].clone()
        ),
        (json!("DELETED"), json!("a"))
    );

    // Bookmarks (the test apiserver sends one a second when allowed).
    let (_, l) = k.get(cms).await;
    let mut wb = k
        .watch(&format!(
            "{cms}?watch=true&allowWatchBookmarks=true&resourceVersion={}",
            rv(&l)
        ))
        .await;
    let (c, _) = k
        .post(
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}),
        )
        .await;
    assert_eq!(c, 201);
    let bm = wb.next().await.expect("bookmark");
    assert_eq!(bm["type"], "BOOKMARK", "{bm}");
    assert_eq!(bm["object"]["kind"], "ConfigMap");
    assert!(rv(&bm["object"]) >= rv(&l));

    // sendInitialEvents: the current state, then the initial-events-end bookmark.
    let mut wi = k
        .watch(&format!("{cms}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"))
        .await;
    let ev = wi.next().await.expect("initial");
    assert_eq!(
        (ev["type"].clone(), ev["object"]["metadata"]["name"].clone()),
        (json!("ADDED"), json!("a"))
    );
    let end = wi.next().await.expect("end bookmark");
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let (c, s) = k
        .get(&format!("{cms}?watch=true&sendInitialEvents=true"))
        .await;
    assert_eq!(c, 422, "{s}");

    // timeoutSeconds ends the stream.
    let mut wt = k
        .watch(&format!(
            "{cms}?watch=true&timeoutSeconds=1&resourceVersion={}",
            rv(&l)
        ))
        .await;
    let t0 = std::time::Instant::now();
    while wt.next_within(Duration::from_secs(30)).await.is_some() {}
    assert!(t0.elapsed() < Duration::from_secs(30));

    // Too old a resourceVersion: 200, then an ERROR event carrying a 410 Status.
    let (_, now) = k.get(cms).await;
    let mut etcd = etcd_client::Client::connect([e.store_endpoint.as_str()], None)
        .await
        .expect("etcd client");
    // Enough writes that the watch cache's window moves past `start`, then a compaction.
    for i in 0..40 {
        let (c, _) = k.post(cms, &cm(&format!("f{i}"), "x")).await;
        assert_eq!(c, 201);
    }
    etcd.compact(rv(&now), None).await.expect("compact");
    let mut wo = k
        .watch(&format!("{cms}?watch=true&resourceVersion=1"))
        .await;
    assert_eq!(wo.status, 200);
    let ev = wo.next().await.expect("error event");
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_graceful_pods_finalizers_namespaces_and_dry_run() {
    let e = env(&[]).await;
    let k = e.api.admin();
    let pods = "/api/v1/namespaces/default/pods";

    // An unbound pod goes at once; a bound one gets deletionTimestamp and waits for the kubelet.
    k.post(pods, &pod("free", json!({}))).await;
    let (c, _) = k.delete(&format!("{pods}/free")).await;
    assert_eq!(c, 200);
    assert_eq!(k.get(&format!("{pods}/free")).await.0, 404);
    let mut bound = pod("bound", json!({}));
    bound["spec"]["nodeName"] = json!("n1");
    k.post(pods, &bound).await;
    let (c, d) = k.delete(&format!("{pods}/bound")).await;
    assert_eq!(c, 200, "{d}");
    assert!(d["metadata"]["deletionTimestamp"].as_str().is_some(), "{d}");
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 30);
    let (c, still) = k.get(&format!("{pods}/bound")).await;
    assert_eq!(c, 200);
    // The kubelet's status updates do not delete it; its gracePeriodSeconds=0 does.
    let mut st = still.clone();
    st["status"]["phase"] = json!("Succeeded");
    assert_eq!(k.put(&format!("{pods}/bound/status"), &st).await.0, 200);
    assert_eq!(k.get(&format!("{pods}/bound")).await.0, 200);
    let (c, _) = k
        .delete_with(
            &format!("{pods}/bound"),
            &json!({ "gracePeriodSeconds": 0 }),
        )
        .await;
    assert_eq!(c, 200);
    assert_eq!(k.get(&format!("{pods}/bound")).await.0, 404);

    // dryRun=All on delete persists nothing.
    k.post(pods, &pod("keep", json!({}))).await;
    let (c, _) = k.delete(&format!("{pods}/keep?dryRun=All")).await;
    assert_eq!(c, 200);
    assert_eq!(k.get(&format!("{pods}/keep")).await.0, 200);

    // Preconditions.
    let (c, s) = k
        .delete_with(
            &format!("{pods}/keep"),
            &json!({ "preconditions": { "uid": "nope" } }),
        )
        .await;
    assert_eq!(c, 409, "{s}");

    // Finalizers hold an object until they are removed; then it is gone.
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "held", "finalizers": ["example.com/hold"] } });
    assert_eq!(k.post(cms, &cm).await.0, 201);
    let (c, d) = k.delete(&format!("{cms}/held")).await;
    assert_eq!(c, 200);
    assert!(d["metadata"]["deletionTimestamp"].as_str().is_some(), "{d}");
    let (_, cur) = k.get(&format!("{cms}/held")).await;
    let mut released = cur.clone();
    released["metadata"]["finalizers"] = json!([]);
    let (c, _) = k.put(&format!("{cms}/held"), &released).await;
    assert_eq!(c, 200);
    assert_eq!(k.get(&format!("{cms}/held")).await.0, 404);

    // Foreground propagation adds the foregroundDeletion finalizer.
    assert_eq!(
        k.post(
            cms,
            &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "fg" } })
        )
        .await
        .0,
        201
    );
    let (c, d) = k
        .delete_with(
            &format!("{cms}/fg"),
            &json!({ "propagationPolicy": "Foreground" }),
        )
        .await;
    assert_eq!(c, 200);
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));

    // Deleting a namespace makes it Terminating; nothing new may be created in it.
    assert_eq!(
        k.post("/api/v1/namespaces", &namespace("gone")).await.0,
        201
    );
    let (c, ns) = k.delete("/api/v1/namespaces/gone").await;
    assert_eq!(c, 200, "{ns}");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (c, s) = k
        .post(
            "/api/v1/namespaces/gone/configmaps",
            &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" } }),
        )
        .await;
    assert_eq!(c, 403, "{s}");
    // Finalizing it (what the namespace controller does) and deleting again removes it.
    let mut fin = ns.clone();
    fin["spec"]["finalizers"] = json!([]);
    let (c, f) = k.put("/api/v1/namespaces/gone/finalize", &fin).await;
    assert_eq!(c, 200, "{f}");
    assert_eq!(k.get("/api/v1/namespaces/gone").await.0, 404);

    // deletecollection with a selector.
    for i in 0..3 {
        let (c, _) = k.post(cms, &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": format!("c{i}"), "labels": { "batch": "1" } } })).await;
        assert_eq!(c, 201);
    }
    let (c, l) = k.delete(&format!("{cms}?labelSelector=batch%3D1")).await;
    assert_eq!(c, 200, "{l}");
    assert_eq!(l["items"].as_array().expect("items").len(), 3);
    let (_, left) = k.get(&format!("{cms}?labelSelector=batch%3D1")).await;
    assert_eq!(left["items"], json!([]));
}

async fn expect_401(k: &Kube, what: &str) {
    let (c, s) = k.get("/api/v1/namespaces").await;
    assert_eq!(c, 401, "{what}: {s}");
    assert_status(&s, 401, "Unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_rbac() {
    let e = env(&[]).await;
    let admin = e.api.admin();

    // Authentication failures: no token, garbage, a bad signature, expired, alg none.
    expect_401(&e.api.client(None), "no token").await;
    expect_401(&e.api.client(Some("garbage")), "garbage").await;
    let good = e.api.token("alice", &[]);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    expect_401(&e.api.client(Some(&parts.join("."))), "bad signature").await;
    // Tokens signed with the right key but expired, not yet valid, for another issuer or
    // for another audience.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let iss = strata_tests::kube::ISSUER;
    let key = std::fs::read(&e.api.signing_key).expect("signing key");
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_pem(&key).expect("EC key"),
        )
        .expect("sign")
    };
    let claims = |iss: &str, aud: &str, nbf: i64, exp: i64| json!({ "iss": iss, "aud": [aud], "sub": "admin", "groups": ["system:masters"], "iat": now, "nbf": nbf, "exp": exp });
    // The same construction with valid claims is accepted, so the rejections below are
    // about the claims alone.
    let valid = sign(claims(iss, iss, now - 10, now + 600));
    assert_eq!(
        e.api.client(Some(&valid)).get("/api/v1/namespaces").await.0,
        200
    );
    expect_401(
        &e.api
            .client(Some(&sign(claims(iss, iss, now - 7200, now - 3600)))),
        "expired",
    )
    .await;
    expect_401(
        &e.api
            .client(Some(&sign(claims(iss, iss, now + 3600, now + 7200)))),
        "not yet valid",
    )
    .await;
    expect_401(
        &e.api.client(Some(&sign(claims(
            "https://other",
            iss,
            now - 10,
            now + 600,
        )))),
        "wrong issuer",
    )
    .await;
    expect_401(
        &e.api.client(Some(&sign(claims(
            iss,
            "other-audience",
            now - 10,
            now + 600,
        )))),
        "wrong audience",
    )
    .await;
    let none = {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(
                r#"{{"iss":"{iss}","sub":"admin","aud":["{iss}"],"groups":["system:masters"],"exp":9999999999}}"#
            ))
        )
    };
    expect_401(&e.api.client(Some(&none)), "alg none").await;

    // An authenticated user without grants: 403 with Kubernetes' message.
    let alice = e.api.client(Some(&good));
    let (c, s) = alice.get("/api/v1/namespaces/default/pods").await;
    assert_eq!(c, 403, "{s}");
    assert_status(&s, 403, "Forbidden");
    assert_eq!(
        s["message"],
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let (c, s) = alice.get("/api/v1/nodes").await;
    assert_eq!(c, 403);
    assert_eq!(
        s["message"],
        "nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );

    // A Role and RoleBinding grant access in their namespace only.
    admin.post("/api/v1/namespaces", &namespace("dev")).await;
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": "pod-reader", "namespace": "dev" },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }]
    });
    let (c, r) = admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/roles",
            &role,
        )
        .await;
    assert_eq!(c, 201, "{r}");
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "alice-reads", "namespace": "dev" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader" },
        "subjects": [{ "kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io" }]
    });
    let (c, b) = admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings",
            &binding,
        )
        .await;
    assert_eq!(c, 201, "{b}");
    strata_tests::wait_until_async("alice can list pods in dev", || {
        let alice = alice.clone();
        async move { alice.get("/api/v1/namespaces/dev/pods").await.0 == 200 }
    })
    .await;
    assert_eq!(alice.get("/api/v1/namespaces/default/pods").await.0, 403);
    let (c, s) = alice
        .post("/api/v1/namespaces/dev/pods", &pod("x", json!({})))
        .await;
    assert_eq!(c, 403, "{s}");

    // Service accounts map to system:serviceaccount:<ns>:<name> and their groups.
    let sa = e.api.client(Some(&e.api.sa_token("dev", "builder")));
    let (c, s) = sa.get("/api/v1/namespaces/dev/configmaps").await;
    assert_eq!(c, 403);
    assert!(s["message"]
        .as_str()
        .expect("message")
        .contains("User \"system:serviceaccount:dev:builder\""));
    let crb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": "sa-view" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "kind": "ServiceAccount", "name": "builder", "namespace": "dev" }]
    });
    assert_eq!(
        admin
            .post(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                &crb
            )
            .await
            .0,
        201
    );
    strata_tests::wait_until_async("the service account can view configmaps", || {
        let sa = sa.clone();
        async move { sa.get("/api/v1/namespaces/dev/configmaps").await.0 == 200 }
    })
    .await;

    // The scheduler's bootstrap role: bind pods, not delete nodes.
    let sched = e
        .api
        .client(Some(&e.api.token("system:kube-scheduler", &[])));
    admin
        .post("/api/v1/namespaces/default/pods", &pod("s", json!({})))
        .await;
    let (c, s) = sched
        .post(
            "/api/v1/namespaces/default/pods/s/binding",
            &json!({ "apiVersion": "v1", "kind": "Binding", "metadata": { "name": "s" }, "target": { "kind": "Node", "name": "n1" } }),
        )
        .await;
    assert_eq!(c, 201, "{s}");
    admin
        .post(
            "/api/v1/nodes",
            &json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "n1" } }),
        )
        .await;
    admin
        .post(
            "/api/v1/nodes",
            &json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "n2" } }),
        )
        .await;
    assert_eq!(sched.delete("/api/v1/nodes/n1").await.0, 403);

    // A node may touch only its own Node and the pods bound to it.
    let node1 = e
        .api
        .client(Some(&e.api.token("system:node:n1", &["system:nodes"])));
    let (_, n1) = node1.get("/api/v1/nodes/n1").await;
    let mut n1s = n1.clone();
    n1s["status"] = json!({ "conditions": [{ "type": "Ready", "status": "True" }] });
    let (c, s) = node1.put("/api/v1/nodes/n1/status", &n1s).await;
    assert_eq!(c, 200, "{s}");
    let (_, n2) = admin.get("/api/v1/nodes/n2").await;
    let (c, _) = node1.put("/api/v1/nodes/n2/status", &n2).await;
    assert_eq!(c, 403);
    let (_, sp) = admin.get("/api/v1/namespaces/default/pods/s").await;
    let mut sps = sp.clone();
    sps["status"]["phase"] = json!("Running");
    let (c, s) = node1
        .put("/api/v1/namespaces/default/pods/s/status", &sps)
        .await;
    assert_eq!(c, 200, "{s}");
    let node2 = e
        .api
        .client(Some(&e.api.token("system:node:n2", &["system:nodes"])));
    let (c, _) = node2.delete("/api/v1/namespaces/default/pods/s").await;
    assert_eq!(c, 403);

    // Non-resource paths: any authenticated user may read /version and /healthz.
    assert_eq!(alice.get("/version").await.0, 200);
    assert_eq!(alice.raw("GET", "/healthz", None, "").await.0, 200);

    // /metrics counts requests by verb, resource and code.
    let (c, m) = admin.raw("GET", "/metrics", None, "").await;
    assert_eq!(c, 200);
    assert!(
        m.contains("apiserver_request_total{verb=\"LIST\",resource=\"pods\",code=\"403\"}"),
        "{m}"
    );
    assert!(m.contains("apiserver_request_duration_seconds_bucket"));
    assert!(m.contains("etcd_request_duration_seconds_bucket"));
}

/// The storage layer speaks plain etcd v3: the same apiserver runs against Debian's etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_against_a_real_etcd() {
    if !strata_tests::require_tool("etcd") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let etcd = strata_tests::EtcdProc::start(&tmp.path().join("etcd"));
    let api = ApiserverProc::start(&tmp.path().join("api"), &etcd.url(), &[]).await;
    let k = api.admin();
    let (c, p) = k
        .post(
            "/api/v1/namespaces/default/pods",
            &pod("on-etcd", json!({"a": "b"})),
        )
        .await;
    assert_eq!(c, 201, "{p}");
    let mut w = k
        .watch(&format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={}",
            rv(&p)
        ))
        .await;
    let mut upd = p.clone();
    upd["metadata"]["labels"]["a"] = json!("c");
    assert_eq!(
        k.put("/api/v1/namespaces/default/pods/on-etcd", &upd)
            .await
            .0,
        200
    );
    assert_eq!(
        k.put("/api/v1/namespaces/default/pods/on-etcd", &upd)
            .await
            .0,
        409
    );
    let ev = w.next().await.expect("event");
    assert_eq!(ev["type"], "MODIFIED");
    let (c, l) = k
        .get("/api/v1/namespaces/default/pods?labelSelector=a%3Dc")
        .await;
    assert_eq!(c, 200);
    assert_eq!(l["items"].as_array().expect("items").len(), 1);
    let (c, p1) = k.get("/api/v1/namespaces/default/pods?limit=1").await;
    assert_eq!(c, 200, "{p1}");
    assert_eq!(
        k.delete("/api/v1/namespaces/default/pods/on-etcd").await.0,
        200
    );
}

/// A watcher that does not read is closed once it falls a whole watch-cache window behind;
/// the others keep receiving every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_cannot_keep_up_is_closed_without_stalling_others() {
    let e = env(&["--watch-cache-size", "32"]).await;
    let k = e.api.admin();
    let cms = "/api/v1/namespaces/default/configmaps";
    let (_, l) = k.get(cms).await;
    let from = rv(&l);
    let mut slow = k
        .watch(&format!("{cms}?watch=true&resourceVersion={from}"))
        .await;
    let mut fast = k
        .watch(&format!("{cms}?watch=true&resourceVersion={from}"))
        .await;
    // 120 events of 256 KiB: far more than socket buffers hold for the slow watcher. The
    // writes go in step with the fast watcher, so it is never behind, however loaded the
    // machine is.
    let big = "x".repeat(256 * 1024);
    for i in 0..120 {
        let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": format!("big{i}") }, "data": { "v": big } });
        let (c, _) = k.post(cms, &cm).await;
        assert_eq!(c, 201);
        let ev = fast
            .next()
            .await
            .expect("the fast watcher gets every event");
        assert_eq!(ev["object"]["metadata"]["name"], format!("big{i}"));
    }
    // The slow watcher's stream ends early: it never sees all 120 events.
    let mut seen = 0;
    while slow.next().await.is_some() {
        seen += 1;
    }
    assert!(
        seen < 120,
        "the slow watcher was not closed (saw {seen} events)"
    );
    let (_, m) = k.raw("GET", "/metrics", None, "").await;
    assert!(
        m.contains("apiserver_terminated_watchers_total{resource=\"configmaps\"} 1"),
        "{m}"
    );
}
