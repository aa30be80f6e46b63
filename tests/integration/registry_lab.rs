//! A real OCI registry for the tests: Debian's `docker-registry` (CNCF distribution 2.8)
//! started on 127.0.0.1 with generated configurations — htpasswd (bcrypt), token auth with an
//! in-repo ES256 token issuer (`x5c` header), TLS with a test CA, read-only maintenance mode —
//! and images pushed over the registry API by the tests themselves.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::fake_acr::{Httpd, Reply, Req};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SERVICE: &str = "lab-registry";
pub const ISSUER: &str = "lab-issuer";

/// Fails the test, loudly, when the registry binary is missing: these tests must not pass
/// by skipping.
pub fn registry_binary() -> PathBuf {
    let path = std::env::var_os("AZP_PREFLIGHT_TEST_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(REGISTRY_BIN));
    assert!(
        path.is_file(),
        "the registry tests need Debian's docker-registry (CNCF distribution 2.8) at {}: install it with `apt-get install -y docker-registry`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Htpasswd,
    ReadOnly,
    Token,
    Tls,
    /// TLS for the registry, token auth with the issuer on plain http at 127.0.0.1: a
    /// registry that sends clients to a local, unencrypted token endpoint.
    TlsToken,
}

pub struct Lab {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    pub issuer: Option<Issuer>,
    /// PEM of the CA that signed the TLS certificate.
    pub ca_pem: Option<String>,
    pub mode: Mode,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// htpasswd users of the Basic labs.
pub const ALICE: (&str, &str) = ("alice", "alice-lab-pass-canary");

impl Lab {
    pub fn start(mode: Mode) -> Lab {
        let binary = registry_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let port = free_port();
        let mut storage =
            format!("  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n", d.join("data").display());
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: lab-http-secret\n");
        let mut auth = String::new();
        let mut issuer = None;
        let mut ca_pem = None;
        match mode {
            Mode::Htpasswd | Mode::ReadOnly => {
                write_htpasswd(&d.join("htpasswd"), &[ALICE]);
                auth =
                    format!("auth:\n  htpasswd:\n    realm: lab-realm\n    path: {}\n", d.join("htpasswd").display());
                if mode == Mode::ReadOnly {
                    storage.push_str("  maintenance:\n    readonly:\n      enabled: true\n");
                }
            }
            Mode::Token | Mode::TlsToken => {
                let i = Issuer::start(&d.join("issuer.crt"));
                auth = format!(
                    "auth:\n  token:\n    realm: {}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    i.httpd.base(),
                    d.join("issuer.crt").display()
                );
                issuer = Some(i);
            }
            Mode::Tls => {}
        }
        if matches!(mode, Mode::Tls | Mode::TlsToken) {
            let (ca, cert, key) = tls_material();
            std::fs::write(d.join("tls.crt"), cert).expect("write cert");
            std::fs::write(d.join("tls.key"), key).expect("write key");
            http.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("tls.crt").display(),
                d.join("tls.key").display()
            ));
            ca_pem = Some(ca);
        }
        let config = format!("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n{storage}http:\n{http}{auth}");
        let config_path = d.join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(d.join("registry.log")).expect("log file");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config_path)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut lab = Lab { port, dir, child, issuer, ca_pem, mode };
        lab.wait_ready();
        lab
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{} within 15 s:\n{}", self.port, self.log());
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(self.dir.path().join("registry.log")).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// `http://127.0.0.1:<port>` (or `https://localhost:<port>` for the TLS lab).
    pub fn server(&self) -> String {
        match self.mode {
            Mode::Tls | Mode::TlsToken => format!("localhost:{}", self.port),
            _ => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Tokens the lab's issuer handed out (empty for the other modes).
    pub fn tokens(&self) -> Arc<Mutex<Vec<String>>> {
        self.issuer.as_ref().map(|i| i.issued.clone()).unwrap_or_default()
    }

    pub fn write_ca(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, self.ca_pem.as_deref().unwrap_or("")).expect("write ca");
        path
    }

    /// The Authorization header value for pushing to `repo`.
    fn push_auth(&self, repo: &str) -> String {
        match &self.issuer {
            Some(i) => format!("Bearer {}", i.mint("lab-pusher", &[(repo, &["pull", "push"])])),
            None => format!("Basic {}", STANDARD.encode(format!("{}:{}", ALICE.0, ALICE.1))),
        }
    }

    /// Pushes a single-platform image (`os/arch`) under `tag`; returns its manifest digest.
    pub fn push_single(&self, repo: &str, tag: &str, os: &str, arch: &str) -> String {
        let auth = self.push_auth(repo);
        block_on(async {
            let (body, _) = self.image_manifest(repo, &auth, os, arch, None).await;
            self.put_manifest(repo, tag, MEDIA_MANIFEST, &body, &auth).await
        })
    }

    /// Pushes a multi-platform OCI index (linux/amd64, linux/arm64/v8 and a buildx-style
    /// attestation manifest) under `tag`.
    pub fn push_index(&self, repo: &str, tag: &str) -> String {
        let auth = self.push_auth(repo);
        block_on(async {
            let (amd, amd_digest) = self.image_manifest(repo, &auth, "linux", "amd64", None).await;
            let amd_digest_pushed = self.put_manifest(repo, &amd_digest, MEDIA_MANIFEST, &amd, &auth).await;
            let (arm, arm_digest) = self.image_manifest(repo, &auth, "linux", "arm64", Some("v8")).await;
            self.put_manifest(repo, &arm_digest, MEDIA_MANIFEST, &arm, &auth).await;
            let statement = self.put_blob(repo, br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#, &auth).await;
            let att_config = self.put_blob(repo, b"{}", &auth).await;
            let att = json!({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": att_config.0, "size": att_config.1},
                "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement.0, "size": statement.1}]})
            .to_string();
            let att_digest = sha256(att.as_bytes());
            self.put_manifest(repo, &att_digest, MEDIA_MANIFEST, &att, &auth).await;
            let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
                {"mediaType": MEDIA_MANIFEST, "digest": amd_digest_pushed, "size": amd.len(), "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": MEDIA_MANIFEST, "digest": arm_digest, "size": arm.len(), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": MEDIA_MANIFEST, "digest": att_digest, "size": att.len(), "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd_digest}}
            ]})
            .to_string();
            self.put_manifest(repo, tag, MEDIA_INDEX, &index, &auth).await
        })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn image_manifest(
        &self,
        repo: &str,
        auth: &str,
        os: &str,
        arch: &str,
        variant: Option<&str>,
    ) -> (String, String) {
        let mut config =
            json!({"architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": []}, "config": {}});
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config = self.put_blob(repo, config.to_string().as_bytes(), auth).await;
        let layer = self.put_blob(repo, format!("layer for {os}/{arch}").as_bytes(), auth).await;
        let manifest = json!({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.0, "size": layer.1}]})
        .to_string();
        let digest = sha256(manifest.as_bytes());
        (manifest, digest)
    }

    async fn put_blob(&self, repo: &str, data: &[u8], auth: &str) -> (String, usize) {
        let client = reqwest::Client::new();
        let digest = sha256(data);
        let resp = client
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.base()))
            .header("authorization", auth)
            .send()
            .await
            .expect("start upload");
        assert_eq!(resp.status().as_u16(), 202, "start upload: {:?}", resp.text().await);
        let location =
            resp.headers().get("location").and_then(|l| l.to_str().ok()).expect("upload location").to_string();
        let mut url = reqwest::Url::parse(&self.base()).and_then(|b| b.join(&location)).expect("upload url");
        url.query_pairs_mut().append_pair("digest", &digest);
        let resp = client
            .put(url)
            .header("authorization", auth)
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("finish upload");
        assert_eq!(resp.status().as_u16(), 201, "finish upload: {:?}", resp.text().await);
        (digest, data.len())
    }

    async fn put_manifest(&self, repo: &str, reference: &str, media: &str, body: &str, auth: &str) -> String {
        let resp = reqwest::Client::new()
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base()))
            .header("authorization", auth)
            .header("content-type", media)
            .body(body.to_string())
            .send()
            .await
            .expect("put manifest");
        let status = resp.status().as_u16();
        let digest =
            resp.headers().get("docker-content-digest").and_then(|d| d.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(status, 201, "put manifest {repo}:{reference}: {:?}", resp.text().await);
        digest
    }

    /// Repositories in the catalog (to prove probes created none).
    pub fn catalog(&self) -> Vec<String> {
        let auth = match &self.issuer {
            Some(i) => format!("Bearer {}", i.mint_catalog()),
            None => format!("Basic {}", STANDARD.encode(format!("{}:{}", ALICE.0, ALICE.1))),
        };
        block_on(async {
            let resp = reqwest::Client::new()
                .get(format!("{}/v2/_catalog", self.base()))
                .header("authorization", auth)
                .send()
                .await
                .expect("catalog");
            let v: Value = resp.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
            v["repositories"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        })
    }
}

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn sha256(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    format!("sha256:{}", d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// bcrypt entries from `htpasswd -B` (apache2-utils); distribution honours only bcrypt.
fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    let mut lines = String::new();
    for (user, pass) in users {
        let out = Command::new("htpasswd")
            .args(["-nbB", "-C", "5", user, pass])
            .output()
            .unwrap_or_else(|e| panic!("the registry tests need `htpasswd` (Debian package apache2-utils): {e}"));
        assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        lines.push_str(String::from_utf8_lossy(&out.stdout).trim());
        lines.push('\n');
    }
    std::fs::write(path, lines).expect("write htpasswd");
}

/// A CA, and a server certificate it signed for `localhost` and 127.0.0.1: (ca, cert, key) PEM.
pub fn tls_material() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "azp-preflight test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca cert");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("server params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Token issuer for distribution's token auth: checks Basic credentials and signs ES256
/// JWTs with an `x5c` header, granting the intersection of what is asked and allowed.
pub struct Issuer {
    pub httpd: Httpd,
    /// Every token handed to a client, for canary checks.
    pub issued: Arc<Mutex<Vec<String>>>,
    key: Arc<ring::signature::EcdsaKeyPair>,
    cert_der: Vec<u8>,
}

/// Token users: name → (password, actions on every repository).
pub fn token_users() -> BTreeMap<&'static str, (&'static str, &'static [&'static str])> {
    BTreeMap::from([
        ("alice", ("alice-token-pass-canary", &["pull", "push"][..])),
        ("bob", ("bob-token-pass-canary", &["pull"][..])),
    ])
}

impl Issuer {
    fn start(cert_path: &Path) -> Issuer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("issuer key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("issuer params");
        params.distinguished_name.push(rcgen::DnType::CommonName, ISSUER);
        let cert = params.self_signed(&key).expect("issuer cert");
        std::fs::write(cert_path, cert.pem()).expect("write issuer cert");
        let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .expect("signing key");
        let key = Arc::new(signing);
        let cert_der = cert.der().to_vec();
        let (k, c) = (key.clone(), cert_der.clone());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let log = issued.clone();
        let handler = Arc::new(move |req: &Req| issue(&k, &c, req, &log));
        Issuer { httpd: Httpd::start(handler, Duration::ZERO), issued, key, cert_der }
    }

    pub fn mint(&self, subject: &str, access: &[(&str, &[&str])]) -> String {
        let access: Vec<Value> = access
            .iter()
            .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        sign(&self.key, &self.cert_der, subject, Value::Array(access))
    }

    fn mint_catalog(&self) -> String {
        sign(&self.key, &self.cert_der, "lab", json!([{"type": "registry", "name": "catalog", "actions": ["*"]}]))
    }
}

fn sign(key: &ring::signature::EcdsaKeyPair, cert_der: &[u8], subject: &str, access: Value) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(cert_der)]});
    let claims = json!({"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("jti-{now}-{subject}"), "access": access});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = key.sign(&ring::rand::SystemRandom::new(), input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn issue(key: &ring::signature::EcdsaKeyPair, cert_der: &[u8], req: &Req, log: &Mutex<Vec<String>>) -> Reply {
    if req.path != "/token" {
        return Reply::json(404, json!({"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}));
    }
    let users = token_users();
    let (subject, rights): (String, &[&str]) = match req.basic() {
        Some((u, p)) => match users.get(u.as_str()) {
            Some((pw, rights)) if *pw == p => (u, rights),
            _ => {
                return Reply::json(
                    401,
                    json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]}),
                )
            }
        },
        None => ("anonymous".into(), &[]),
    };
    let mut access = Vec::new();
    for scope in req.query_all("scope") {
        let parts: Vec<&str> = scope.split(':').collect();
        if parts.len() == 3 && parts[0] == "repository" {
            let granted: Vec<&str> = parts[2].split(',').filter(|a| rights.contains(a)).collect();
            access.push(json!({"type": "repository", "name": parts[1], "actions": granted}));
        }
    }
    let token = sign(key, cert_der, &subject, Value::Array(access));
    if let Ok(mut l) = log.lock() {
        l.push(token.clone());
    }
    Reply::json(200, json!({"token": token, "access_token": token, "expires_in": 300}))
}
