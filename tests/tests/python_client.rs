//! The official Kubernetes Python client (PyPI `kubernetes`, installed by `make setup`) against
//! `strata apiserver`: list, create, update with resourceVersion, watch from a resourceVersion.
//! The client's side of the checks is tests/python/k8s_client.py.

use std::process::Command;

use strata_tests::kube::ApiserverProc;
use strata_tests::StoreProc;

/// Whether python3 can import the client; on CI it must.
fn have_python_client() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok() {
            panic!("the Python kubernetes client is required on CI (make setup installs it)");
        }
        eprintln!("SKIPPED: python3 -c 'import kubernetes' failed (run `make setup`)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_creates_updates_and_watches() {
    if !have_python_client() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StoreProc::start(&tmp.path().join("store"), &[]);
    let api = ApiserverProc::start(&tmp.path().join("api"), &store.url(), &[]).await;
    let token = api.token("admin", &["system:masters"]);
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: strata\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: strata\n  context:\n    cluster: strata\n    user: admin\ncurrent-context: strata\n",
            api.port,
            api.ca.display()
        ),
    )
    .expect("kubeconfig");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/k8s_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&kubeconfig)
        .arg("py-test")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}\napiserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        api.log_text()
    );
}
