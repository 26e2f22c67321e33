//! PEM and DER parsing for the keys that sign and verify bearer tokens.
//!
//! Only what is needed here is implemented: RSA keys (PKCS#1 and PKCS#8 private keys,
//! PKCS#1 and SubjectPublicKeyInfo public keys) and EC P-256 keys (SEC1 and PKCS#8 private
//! keys, SubjectPublicKeyInfo public keys), plus X.509 certificates whose public key is one
//! of those. A private key contributes its public key; for EC keys that public key is the one
//! the key file embeds (OpenSSL, Go, ring and rcgen always write it).

use base64::Engine as _;

/// rsaEncryption, 1.2.840.113549.1.1.1
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 (P-256), 1.2.840.10045.3.1.7
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;
const TAG_CONTEXT_1: u8 = 0xa1;

/// A public key that can verify tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PublicKey {
    /// RSA modulus and public exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An encoded P-256 point (SEC1, normally uncompressed: 0x04 || x || y).
    EcP256 { point: Vec<u8> },
}

/// A private key that can sign tokens, in the DER form jsonwebtoken's signers take.
#[derive(Clone, Debug)]
pub(super) enum PrivateKey {
    /// PKCS#1 RSAPrivateKey DER.
    Rsa {
        pkcs1_der: Vec<u8>,
        public: PublicKey,
    },
    /// PKCS#8 PrivateKeyInfo DER wrapping a SEC1 ECPrivateKey on P-256.
    EcP256 {
        pkcs8_der: Vec<u8>,
        public: Option<PublicKey>,
    },
}

impl PrivateKey {
    /// The public half, if known (an EC key file may omit it).
    pub(super) fn public_key(&self) -> Option<&PublicKey> {
        match self {
            PrivateKey::Rsa { public, .. } => Some(public),
            PrivateKey::EcP256 { public, .. } => public.as_ref(),
        }
    }
}

/// What a PEM block held.
#[derive(Clone, Debug)]
pub(super) enum Key {
    Public(PublicKey),
    Private(PrivateKey),
}

/// One `-----BEGIN LABEL-----` block, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PemBlock {
    pub(super) label: String,
    pub(super) der: Vec<u8>,
}

/// Splits PEM text into its blocks. Text outside blocks is ignored (as Go's pem.Decode does);
/// a block that is not terminated, has headers (encrypted keys) or bad base64 is an error.
pub(super) fn parse_pem(data: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "PEM data is not valid UTF-8".to_string())?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            return Err("malformed PEM BEGIN line".to_string());
        };
        let label = &after[..label_end];
        if label.contains('\n') {
            return Err("malformed PEM BEGIN line".to_string());
        }
        let body_and_rest = &after[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_and_rest.find(&end_marker) else {
            return Err(format!("PEM block {label:?} has no END line"));
        };
        let body = &body_and_rest[..body_end];
        if body.contains(':') {
            return Err(format!(
                "PEM block {label:?} has headers (encrypted keys are not supported)"
            ));
        }
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("PEM block {label:?} has invalid base64: {e}"))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

/// Interprets one PEM block. `Ok(None)`: not a key this module handles (another kind of
/// block, or a certificate whose key is of another type), to be skipped as Kubernetes does.
/// A private or public key block whose key is not RSA or EC P-256 is an error.
pub(super) fn parse_key_block(block: &PemBlock) -> Result<Option<Key>, String> {
    let der = block.der.as_slice();
    let what = |e: String| format!("{}: {e}", block.label);
    match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            let (pkcs1_der, public) = rsa_private_pkcs1(der).map_err(what)?;
            Ok(Some(Key::Private(PrivateKey::Rsa { pkcs1_der, public })))
        }
        "EC PRIVATE KEY" => {
            let (pkcs8_der, public) = ec_private_sec1(der, None).map_err(what)?;
            Ok(Some(Key::Private(PrivateKey::EcP256 { pkcs8_der, public })))
        }
        "PRIVATE KEY" => private_pkcs8(der)
            .map(|k| Some(Key::Private(k)))
            .map_err(what),
        "RSA PUBLIC KEY" => {
            let public = rsa_public_pkcs1(der).map_err(what)?;
            Ok(Some(Key::Public(public)))
        }
        "PUBLIC KEY" => match spki(der).map_err(what)? {
            Some(public) => Ok(Some(Key::Public(public))),
            None => Err(what(
                "unsupported key algorithm (want RSA or EC P-256)".to_string(),
            )),
        },
        "CERTIFICATE" => Ok(certificate_public_key(der).map_err(what)?.map(Key::Public)),
        "ENCRYPTED PRIVATE KEY" => Err("encrypted private keys are not supported".to_string()),
        _ => Ok(None),
    }
}

/// All public keys in PEM data (private keys contribute their public half).
pub(super) fn public_keys_from_pem(data: &[u8]) -> Result<Vec<PublicKey>, String> {
    let mut out = Vec::new();
    for block in parse_pem(data)? {
        match parse_key_block(&block)? {
            Some(Key::Public(k)) => out.push(k),
            Some(Key::Private(k)) => match k.public_key() {
                Some(p) => out.push(p.clone()),
                None => {
                    return Err("EC private key without its public key is not supported".to_string())
                }
            },
            None => {}
        }
    }
    if out.is_empty() {
        return Err("data does not contain any valid RSA or ECDSA (P-256) keys".to_string());
    }
    Ok(out)
}

/// The first private key in PEM data.
pub(super) fn first_private_key(data: &[u8]) -> Result<PrivateKey, String> {
    for block in parse_pem(data)? {
        if let Some(Key::Private(k)) = parse_key_block(&block)? {
            return Ok(k);
        }
    }
    Err("data does not contain an RSA or EC P-256 private key".to_string())
}

// ---------------------------------------------------------------------------------------------
// Key structures

/// RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv, ... }
fn rsa_private_pkcs1(der: &[u8]) -> Result<(Vec<u8>, PublicKey), String> {
    let mut seq = Der::new(der).single(TAG_SEQUENCE)?;
    seq.read(TAG_INTEGER)?; // version
    let n = seq.read(TAG_INTEGER)?;
    let e = seq.read(TAG_INTEGER)?;
    seq.read(TAG_INTEGER)?; // d: a public-only structure would stop here
    Ok((der.to_vec(), rsa_public(n, e)?))
}

/// RSAPublicKey ::= SEQUENCE { n, e }
fn rsa_public_pkcs1(der: &[u8]) -> Result<PublicKey, String> {
    let mut seq = Der::new(der).single(TAG_SEQUENCE)?;
    let n = seq.read(TAG_INTEGER)?;
    let e = seq.read(TAG_INTEGER)?;
    rsa_public(n, e)
}

fn rsa_public(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    if n.len() < 256 {
        return Err("RSA keys must be at least 2048 bits".to_string());
    }
    if e.is_empty() {
        return Err("invalid RSA public exponent".to_string());
    }
    Ok(PublicKey::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
    })
}

fn strip_leading_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

/// ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
///   parameters [0] ECParameters OPTIONAL, publicKey [1] BIT STRING OPTIONAL }
/// `outer_curve`: the curve OID from an enclosing PKCS#8 structure.
/// Returns the key wrapped as PKCS#8, and its public key if embedded.
fn ec_private_sec1(
    der: &[u8],
    outer_curve: Option<&[u8]>,
) -> Result<(Vec<u8>, Option<PublicKey>), String> {
    let mut seq = Der::new(der).single(TAG_SEQUENCE)?;
    let version = seq.read(TAG_INTEGER)?;
    if version != [1] {
        return Err("unsupported EC private key version".to_string());
    }
    let scalar = seq.read(TAG_OCTET_STRING)?;
    if scalar.len() != 32 {
        return Err("not a P-256 private key".to_string());
    }
    let mut curve = outer_curve.map(<[u8]>::to_vec);
    let mut public = None;
    while !seq.is_empty() {
        let (tag, content) = seq.any()?;
        match tag {
            TAG_CONTEXT_0 => {
                let oid = Der::new(content).single(TAG_OID)?;
                curve = Some(oid.rest().to_vec());
            }
            TAG_CONTEXT_1 => {
                let bits = Der::new(content).single(TAG_BIT_STRING)?;
                public = Some(ec_point(bit_string_bytes(bits.rest())?)?);
            }
            _ => {}
        }
    }
    match curve.as_deref() {
        Some(OID_P256) => {}
        Some(_) => return Err("unsupported EC curve (only P-256 is supported)".to_string()),
        None => return Err("EC private key does not name its curve".to_string()),
    }
    Ok((pkcs8_wrap_ec(der), public))
}

/// PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING, ... }
fn private_pkcs8(der: &[u8]) -> Result<PrivateKey, String> {
    let mut seq = Der::new(der).single(TAG_SEQUENCE)?;
    seq.read(TAG_INTEGER)?;
    let (alg, params) = algorithm_identifier(seq.read(TAG_SEQUENCE)?)?;
    let inner = seq.read(TAG_OCTET_STRING)?;
    if alg == OID_RSA_ENCRYPTION {
        let (pkcs1_der, public) = rsa_private_pkcs1(inner)?;
        Ok(PrivateKey::Rsa { pkcs1_der, public })
    } else if alg == OID_EC_PUBLIC_KEY {
        let curve = params.ok_or_else(|| "EC key without a named curve".to_string())?;
        if curve != OID_P256 {
            return Err("unsupported EC curve (only P-256 is supported)".to_string());
        }
        let (_, public) = ec_private_sec1(inner, Some(curve))?;
        // Keep the original PKCS#8 (it is what the signer takes).
        Ok(PrivateKey::EcP256 {
            pkcs8_der: der.to_vec(),
            public,
        })
    } else {
        Err("unsupported private key algorithm (want RSA or EC P-256)".to_string())
    }
}

/// SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, subjectPublicKey BIT STRING }.
/// `Ok(None)` for a well-formed key of another algorithm.
fn spki(der: &[u8]) -> Result<Option<PublicKey>, String> {
    let mut seq = Der::new(der).single(TAG_SEQUENCE)?;
    let (alg, params) = algorithm_identifier(seq.read(TAG_SEQUENCE)?)?;
    let key = bit_string_bytes(seq.read(TAG_BIT_STRING)?)?;
    if alg == OID_RSA_ENCRYPTION {
        rsa_public_pkcs1(key).map(Some)
    } else if alg == OID_EC_PUBLIC_KEY && params == Some(OID_P256) {
        ec_point(key).map(Some)
    } else {
        Ok(None)
    }
}

/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial, signature,
///   issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
fn certificate_public_key(der: &[u8]) -> Result<Option<PublicKey>, String> {
    let mut cert = Der::new(der).single(TAG_SEQUENCE)?;
    let mut tbs = Der::new(cert.read(TAG_SEQUENCE)?);
    if tbs.peek_tag() == Some(TAG_CONTEXT_0) {
        tbs.any()?;
    }
    tbs.read(TAG_INTEGER)?; // serialNumber
    tbs.read(TAG_SEQUENCE)?; // signature
    tbs.read(TAG_SEQUENCE)?; // issuer
    tbs.read(TAG_SEQUENCE)?; // validity
    tbs.read(TAG_SEQUENCE)?; // subject
    let start = tbs.position();
    tbs.read(TAG_SEQUENCE)?; // subjectPublicKeyInfo
    spki(&tbs.data[start..tbs.position()])
}

/// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
/// Returns the algorithm OID and, if the parameters are an OID (a named curve), that OID.
fn algorithm_identifier(content: &[u8]) -> Result<(&[u8], Option<&[u8]>), String> {
    let mut seq = Der::new(content);
    let alg = seq.read(TAG_OID)?;
    // RSA has NULL parameters; EC keys name their curve.
    let params = if seq.peek_tag() == Some(TAG_OID) {
        Some(seq.read(TAG_OID)?)
    } else {
        None
    };
    Ok((alg, params))
}

fn bit_string_bytes(content: &[u8]) -> Result<&[u8], String> {
    match content {
        [0, rest @ ..] => Ok(rest),
        _ => Err("unsupported BIT STRING padding".to_string()),
    }
}

fn ec_point(point: &[u8]) -> Result<PublicKey, String> {
    let ok = matches!(
        (point.first(), point.len()),
        (Some(4), 65) | (Some(2 | 3), 33)
    );
    if !ok {
        return Err("not a P-256 public key".to_string());
    }
    Ok(PublicKey::EcP256 {
        point: point.to_vec(),
    })
}

/// Wraps a SEC1 ECPrivateKey (P-256) into a PKCS#8 PrivateKeyInfo.
fn pkcs8_wrap_ec(sec1: &[u8]) -> Vec<u8> {
    let mut alg = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
    alg.extend(tlv(TAG_OID, OID_P256));
    let mut body = tlv(TAG_INTEGER, &[0]);
    body.extend(tlv(TAG_SEQUENCE, &alg));
    body.extend(tlv(TAG_OCTET_STRING, sec1));
    tlv(TAG_SEQUENCE, &body)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let significant = &bytes[first..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

// ---------------------------------------------------------------------------------------------
// A minimal DER reader (definite lengths, single-byte tags).

struct Der<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Der<'a> {
    fn new(data: &'a [u8]) -> Self {
        Der { data, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads any element: its tag and content.
    fn any(&mut self) -> Result<(u8, &'a [u8]), String> {
        let malformed = || "malformed DER".to_string();
        let tag = *self.data.get(self.pos).ok_or_else(malformed)?;
        if tag & 0x1f == 0x1f {
            return Err("unsupported DER tag".to_string());
        }
        let first = *self.data.get(self.pos + 1).ok_or_else(malformed)?;
        let mut header = 2;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(malformed());
            }
            let bytes = self
                .data
                .get(self.pos + 2..self.pos + 2 + n)
                .ok_or_else(malformed)?;
            header += n;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let start = self.pos + header;
        let end = start.checked_add(len).ok_or_else(malformed)?;
        let content = self.data.get(start..end).ok_or_else(malformed)?;
        self.pos = end;
        Ok((tag, content))
    }

    /// Reads an element that must have `tag`.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let (got, content) = self.any()?;
        if got != tag {
            return Err(format!(
                "malformed key structure (expected DER tag {tag:#04x}, found {got:#04x})"
            ));
        }
        Ok(content)
    }

    /// The whole input must be exactly one element with `tag`; returns a reader over its content.
    fn single(mut self, tag: u8) -> Result<Der<'a>, String> {
        let content = self.read(tag)?;
        if !self.is_empty() {
            return Err("trailing data after DER structure".to_string());
        }
        Ok(Der::new(content))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    fn one_key(pem: &str) -> Key {
        let blocks = parse_pem(pem.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        parse_key_block(&blocks[0]).unwrap().unwrap()
    }

    #[test]
    fn rsa_forms_agree() {
        let Key::Private(p1) = one_key(RSA_PKCS1_PRIVATE) else {
            panic!("not private")
        };
        let Key::Private(p8) = one_key(RSA_PKCS8_PRIVATE) else {
            panic!("not private")
        };
        let Key::Public(spki) = one_key(RSA_SPKI_PUBLIC) else {
            panic!("not public")
        };
        let Key::Public(pkcs1) = one_key(RSA_PKCS1_PUBLIC) else {
            panic!("not public")
        };
        assert_eq!(p1.public_key(), Some(&spki));
        assert_eq!(p8.public_key(), Some(&spki));
        assert_eq!(pkcs1, spki);
        match (&p1, &p8) {
            (PrivateKey::Rsa { pkcs1_der: a, .. }, PrivateKey::Rsa { pkcs1_der: b, .. }) => {
                assert_eq!(a, b)
            }
            _ => panic!("not RSA"),
        }
    }

    #[test]
    fn ec_forms_agree() {
        let Key::Private(sec1) = one_key(EC_SEC1_PRIVATE) else {
            panic!("not private")
        };
        let Key::Public(spki) = one_key(EC_SPKI_PUBLIC) else {
            panic!("not public")
        };
        assert_eq!(sec1.public_key(), Some(&spki));
        let Key::Public(cert) = one_key(EC_CERTIFICATE) else {
            panic!("not public")
        };
        let Key::Private(cert_key) = one_key(EC_CERT_PRIVATE) else {
            panic!("not private")
        };
        assert_eq!(cert_key.public_key(), Some(&cert));
        // The PKCS#8 wrapping of a SEC1 key parses back to the same key.
        let PrivateKey::EcP256 { pkcs8_der, .. } = &sec1 else {
            panic!("not EC")
        };
        let again = private_pkcs8(pkcs8_der).unwrap();
        assert_eq!(again.public_key(), Some(&spki));
    }

    #[test]
    fn rcgen_key_parses() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        let key = first_private_key(pem.as_bytes()).unwrap();
        assert!(matches!(
            key,
            PrivateKey::EcP256 {
                public: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn unsupported_and_malformed() {
        assert!(public_keys_from_pem(EC_P384_PRIVATE.as_bytes())
            .unwrap_err()
            .contains("P-256"));
        assert!(public_keys_from_pem(EC_SEC1_NO_PUBLIC.as_bytes())
            .unwrap_err()
            .contains("without its public key"));
        // Signing with it still works: the public key is not needed for that.
        assert!(first_private_key(EC_SEC1_NO_PUBLIC.as_bytes()).is_ok());
        assert!(public_keys_from_pem(b"hello").is_err());
        assert!(public_keys_from_pem(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
        assert!(public_keys_from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
        // Other blocks are skipped, keys after them are found.
        let mixed = format!(
            "-----BEGIN SOMETHING-----\nAAAA\n-----END SOMETHING-----\n{RSA_SPKI_PUBLIC}{EC_SPKI_PUBLIC}"
        );
        assert_eq!(public_keys_from_pem(mixed.as_bytes()).unwrap().len(), 2);
        assert!(first_private_key(RSA_SPKI_PUBLIC.as_bytes()).is_err());
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv(4, &[1, 2]), vec![4, 2, 1, 2]);
        let long = vec![7u8; 300];
        let enc = tlv(4, &long);
        assert_eq!(&enc[..4], &[4, 0x82, 0x01, 0x2c]);
        let mut d = Der::new(&enc);
        assert_eq!(d.read(4).unwrap(), long.as_slice());
        assert!(d.is_empty());
    }
}
