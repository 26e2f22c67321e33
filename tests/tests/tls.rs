//! TLS on the client port with etcd's flags, checked with etcdctl: server certificates, and
//! client certificates required by `--client-cert-auth`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use strata_tests::{require_tool, strata_bin, wait_until};

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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

#[test]
fn https_client_urls_with_client_certificates() {
    if !require_tool("etcdctl") || !require_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_certs(d);
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let child = Command::new(strata_bin())
        .current_dir(d)
        .args([
            "store",
            "--data-dir",
            "data",
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--cert-file",
            "node.crt",
            "--key-file",
            "node.key",
            "--trusted-ca-file",
            "ca.crt",
            "--client-cert-auth",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata store");
    let _guard = Kill(child);
    let with_cert = ["--cert", "node.crt", "--key", "node.key"];
    wait_until("the TLS member to answer", || {
        etcdctl(d, port, &with_cert, &["endpoint", "health"]).0
    });

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
