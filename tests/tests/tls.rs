//! TLS with etcd's flags, checked with etcdctl: on the client port (server certificates, and
//! client certificates required by `--client-cert-auth`), and between members (https peer URLs
//! with mutual TLS, `--peer-client-cert-auth`).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use strata_tests::{free_port, require_tool, strata_bin, wait_until, Cluster};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl {args:?}");
}

/// A CA, and a certificate for 127.0.0.1 signed by it usable by servers and clients.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=strata-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "node.key",
            "-out",
            "node.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "node.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn etcdctl(dir: &Path, port: u16, extra: &[&str], args: &[&str]) -> (bool, String) {
    let out = Command::new("etcdctl")
        .current_dir(dir)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://127.0.0.1:{port}"))
        .args([
            "--dial-timeout=5s",
            "--command-timeout=10s",
            "--cacert",
            "ca.crt",
        ])
        .args(extra)
        .args(args)
        .output()
        .expect("etcdctl");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A one-member store with an https client URL requiring client certificates
/// (`--client-cert-auth`), using the certificates of `make_certs` in `d`; its port and a guard
/// that stops it. Returns once etcdctl with the client certificate gets an answer.
fn start_client_cert_store(d: &Path) -> (u16, Kill) {
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let child = Command::new(strata_bin())
        .current_dir(d)
        .args(["store", "--data-dir", "data"])
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", "http://127.0.0.1:0"])
        .args(["--cert-file", "node.crt", "--key-file", "node.key"])
        .args(["--trusted-ca-file", "ca.crt", "--client-cert-auth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata store");
    let guard = Kill(child);
    wait_until("the TLS member to answer", || {
        etcdctl(
            d,
            port,
            &["--cert", "node.crt", "--key", "node.key"],
            &["endpoint", "health"],
        )
        .0
    });
    (port, guard)
}

#[test]
fn https_client_urls_with_client_certificates() {
    if !require_tool("etcdctl") || !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_certs(d);
    let (port, _guard) = start_client_cert_store(d);
    let with_cert = ["--cert", "node.crt", "--key", "node.key"];

    let (ok, out) = etcdctl(d, port, &with_cert, &["put", "secure", "yes"]);
    assert!(ok, "{out}");
    let (ok, out) = etcdctl(
        d,
        port,
        &with_cert,
        &["get", "secure", "--print-value-only"],
    );
    assert!(ok && out.trim() == "yes", "{out}");
    let (ok, out) = etcdctl(d, port, &[], &["get", "secure"]);
    assert!(!ok, "a client without a certificate is refused: {out}");
}

#[test]
fn three_members_replicate_over_mutual_tls_peer_links() {
    if !require_tool("etcdctl") || !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_certs(d);
    let path = |f: &str| d.join(f).to_string_lossy().into_owned();
    let (cert, key, ca) = (path("node.crt"), path("node.key"), path("ca.crt"));
    let c = Cluster::start_peer_tls(
        d,
        3,
        &[
            "--peer-cert-file",
            &cert,
            "--peer-key-file",
            &key,
            "--peer-trusted-ca-file",
            &ca,
            "--peer-client-cert-auth",
        ],
    );
    assert!(c.members[0].peer_url().starts_with("https://"));
    let (ok, out) =
        strata_tests::etcdctl(&c.members[0].endpoint(), &["put", "over-tls", "yes"], None);
    assert!(ok, "{out}");
    for m in &c.members {
        wait_until("the write to replicate over TLS", || {
            let (ok, out) = strata_tests::etcdctl(
                &m.endpoint(),
                &["get", "over-tls", "--print-value-only", "--consistency=s"],
                None,
            );
            ok && out.trim() == "yes"
        });
    }
    let (ok, out) = strata_tests::etcdctl(&c.endpoints(), &["member", "list"], None);
    assert!(
        ok && out.matches("https://127.0.0.1:").count() == 3,
        "{out}"
    );
}

/// The store's client port can be kept for the apiserver alone: with `--client-cert-auth`,
/// the apiserver reaches it over https with its client certificate (kube-apiserver's
/// --etcd-cafile/--etcd-certfile/--etcd-keyfile), and serves Kubernetes requests over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_reaches_a_client_cert_store_over_tls() {
    if !require_tool("etcdctl") || !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_certs(d);
    let (port, _guard) = start_client_cert_store(d);
    let url = format!("https://127.0.0.1:{port}");
    let with_cert = ["--cert", "node.crt", "--key", "node.key"];
    let path = |f: &str| d.join(f).to_string_lossy().into_owned();
    let api = strata_tests::kube::ApiserverProc::start(
        &d.join("api"),
        &url,
        &[
            "--etcd-cafile",
            &path("ca.crt"),
            "--etcd-certfile",
            &path("node.crt"),
            "--etcd-keyfile",
            &path("node.key"),
        ],
    )
    .await;
    let k = api.admin();
    let cm = serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "over-tls" }, "data": { "a": "b" } });
    let (c, body) = k.post("/api/v1/namespaces/default/configmaps", &cm).await;
    assert_eq!(c, 201, "{body}");
    let (ok, out) = etcdctl(
        d,
        port,
        &with_cert,
        &[
            "get",
            "/registry/configmaps/default/over-tls",
            "--print-value-only",
        ],
    );
    assert!(ok && out.contains("over-tls"), "{out}");
}
