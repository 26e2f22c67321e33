//! kube-rs, unmodified, against `strata apiserver`: a client built from a kubeconfig file,
//! typed CRUD, and a watcher feeding a reflector that keeps an exact copy of the objects
//! through an apiserver restart (it resumes its watch) and through a 410 Gone (it re-lists,
//! dropping what was deleted while it could not watch).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use strata_tests::kube::ApiserverProc;
use strata_tests::{StoreProc, DEADLINE};

async fn client(api: &ApiserverProc) -> kube::Client {
    let token = api.token("admin", &["system:masters"]);
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: strata\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: strata\n  context:\n    cluster: strata\n    user: admin\ncurrent-context: strata\n",
        api.port,
        api.ca.display()
    );
    let kc = Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("v".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

/// Waits until the reflector's store satisfies `pred`.
async fn until(store: &Store<ConfigMap>, what: &str, pred: impl Fn(&[String]) -> bool) {
    let start = Instant::now();
    loop {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        names.sort();
        if pred(&names) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: reflector holds {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_restart_and_relists_after_410() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_proc = StoreProc::start(&tmp.path().join("store"), &[]);
    let mut api = ApiserverProc::start(&tmp.path().join("api"), &store_proc.url(), &[]).await;
    let client = client(&api).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Typed CRUD.
    for i in 1..=3 {
        cms.create(&PostParams::default(), &cm(&format!("a{i}"), "1"))
            .await
            .expect("create");
    }
    let got = cms.get("a1").await.expect("get");
    assert_eq!(
        got.data.as_ref().and_then(|d| d.get("v")),
        Some(&"1".to_string())
    );
    let e = cms
        .create(&PostParams::default(), &cm("a1", "x"))
        .await
        .expect_err("second create of a1");
    match e {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("unexpected error {other}"),
    }

    // watcher -> reflector, counting (re)lists.
    let (reader, writer) = reflector::store::<ConfigMap>();
    let lists = Arc::new(AtomicUsize::new(0));
    let counted = lists.clone();
    let stream = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::InitDone) = ev {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    until(&reader, "initial list", |n| n == ["a1", "a2", "a3"]).await;
    cms.create(&PostParams::default(), &cm("a4", "1"))
        .await
        .expect("create a4");
    until(&reader, "live event", |n| n.len() == 4).await;
    let before = lists.load(Ordering::SeqCst);

    // An apiserver restart with no writes in between: the watch resumes where it was.
    api.restart().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let start = Instant::now();
    while cms
        .create(&PostParams::default(), &cm("a5", "1"))
        .await
        .is_err()
    {
        assert!(start.elapsed() < DEADLINE, "apiserver did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until(&reader, "after restart", |n| n.contains(&"a5".to_string())).await;

    // Now writes happen while the apiserver is down: one object is deleted and the store's
    // revision moves on, so the restarted watch cache cannot replay from the reflector's
    // resourceVersion. The watch gets 410 Gone and the watcher lists again.
    api.kill9();
    let mut etcd = etcd_client::Client::connect([store_proc.endpoint()], None)
        .await
        .expect("etcd client");
    etcd.delete("/registry/configmaps/default/a2", None)
        .await
        .expect("delete behind the apiserver's back");
    for i in 0..20 {
        etcd.put(format!("/unrelated/{i}"), "x", None)
            .await
            .expect("unrelated write");
    }
    api.restart().await;
    until(&reader, "relist after 410", |n| {
        !n.contains(&"a2".to_string()) && n.len() == 4
    })
    .await;
    let start = Instant::now();
    while lists.load(Ordering::SeqCst) <= before {
        assert!(start.elapsed() < DEADLINE, "the watcher never listed again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deletes are seen live again.
    let cms = Api::<ConfigMap>::namespaced(client, "default");
    cms.delete("a1", &DeleteParams::default())
        .await
        .expect("delete a1");
    until(&reader, "live delete", |n| n == ["a3", "a4", "a5"]).await;
    driver.abort();
}
