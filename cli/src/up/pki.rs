//! The certificates `strata up` gives the store: one CA, a certificate every member serves
//! with and presents to its peers (server and client use, for 127.0.0.1 and localhost), and
//! the apiserver's client certificate. Made once with rcgen into `<data-dir>/pki` and reused
//! on every later start, so a resumed cluster keeps trusting itself.

use std::path::{Path, PathBuf};

pub struct Pki {
    pub ca_cert: PathBuf,
    pub member_cert: PathBuf,
    pub member_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn write_key(path: &Path, pem: &str) -> Result<(), String> {
    std::fs::write(path, pem).map_err(|e| format!("writing {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Makes (or finds) the store's CA and certificates in `dir`.
pub fn ensure(dir: &Path) -> Result<Pki, String> {
    let p = Pki {
        ca_cert: dir.join("ca.crt"),
        member_cert: dir.join("member.crt"),
        member_key: dir.join("member.key"),
        client_cert: dir.join("apiserver-etcd-client.crt"),
        client_key: dir.join("apiserver-etcd-client.key"),
    };
    let all = [
        &p.ca_cert,
        &p.member_cert,
        &p.member_key,
        &p.client_cert,
        &p.client_key,
    ];
    if all.iter().all(|f| f.exists()) {
        return Ok(p);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "strata-store-ca");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let leaf = |cn: &str,
                names: Vec<String>,
                usages: Vec<rcgen::ExtendedKeyUsagePurpose>|
     -> Result<(String, String), String> {
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params = rcgen::CertificateParams::new(names).map_err(err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = usages;
        params.not_after = rcgen::date_time_ymd(2046, 1, 1);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let (member_cert, member_key) = leaf(
        "strata-member",
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![ServerAuth, ClientAuth],
    )?;
    let (client_cert, client_key) = leaf("apiserver-etcd-client", vec![], vec![ClientAuth])?;
    let write = |path: &Path, s: &str| {
        std::fs::write(path, s).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(&p.ca_cert, &ca_cert.pem())?;
    write(&p.member_cert, &member_cert)?;
    write_key(&p.member_key, &member_key)?;
    write(&p.client_cert, &client_cert)?;
    write_key(&p.client_key, &client_key)?;
    Ok(p)
}
