//! A service connection's client certificate: the PEM Azure DevOps stores for `spnCertificate`
//! connections (certificate and private key in one text), its validity, its thumbprints, and
//! the RS256 client assertion signed with it.
//!
//! Nothing here formats key material: errors describe the PEM's shape, never its content.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use ring::signature::RsaKeyPair;

/// Entra ID accepts assertions that live at most ten minutes.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// Why the PEM cannot be used. The texts name the parameter's shape, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    NotPem,
    BadBlock { label: String },
    NoCertificate,
    NoPrivateKey,
    EncryptedKey,
    UnsupportedKey { reason: String },
    BadCertificate { detail: String },
    KeyMismatch,
    Signing,
}

impl std::fmt::Display for CertificateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateError::NotPem => f.write_str(
                "is not PEM: expected a `-----BEGIN CERTIFICATE-----` block and a `-----BEGIN PRIVATE KEY-----` block",
            ),
            CertificateError::BadBlock { label } => {
                write!(f, "has a `{label}` block whose content is not valid base64 (damaged when pasted?)")
            }
            CertificateError::NoCertificate => {
                f.write_str("holds a private key but no certificate; the connection needs both in one PEM")
            }
            CertificateError::NoPrivateKey => {
                f.write_str("holds a certificate but no private key; the connection needs both in one PEM")
            }
            CertificateError::EncryptedKey => f.write_str(
                "holds an encrypted private key; the connection needs it unencrypted (`openssl pkey -in key.pem -out plain.pem`)",
            ),
            CertificateError::UnsupportedKey { reason } => write!(
                f,
                "holds a private key that cannot sign an RS256 assertion ({reason}); Entra ID client certificates need an RSA key of 2048 bits or more"
            ),
            CertificateError::BadCertificate { detail } => {
                write!(f, "has a certificate block that is not a valid X.509 certificate ({detail})")
            }
            CertificateError::KeyMismatch => f.write_str("holds a private key that belongs to none of its certificates"),
            CertificateError::Signing => f.write_str("could not be used to sign the client assertion"),
        }
    }
}

/// The certificate that matches the private key, with what the identity check reports.
pub struct ClientCertificate {
    key: RsaKeyPair,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
    pub subject: String,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprint_hex())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Parses a PEM holding one private key and its certificate (a chain may follow).
    pub fn from_pem(text: &str) -> Result<ClientCertificate, CertificateError> {
        let blocks = pem_blocks(text)?;
        let mut certs = Vec::new();
        let mut key: Option<Result<RsaKeyPair, CertificateError>> = None;
        for (label, der) in blocks {
            let parsed = match label.as_str() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                    certs.push(der);
                    continue;
                }
                "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).map_err(|e| rejected(&e.to_string())),
                "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map_err(|e| rejected(&e.to_string())),
                "ENCRYPTED PRIVATE KEY" => Err(CertificateError::EncryptedKey),
                "EC PRIVATE KEY" => Err(rejected("WrongAlgorithm")),
                _ => continue,
            };
            // The first key block is the connection's key; later ones are ignored.
            key.get_or_insert(parsed);
        }
        let key = match (key, certs.is_empty()) {
            (None, true) => return Err(CertificateError::NotPem),
            (None, false) => return Err(CertificateError::NoPrivateKey),
            (Some(_), true) => return Err(CertificateError::NoCertificate),
            (Some(k), false) => k?,
        };
        let public = key.public().as_ref().to_vec();
        for der in &certs {
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| CertificateError::BadCertificate { detail: e.to_string() })?;
            if cert.public_key().subject_public_key.data.as_ref() != public.as_slice() {
                continue;
            }
            let validity = cert.validity();
            let time = |t: i64| {
                jiff::Timestamp::from_second(t)
                    .map_err(|_| CertificateError::BadCertificate { detail: "validity out of range".into() })
            };
            return Ok(ClientCertificate {
                sha1: ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref().to_vec(),
                sha256: ring::digest::digest(&ring::digest::SHA256, der).as_ref().to_vec(),
                subject: cert.subject().to_string(),
                not_before: time(validity.not_before.timestamp())?,
                not_after: time(validity.not_after.timestamp())?,
                key,
            });
        }
        Err(CertificateError::KeyMismatch)
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Azure portal shows it.
    pub fn thumbprint_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    pub fn sha1(&self) -> &[u8] {
        &self.sha1
    }

    pub fn sha256(&self) -> &[u8] {
        &self.sha256
    }

    /// A signed client assertion (RFC 7523) for `audience` (the token URL): RS256, with the
    /// certificate named by both its SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: jiff::Timestamp,
    ) -> Result<String, CertificateError> {
        let rng = ring::rand::SystemRandom::new();
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": URL_SAFE_NO_PAD.encode(&self.sha1),
            "x5t#S256": URL_SAFE_NO_PAD.encode(&self.sha256),
        });
        let issued = now.as_second();
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid_v4(&rng)?,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ASSERTION_LIFETIME_SECS,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&ring::signature::RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut signature)
            .map_err(|_| CertificateError::Signing)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn rejected(reason: &str) -> CertificateError {
    let reason = match reason {
        "WrongAlgorithm" => "not an RSA key".to_string(),
        "TooSmall" => "the key is smaller than 2048 bits".to_string(),
        "TooLarge" => "the key is larger than 8192 bits".to_string(),
        "InvalidEncoding" | "UnexpectedError" => "the key does not decode".to_string(),
        other => format!("rejected: {other}"),
    };
    CertificateError::UnsupportedKey { reason }
}

fn uuid_v4(rng: &ring::rand::SystemRandom) -> Result<String, CertificateError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b).map_err(|_| CertificateError::Signing)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_lower(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The PEM blocks of a text, as (label, DER). Tolerates what pasting into a web form does
/// to PEM: indentation, CRLF, lines joined by spaces, and literal `\n` sequences.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, CertificateError> {
    let text = text.replace("\\n", "\n").replace("\\r", "");
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else { break };
        let label = after[..label_end].trim().to_string();
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_and_rest.find(&end_marker) else {
            return Err(CertificateError::BadBlock { label });
        };
        let body = &body_and_rest[..body_end];
        rest = &body_and_rest[body_end + end_marker.len()..];
        // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) mark a legacy encrypted key.
        if body.contains("Proc-Type:") || body.contains("DEK-Info:") {
            if label.contains("PRIVATE KEY") {
                blocks.push(("ENCRYPTED PRIVATE KEY".to_string(), Vec::new()));
                continue;
            }
            return Err(CertificateError::BadBlock { label });
        }
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der =
            STANDARD.decode(compact.as_bytes()).map_err(|_| CertificateError::BadBlock { label: label.clone() })?;
        blocks.push((label, der));
    }
    Ok(blocks)
}

/// Test material made with the `openssl` command line (present on CI and developer machines).
#[cfg(test)]
pub(crate) mod testing {
    use std::process::Command;

    /// A fresh RSA key and self-signed certificate valid for `days` (negative: ended a day
    /// ago), as (key PEM, certificate PEM). `traditional` writes a PKCS#1 key.
    pub fn key_and_cert(days: i64, traditional: bool) -> (String, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let mut genrsa = Command::new("openssl");
        genrsa.args(["genrsa", "-out"]).arg(&key);
        if traditional {
            genrsa.arg("-traditional");
        }
        genrsa.arg("2048");
        run(&mut genrsa);
        let mut req = Command::new("openssl");
        req.args(["req", "-new", "-x509", "-subj", "/CN=azp-preflight-test", "-key"]).arg(&key).arg("-out").arg(&cert);
        req.args(["-days", &days.max(1).to_string()]);
        run(&mut req);
        if days < 0 {
            let mut x509 = Command::new("openssl");
            x509.args(["x509", "-in"]).arg(&cert).arg("-signkey").arg(&key).args(["-days", "-1"]);
            x509.arg("-out").arg(&cert);
            run(&mut x509);
        }
        let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("openssl wrote the file");
        (read(&key), read(&cert))
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("the openssl command line is installed");
        assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[cfg(test)]
mod tests {
    use super::testing::key_and_cert;
    use super::*;

    fn verify(assertion: &str, cert_pem: &str) -> (serde_json::Value, serde_json::Value) {
        let blocks = pem_blocks(cert_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&blocks[0].1).unwrap();
        let spki = cert.public_key().subject_public_key.data.to_vec();
        let parts: Vec<&str> = assertion.split('.').collect();
        assert_eq!(parts.len(), 3);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spki)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signature verifies with the certificate's public key");
        let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        (decode(parts[0]), decode(parts[1]))
    }

    #[test]
    fn signs_a_verifiable_assertion_with_both_thumbprints() {
        for traditional in [false, true] {
            let (key, cert) = key_and_cert(30, traditional);
            let pem = format!("{cert}{key}");
            let c = ClientCertificate::from_pem(&pem).unwrap();
            assert_eq!(c.subject, "CN=azp-preflight-test");
            let now = jiff::Timestamp::now();
            let days = (c.not_after.as_second() - now.as_second()) / 86_400;
            assert!((29..=30).contains(&days), "{days}");
            let aud = "https://login.example/t/oauth2/v2.0/token";
            let jwt = c.client_assertion("app-1", aud, now).unwrap();
            let (header, claims) = verify(&jwt, &cert);
            assert_eq!(header["alg"], "RS256");
            assert_eq!(URL_SAFE_NO_PAD.decode(header["x5t"].as_str().unwrap()).unwrap(), c.sha1());
            assert_eq!(URL_SAFE_NO_PAD.decode(header["x5t#S256"].as_str().unwrap()).unwrap(), c.sha256());
            assert_eq!(
                (claims["aud"].as_str(), claims["iss"].as_str(), claims["sub"].as_str()),
                (Some(aud), Some("app-1"), Some("app-1"))
            );
            assert_eq!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(), ASSERTION_LIFETIME_SECS);
            assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
            assert_eq!(c.thumbprint_hex().len(), 40);
            assert!(!format!("{c:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn pasted_pem_with_indentation_and_escaped_newlines_still_parses() {
        let (key, cert) = key_and_cert(5, false);
        let indented: String = format!("{key}{cert}").lines().map(|l| format!("   {l}\r\n")).collect();
        assert!(ClientCertificate::from_pem(&indented).is_ok());
        let escaped = format!("{cert}{key}").replace('\n', "\\n");
        assert!(ClientCertificate::from_pem(&escaped).is_ok());
    }

    #[test]
    fn unusable_pems_say_why_without_showing_content() {
        let (key, cert) = key_and_cert(5, false);
        let (other_key, _) = key_and_cert(5, false);
        let cases: Vec<(String, CertificateError)> = vec![
            ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".into(), CertificateError::NotPem),
            (cert.clone(), CertificateError::NoPrivateKey),
            (key.clone(), CertificateError::NoCertificate),
            (format!("{cert}{other_key}"), CertificateError::KeyMismatch),
            (
                format!("{cert}-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
                CertificateError::EncryptedKey,
            ),
            (
                format!("{cert}-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
                CertificateError::EncryptedKey,
            ),
            (format!("{key}-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n"), CertificateError::BadBlock { label: "CERTIFICATE".into() }),
        ];
        for (pem, expected) in cases {
            let err = ClientCertificate::from_pem(&pem).unwrap_err();
            assert_eq!(err, expected);
            assert!(!err.to_string().contains("MII"), "{err}");
        }
        let garbage_cert = format!("{key}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(matches!(ClientCertificate::from_pem(&garbage_cert), Err(CertificateError::BadCertificate { .. })));
    }

    #[test]
    fn expired_certificates_parse_and_report_their_end() {
        let (key, cert) = key_and_cert(-1, false);
        let c = ClientCertificate::from_pem(&format!("{key}\n{cert}")).unwrap();
        assert!(c.not_after < jiff::Timestamp::now());
    }
}
