//! Bearer JWTs: verification (like kube-apiserver's service-account token authenticator,
//! extended to plain user tokens) and minting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

use super::keys::{self, PrivateKey, PublicKey};
use super::{UserInfo, GROUP_AUTHENTICATED};

/// Leeway on `exp` and `nbf`, as Kubernetes allows.
const LEEWAY_SECONDS: u64 = 60;
const SA_PREFIX: &str = "system:serviceaccount:";
const SA_GROUP: &str = "system:serviceaccounts";
const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer JWTs.
pub struct Authenticator {
    keys: Vec<VerifyKey>,
    issuer: String,
    audiences: Vec<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish()
    }
}

impl Authenticator {
    /// `key_files`: PEM files, each holding public keys and/or private keys (RSA for RS256, EC
    /// P-256 for ES256; PKCS#1, PKCS#8 and SEC1 forms, and certificates; a private key
    /// contributes its public key), like kube-apiserver's --service-account-key-file. Each file
    /// must hold at least one such key. `issuer` must equal the token's `iss`. If `audiences`
    /// is non-empty, the token's `aud` must contain at least one of them; if empty, `aud` is
    /// not checked.
    pub fn from_key_files(
        key_files: &[PathBuf],
        issuer: &str,
        audiences: Vec<String>,
    ) -> Result<Authenticator, String> {
        let mut pems = Vec::with_capacity(key_files.len());
        for path in key_files {
            let data = std::fs::read(path)
                .map_err(|e| format!("reading key file {}: {e}", path.display()))?;
            keys::public_keys_from_pem(&data)
                .map_err(|e| format!("key file {}: {e}", path.display()))?;
            pems.push(data);
        }
        Authenticator::from_pem(&pems, issuer, audiences)
    }

    /// Like [`Authenticator::from_key_files`], with the files' contents.
    pub fn from_pem(
        pems: &[Vec<u8>],
        issuer: &str,
        audiences: Vec<String>,
    ) -> Result<Authenticator, String> {
        if issuer.is_empty() {
            return Err("the token issuer must not be empty".to_string());
        }
        if pems.is_empty() {
            return Err("no token verification keys given".to_string());
        }
        let mut keys = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            let public = keys::public_keys_from_pem(pem).map_err(|e| format!("key #{i}: {e}"))?;
            keys.extend(public.into_iter().map(|k| match k {
                PublicKey::Rsa { n, e } => VerifyKey {
                    alg: Algorithm::RS256,
                    key: DecodingKey::from_rsa_raw_components(&n, &e),
                },
                PublicKey::EcP256 { point } => VerifyKey {
                    alg: Algorithm::ES256,
                    key: DecodingKey::from_ec_der(&point),
                },
            }));
        }
        Ok(Authenticator {
            keys,
            issuer: issuer.to_string(),
            audiences,
        })
    }

    /// Verifies the signature (with each key of the header's algorithm in turn; the algorithm
    /// must be RS256 or ES256), `exp` (required) and `nbf` (when present) with 60 s leeway,
    /// `iss` and `aud`, then maps the claims to a user. The error is a short message for a 401.
    pub fn authenticate(&self, token: &str) -> Result<UserInfo, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "invalid bearer token: malformed JWT".to_string())?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!(
                "invalid bearer token: unsupported signing algorithm {:?}",
                header.alg
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        if self.audiences.is_empty() {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss"]);
        } else {
            validation.set_audience(&self.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        for key in self.keys.iter().filter(|k| k.alg == header.alg) {
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return user_from_claims(&data.claims),
                Err(e) => match e.kind() {
                    // Not this key: try the next one.
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => continue,
                    kind => return Err(describe(kind)),
                },
            }
        }
        Err("invalid bearer token: signature does not verify".to_string())
    }
}

fn describe(kind: &ErrorKind) -> String {
    let what = match kind {
        ErrorKind::ExpiredSignature => "token has expired".to_string(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidIssuer => "token issuer is not accepted".to_string(),
        ErrorKind::InvalidAudience => "token audience is not accepted".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("token has no {c} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("token claim {c} is malformed"),
        ErrorKind::InvalidAlgorithm => "token algorithm does not match the key".to_string(),
        _ => "malformed JWT".to_string(),
    };
    format!("invalid bearer token: {what}")
}

fn claim_str<'a>(claims: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("invalid bearer token: claim {key} is not a string")),
    }
}

/// Maps verified claims to a user: a Kubernetes service-account token (the `kubernetes.io`
/// claim, or `sub` = system:serviceaccount:<ns>:<name>) to the service account's user, any
/// other token to user `sub` with the `groups` claim.
fn user_from_claims(claims: &Value) -> Result<UserInfo, String> {
    let bad = |what: &str| format!("invalid bearer token: {what}");
    let sub = claim_str(claims, "sub")?;
    if sub == Some("") {
        return Err(bad("empty sub claim"));
    }
    let jti = claim_str(claims, "jti")?;

    let private = match claims.get("kubernetes.io") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err(bad("kubernetes.io claim is not an object")),
    };
    if let Some(k8s) = private {
        let namespace = claim_str(k8s, "namespace")?.unwrap_or_default();
        let sa = k8s.get("serviceaccount").unwrap_or(&Value::Null);
        let name = claim_str(sa, "name")?.unwrap_or_default();
        if !valid_sa_part(namespace) || !valid_sa_part(name) {
            return Err(bad(
                "kubernetes.io claim lacks a valid namespace and service account name",
            ));
        }
        let username = format!("{SA_PREFIX}{namespace}:{name}");
        if let Some(sub) = sub {
            if sub != username {
                return Err(bad("sub claim does not match the kubernetes.io claim"));
            }
        }
        let uid = claim_str(sa, "uid")?.unwrap_or_default();
        let mut user = service_account_user(namespace, name, uid);
        for (field, name_key, uid_key) in [
            ("pod", EXTRA_POD_NAME, EXTRA_POD_UID),
            ("node", EXTRA_NODE_NAME, EXTRA_NODE_UID),
        ] {
            if let Some(obj) = k8s.get(field).filter(|v| v.is_object()) {
                if let Some(n) = claim_str(obj, "name")?.filter(|s| !s.is_empty()) {
                    user.extra.insert(name_key.to_string(), vec![n.to_string()]);
                }
                if let Some(u) = claim_str(obj, "uid")?.filter(|s| !s.is_empty()) {
                    user.extra.insert(uid_key.to_string(), vec![u.to_string()]);
                }
            }
        }
        if let Some(jti) = jti.filter(|s| !s.is_empty()) {
            user.extra
                .insert(EXTRA_CREDENTIAL_ID.to_string(), vec![format!("JTI={jti}")]);
        }
        return Ok(user);
    }

    let Some(sub) = sub else {
        return Err(bad("token has no sub claim"));
    };
    if let Some(rest) = sub.strip_prefix(SA_PREFIX) {
        let Some((namespace, name)) = rest.split_once(':') else {
            return Err(bad("malformed service account subject"));
        };
        if !valid_sa_part(namespace) || !valid_sa_part(name) {
            return Err(bad("malformed service account subject"));
        }
        let mut user = service_account_user(namespace, name, "");
        if let Some(jti) = jti.filter(|s| !s.is_empty()) {
            user.extra
                .insert(EXTRA_CREDENTIAL_ID.to_string(), vec![format!("JTI={jti}")]);
        }
        return Ok(user);
    }

    let mut groups: Vec<String> = Vec::new();
    match claims.get("groups") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(g) = item else {
                    return Err(bad("groups claim is not an array of strings"));
                };
                if !g.is_empty() && !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
        Some(_) => return Err(bad("groups claim is not an array of strings")),
    }
    if !groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
        groups.push(GROUP_AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        name: sub.to_string(),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

fn valid_sa_part(s: &str) -> bool {
    !s.is_empty() && !s.contains(':')
}

fn service_account_user(namespace: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        name: format!("{SA_PREFIX}{namespace}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            SA_GROUP.to_string(),
            format!("{SA_GROUP}:{namespace}"),
            GROUP_AUTHENTICATED.to_string(),
        ],
        extra: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Minting

/// What token to mint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub subject: Subject,
    pub issuer: String,
    /// Written as the `aud` array; omitted when empty.
    pub audiences: Vec<String>,
    pub ttl: Duration,
}

/// Whom a minted token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User {
        name: String,
        groups: Vec<String>,
    },
    ServiceAccount {
        namespace: String,
        name: String,
        uid: Option<String>,
    },
}

/// Signs a token with the first private key in the PEM (RSA -> RS256, EC P-256 -> ES256).
/// Sets iss, sub, aud (array), iat, nbf, exp, a random jti, `groups` for users, and the
/// `kubernetes.io` claim for service accounts (as Kubernetes' projected tokens have it).
pub fn mint(private_key_pem: &[u8], req: &TokenRequest) -> Result<String, String> {
    let (alg, key) = match keys::first_private_key(private_key_pem)? {
        PrivateKey::Rsa { pkcs1_der, .. } => {
            (Algorithm::RS256, EncodingKey::from_rsa_der(&pkcs1_der))
        }
        PrivateKey::EcP256 { pkcs8_der, .. } => {
            (Algorithm::ES256, EncodingKey::from_ec_der(&pkcs8_der))
        }
    };
    if req.issuer.is_empty() {
        return Err("the token issuer must not be empty".to_string());
    }
    let ttl = req.ttl.as_secs();
    if ttl == 0 {
        return Err("the token lifetime must be at least one second".to_string());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_string())?
        .as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(req.issuer));
    match &req.subject {
        Subject::User { name, groups } => {
            if name.is_empty() {
                return Err("the user name must not be empty".to_string());
            }
            if name.starts_with(SA_PREFIX) {
                return Err(format!(
                    "user names starting with {SA_PREFIX:?} are service accounts: use a service account subject"
                ));
            }
            claims.insert("sub".into(), json!(name));
            if !groups.is_empty() {
                claims.insert("groups".into(), json!(groups));
            }
        }
        Subject::ServiceAccount {
            namespace,
            name,
            uid,
        } => {
            if !valid_sa_part(namespace) || !valid_sa_part(name) {
                return Err(
                    "service account namespace and name must be non-empty and contain no ':'"
                        .to_string(),
                );
            }
            claims.insert(
                "sub".into(),
                json!(format!("{SA_PREFIX}{namespace}:{name}")),
            );
            let mut sa = Map::new();
            sa.insert("name".into(), json!(name));
            if let Some(uid) = uid {
                sa.insert("uid".into(), json!(uid));
            }
            claims.insert(
                "kubernetes.io".into(),
                json!({ "namespace": namespace, "serviceaccount": sa }),
            );
        }
    }
    if !req.audiences.is_empty() {
        claims.insert("aud".into(), json!(req.audiences));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(ttl)));
    claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
    jsonwebtoken::encode(&Header::new(alg), &Value::Object(claims), &key)
        .map_err(|e| format!("signing the token: {e}"))
}

/// A new EC P-256 private key as PKCS#8 PEM (for `strata up`'s signing key).
pub fn generate_signing_key() -> Result<String, String> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map(|k| k.serialize_pem())
        .map_err(|e| format!("generating a signing key: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::testdata::*;
    use super::*;
    use base64::Engine as _;

    const ISS: &str = "https://strata.test";

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn user_req(name: &str, groups: &[&str]) -> TokenRequest {
        TokenRequest {
            subject: Subject::User {
                name: name.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            issuer: ISS.into(),
            audiences: vec!["strata".into()],
            ttl: Duration::from_secs(600),
        }
    }

    fn auth(pems: &[&str], audiences: &[&str]) -> Authenticator {
        Authenticator::from_pem(
            &pems
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect::<Vec<_>>(),
            ISS,
            audiences.iter().map(|a| a.to_string()).collect(),
        )
        .unwrap()
    }

    /// Signs arbitrary claims with the given private key (bypassing `mint`'s checks).
    fn sign_claims(pem: &str, claims: &Value) -> String {
        let (alg, key) = match keys::first_private_key(pem.as_bytes()).unwrap() {
            PrivateKey::Rsa { pkcs1_der, .. } => {
                (Algorithm::RS256, EncodingKey::from_rsa_der(&pkcs1_der))
            }
            PrivateKey::EcP256 { pkcs8_der, .. } => {
                (Algorithm::ES256, EncodingKey::from_ec_der(&pkcs8_der))
            }
        };
        jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
    }

    #[test]
    fn rs256_and_es256_round_trip() {
        let a = auth(&[RSA_SPKI_PUBLIC, EC_SPKI_PUBLIC], &["strata"]);
        for (pem, alg) in [
            (RSA_PKCS1_PRIVATE, "RS256"),
            (RSA_PKCS8_PRIVATE, "RS256"),
            (EC_SEC1_PRIVATE, "ES256"),
        ] {
            let token = mint(pem.as_bytes(), &user_req("alice", &["devs", "ops"])).unwrap();
            assert_eq!(
                jsonwebtoken::decode_header(&token).unwrap().alg,
                alg.parse().unwrap()
            );
            let user = a.authenticate(&token).unwrap();
            assert_eq!(user.name, "alice");
            assert_eq!(user.uid, "");
            assert_eq!(user.groups, vec!["devs", "ops", "system:authenticated"]);
        }
    }

    #[test]
    fn generated_key_signs_and_verifies_via_private_key_file() {
        let pem = generate_signing_key().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let dir = std::env::temp_dir().join(format!("strata-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sa.key");
        std::fs::write(&path, &pem).unwrap();
        let a = Authenticator::from_key_files(std::slice::from_ref(&path), ISS, vec![]).unwrap();
        let token = mint(pem.as_bytes(), &user_req("bob", &[])).unwrap();
        assert_eq!(
            a.authenticate(&token).unwrap().groups,
            vec!["system:authenticated"]
        );
        // A missing file and a file without keys are errors.
        assert!(Authenticator::from_key_files(&[dir.join("nope")], ISS, vec![]).is_err());
        std::fs::write(&path, "not a key").unwrap();
        assert!(Authenticator::from_key_files(&[path], ISS, vec![]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tries_every_key() {
        let a = auth(&[OTHER_RSA_PUBLIC, EC_SPKI_PUBLIC, RSA_SPKI_PUBLIC], &[]);
        let token = mint(RSA_PKCS1_PRIVATE.as_bytes(), &user_req("alice", &[])).unwrap();
        assert_eq!(a.authenticate(&token).unwrap().name, "alice");
        let only_other = auth(&[OTHER_RSA_PUBLIC, EC_SPKI_PUBLIC], &[]);
        assert!(only_other
            .authenticate(&token)
            .unwrap_err()
            .contains("signature"));
    }

    #[test]
    fn issuer_and_audience_checked() {
        let token = mint(EC_SEC1_PRIVATE.as_bytes(), &user_req("alice", &[])).unwrap();
        let wrong_iss = Authenticator::from_pem(
            &[EC_SPKI_PUBLIC.as_bytes().to_vec()],
            "https://other",
            vec![],
        )
        .unwrap();
        assert!(wrong_iss
            .authenticate(&token)
            .unwrap_err()
            .contains("issuer"));
        let wrong_aud = auth(&[EC_SPKI_PUBLIC], &["kubernetes"]);
        assert!(wrong_aud
            .authenticate(&token)
            .unwrap_err()
            .contains("audience"));
        let any_of = auth(&[EC_SPKI_PUBLIC], &["kubernetes", "strata"]);
        assert!(any_of.authenticate(&token).is_ok());
        let unchecked = auth(&[EC_SPKI_PUBLIC], &[]);
        assert!(unchecked.authenticate(&token).is_ok());
        // aud as a plain string.
        let t = now();
        let single = sign_claims(
            EC_SEC1_PRIVATE,
            &json!({"iss": ISS, "sub": "u", "aud": "kubernetes", "exp": t + 60}),
        );
        assert!(wrong_aud.authenticate(&single).is_ok());
        assert!(any_of.authenticate(&single).is_ok());
        // No aud at all while audiences are configured; no iss.
        let no_aud = sign_claims(
            EC_SEC1_PRIVATE,
            &json!({"iss": ISS, "sub": "u", "exp": t + 60}),
        );
        assert!(any_of.authenticate(&no_aud).is_err());
        assert!(unchecked.authenticate(&no_aud).is_ok());
        let no_iss = sign_claims(EC_SEC1_PRIVATE, &json!({"sub": "u", "exp": t + 60}));
        assert!(unchecked.authenticate(&no_iss).unwrap_err().contains("iss"));
    }

    #[test]
    fn time_claims_checked() {
        let a = auth(&[EC_SPKI_PUBLIC], &[]);
        let t = now();
        let expired = sign_claims(
            EC_SEC1_PRIVATE,
            &json!({"iss": ISS, "sub": "u", "exp": t - 120}),
        );
        assert!(a.authenticate(&expired).unwrap_err().contains("expired"));
        let within_leeway = sign_claims(
            EC_SEC1_PRIVATE,
            &json!({"iss": ISS, "sub": "u", "exp": t - 30}),
        );
        assert!(a.authenticate(&within_leeway).is_ok());
        let future = sign_claims(
            EC_SEC1_PRIVATE,
            &json!({"iss": ISS, "sub": "u", "exp": t + 3600, "nbf": t + 600}),
        );
        assert!(a
            .authenticate(&future)
            .unwrap_err()
            .contains("not valid yet"));
        let no_exp = sign_claims(EC_SEC1_PRIVATE, &json!({"iss": ISS, "sub": "u"}));
        assert!(a.authenticate(&no_exp).unwrap_err().contains("exp"));
    }

    #[test]
    fn bad_tokens_rejected() {
        let a = auth(&[EC_SPKI_PUBLIC, RSA_SPKI_PUBLIC], &[]);
        let t = now();
        let claims =
            json!({"iss": ISS, "sub": "admin", "groups": ["system:masters"], "exp": t + 600});
        // alg none.
        let none = format!("eyJhbGciOiJub25lIn0.{}.", b64(&claims));
        assert!(a.authenticate(&none).is_err());
        let none_typ = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims)
        );
        assert!(a.authenticate(&none_typ).is_err());
        // HS256 with the public key text as the secret (the classic confusion attack) and
        // with an arbitrary secret.
        for secret in [EC_SPKI_PUBLIC.as_bytes(), b"secret".as_slice()] {
            let hs = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap();
            assert!(a.authenticate(&hs).unwrap_err().contains("unsupported"));
        }
        // Tampered payload and tampered signature.
        let good = mint(EC_SEC1_PRIVATE.as_bytes(), &user_req("alice", &[])).unwrap();
        assert!(a.authenticate(&good).is_ok());
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert!(a.authenticate(&forged).is_err());
        let mut sig: Vec<char> = parts[2].chars().collect();
        sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
        let sig: String = sig.into_iter().collect();
        let tampered = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert!(a.authenticate(&tampered).unwrap_err().contains("signature"));
        // An ES256 token relabelled RS256.
        let relabelled = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "RS256"})),
            parts[1],
            parts[2]
        );
        assert!(a.authenticate(&relabelled).is_err());
        // Garbage.
        for g in [
            "",
            "abc",
            "a.b.c",
            "....",
            "eyJhbGciOiJSUzI1NiJ9.e30.",
            "\u{1F600}",
        ] {
            assert!(a.authenticate(g).is_err(), "{g:?}");
        }
    }

    #[test]
    fn service_account_tokens() {
        let a = auth(&[RSA_SPKI_PUBLIC], &["strata"]);
        let req = TokenRequest {
            subject: Subject::ServiceAccount {
                namespace: "kube-system".into(),
                name: "builder".into(),
                uid: Some("1234-5678".into()),
            },
            issuer: ISS.into(),
            audiences: vec!["strata".into()],
            ttl: Duration::from_secs(3600),
        };
        let token = mint(RSA_PKCS8_PRIVATE.as_bytes(), &req).unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "system:serviceaccount:kube-system:builder");
        assert_eq!(
            claims["kubernetes.io"],
            json!({"namespace": "kube-system", "serviceaccount": {"name": "builder", "uid": "1234-5678"}})
        );
        assert_eq!(claims["aud"], json!(["strata"]));
        assert!(claims["jti"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            3600
        );
        let user = a.authenticate(&token).unwrap();
        assert_eq!(user.name, "system:serviceaccount:kube-system:builder");
        assert_eq!(user.uid, "1234-5678");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated"
            ]
        );
        assert!(user.extra[EXTRA_CREDENTIAL_ID][0].starts_with("JTI="));
    }

    #[test]
    fn claim_mapping_edge_cases() {
        let t = now();
        let map = |c: Value| user_from_claims(&c);
        // sub only, SA form.
        let u = map(json!({"sub": "system:serviceaccount:ns:sa", "exp": t})).unwrap();
        assert_eq!(u.groups[1], "system:serviceaccounts:ns");
        // kubernetes.io only, with a pod.
        let u = map(json!({"kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u1"},
            "pod": {"name": "p", "uid": "pu"}}}))
        .unwrap();
        assert_eq!(u.name, "system:serviceaccount:ns:sa");
        assert_eq!(u.extra[EXTRA_POD_NAME], vec!["p"]);
        assert_eq!(u.extra[EXTRA_POD_UID], vec!["pu"]);
        // Mismatch between sub and the kubernetes.io claim.
        assert!(map(json!({"sub": "system:serviceaccount:ns:other",
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa"}}}))
        .is_err());
        assert!(map(json!({"sub": "alice",
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa"}}}))
        .is_err());
        assert!(
            map(json!({"kubernetes.io": {"namespace": "", "serviceaccount": {"name": "sa"}}}))
                .is_err()
        );
        assert!(map(json!({"sub": "system:serviceaccount:ns"})).is_err());
        assert!(map(json!({"sub": "system:serviceaccount:ns:a:b"})).is_err());
        assert!(map(json!({"sub": ""})).is_err());
        assert!(map(json!({})).is_err());
        assert!(map(json!({"sub": 5})).is_err());
        assert!(map(json!({"sub": "u", "groups": "admins"})).is_err());
        assert!(map(json!({"sub": "u", "groups": [1]})).is_err());
        let u = map(json!({"sub": "u", "groups": ["a", "a", "system:authenticated"]})).unwrap();
        assert_eq!(u.groups, vec!["a", "system:authenticated"]);
    }

    #[test]
    fn mint_rejects_bad_requests() {
        let pem = EC_SEC1_PRIVATE.as_bytes();
        assert!(mint(pem, &user_req("", &[])).is_err());
        assert!(mint(pem, &user_req("system:serviceaccount:a:b", &[])).is_err());
        let mut r = user_req("a", &[]);
        r.ttl = Duration::from_millis(10);
        assert!(mint(pem, &r).is_err());
        let mut r = user_req("a", &[]);
        r.issuer.clear();
        assert!(mint(pem, &r).is_err());
        assert!(mint(RSA_SPKI_PUBLIC.as_bytes(), &user_req("a", &[])).is_err());
        assert!(mint(EC_P384_PRIVATE.as_bytes(), &user_req("a", &[])).is_err());
        // A SEC1 key without its public half still signs.
        let token = mint(EC_SEC1_NO_PUBLIC.as_bytes(), &user_req("a", &[])).unwrap();
        assert!(auth(&[EC_SPKI_PUBLIC], &[]).authenticate(&token).is_ok());
        let mut r = user_req("a", &[]);
        r.audiences.clear();
        let token = mint(pem, &r).unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
            .unwrap()
            .claims;
        assert!(claims.get("aud").is_none());
    }

    #[test]
    fn authenticator_construction_errors() {
        assert!(Authenticator::from_pem(&[], ISS, vec![]).is_err());
        assert!(
            Authenticator::from_pem(&[EC_SPKI_PUBLIC.as_bytes().to_vec()], "", vec![]).is_err()
        );
        assert!(Authenticator::from_pem(&[b"junk".to_vec()], ISS, vec![]).is_err());
        // A private key file works as a verification key.
        let a = auth(&[EC_SEC1_PRIVATE, RSA_PKCS1_PRIVATE, EC_CERTIFICATE], &[]);
        assert_eq!(a.keys.len(), 3);
        let token = mint(EC_CERT_PRIVATE.as_bytes(), &user_req("c", &[])).unwrap();
        assert!(a.authenticate(&token).is_ok());
    }
}
