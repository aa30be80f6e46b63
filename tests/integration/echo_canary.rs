//! Servers that quote back what they were sent: whole, sliced by an excerpt's cut,
//! form-encoded, JSON-escaped, base64, or as the `user:password` of a Basic header. No part
//! of any secret (no prefix of 4 characters or more, no encoded form) may reach any output,
//! in any format, outside the `##vso[task.setsecret]` lines that hand secrets to the agent.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;

use crate::common::preflight;
use crate::fake_acr::{Httpd, Reply, Req};

const USER: &str = "robot-echo";
/// Characters that JSON escaping and form encoding both change.
const PASSWORD: &str = "Xq9#pw\"canary\\pass+/=&word";
const IDENTITY_TOKEN: &str = "Vt4&refresh+token/canary=value~x";

fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// `text` padded with dots to `chars` characters, so what follows starts there.
fn pad_to(text: &str, chars: usize) -> String {
    format!("{text:.<chars$}")
}

/// A registry whose token endpoint quotes every refused request back: the Basic header and
/// the password in each encoding inside the error envelope (the raw password starting just
/// before the 240-character cut of its message), and a refused refresh-token form as a plain
/// body (the token starting just before the 200-character cut).
fn echoing_registry() -> Httpd {
    let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let me = addr.clone();
    let handler = Arc::new(move |req: &Req| {
        let here = me.get().cloned().unwrap_or_default();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v2/") => Reply::json(
                401,
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": null}]}),
            )
            .with_header("WWW-Authenticate", &format!("Bearer realm=\"http://{here}/token\",service=\"{here}\"")),
            ("GET", "/token") => {
                let (user, password) = req.basic().unwrap_or_default();
                let said = format!(
                    "invalid login; header {} json {} form {} b64 {} ",
                    req.header("authorization").unwrap_or_default(),
                    json_escaped(&password),
                    form_encoded(&password),
                    STANDARD.encode(&password),
                );
                let message = format!("{}{password} for {user}", pad_to(&said, 232));
                Reply::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": message, "detail": null}]}))
            }
            ("POST", "/token") => {
                let body = String::from_utf8_lossy(&req.body).to_string();
                let token = req.form_value("refresh_token").unwrap_or_default();
                let said = pad_to(&format!("refused form {body} "), 195);
                Reply::text(400, "text/plain", &format!("{said}{token} was not issued here"))
            }
            _ => Reply::json(404, json!({"errors": [{"code": "NOT_FOUND", "message": "no route"}]})),
        }
    });
    let httpd = Httpd::start(handler, Duration::ZERO);
    let _ = addr.set(httpd.addr.to_string());
    httpd
}

/// The secret and every form it must not appear in; for the secret itself, each prefix of
/// 4 characters or more.
fn forbidden(secret: &str, user: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = (4..=secret.len()).map(|n| secret[..n].to_string()).collect();
    out.extend([
        form_encoded(secret),
        json_escaped(secret),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ]);
    if let Some(user) = user {
        out.push(STANDARD_NO_PAD.encode(format!("{user}:{secret}")));
    }
    out
}

struct Outputs {
    /// (where, text) of every output of the run.
    texts: Vec<(String, String)>,
}

fn run(dir: &Path, format: &str, env: &[(&str, &str)], registry: &str) -> Outputs {
    let report = dir.join(format!("report-{format}.json"));
    let mut cmd = preflight(dir);
    cmd.envs(env.iter().copied()).timeout(Duration::from_secs(60));
    if format == "azure-pipelines" {
        cmd.env("TF_BUILD", "True")
            .env("AGENT_TEMPDIRECTORY", dir)
            .env("BUILD_SOURCESDIRECTORY", dir)
            .env("SYSTEM_COLLECTIONURI", "https://dev.azure.com/fabrikam/")
            .env("SYSTEM_TEAMPROJECT", "Shop")
            .env("INPUT_CHECKS", "registry")
            .env("INPUT_REGISTRIES", registry);
    } else {
        cmd.args(["--checks", "registry", "--registry", registry, "--format", format, "--report"]).arg(&report);
    }
    let out = cmd.output().expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let kept: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("##vso[task.setsecret]")).collect();
    let mut texts = vec![
        (format!("{format} stdout"), kept.join("\n")),
        (format!("{format} stderr"), String::from_utf8_lossy(&out.stderr).to_string()),
    ];
    for file in [report, dir.join("azp-preflight-report.json"), dir.join("azp-preflight-summary.md")] {
        if let Ok(text) = std::fs::read_to_string(&file) {
            texts.push((file.display().to_string(), text));
        }
    }
    Outputs { texts }
}

fn assert_clean(outputs: &[Outputs], forbidden: &[String]) {
    for (source, text) in outputs.iter().flat_map(|o| o.texts.iter()) {
        for bad in forbidden {
            assert!(!text.contains(bad.as_str()), "`{bad}` appears in {source}:\n{text}");
        }
    }
}

#[test]
fn an_echoed_password_leaves_no_part_and_no_encoding_in_any_output() {
    let registry = echoing_registry();
    let server = format!("http://{}", registry.addr);
    let env = [("AZP_PREFLIGHT_REGISTRY_USERNAME", USER), ("AZP_PREFLIGHT_REGISTRY_PASSWORD", PASSWORD)];
    let dir = tempfile::tempdir().unwrap();
    let outputs: Vec<Outputs> =
        ["json", "human", "azure-pipelines"].iter().map(|f| run(dir.path(), f, &env, &server)).collect();
    // The registry's words are quoted (the finding is about them), with the secret gone.
    let json_report = &outputs[0].texts.iter().find(|(s, _)| s.ends_with("report-json.json")).unwrap().1;
    assert!(json_report.contains("REG010") && json_report.contains("invalid login; header Basic ***"), "{json_report}");
    assert_clean(&outputs, &forbidden(PASSWORD, Some(USER)));
}

#[test]
fn an_echoed_identity_token_leaves_no_part_and_no_encoding_in_any_output() {
    let registry = echoing_registry();
    let server = format!("http://{}", registry.addr);
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        json!({"auths": {registry.addr.to_string(): {"auth": "", "identitytoken": IDENTITY_TOKEN}}}).to_string(),
    )
    .unwrap();
    let docker = docker.to_string_lossy().to_string();
    let env = [("DOCKER_CONFIG", docker.as_str())];
    let outputs: Vec<Outputs> =
        ["json", "human", "azure-pipelines"].iter().map(|f| run(dir.path(), f, &env, &server)).collect();
    let json_report = &outputs[0].texts.iter().find(|(s, _)| s.ends_with("report-json.json")).unwrap().1;
    assert!(json_report.contains("refused form grant_type=refresh_token"), "{json_report}");
    assert_clean(&outputs, &forbidden(IDENTITY_TOKEN, None));
}
