//! Input generators: arbitrary bytes, and text built from each grammar's own pieces (its
//! separators, keywords, digests, very long parts, non-ASCII, logging-command prefixes), so
//! most inputs get past the first check and reach the deeper branches.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Pieces every grammar gets besides its own: what breaks naive slicing and logs.
const COMMON: &[&str] =
    &[" ", "\t", "\n", "\r\n", "\r", "#", "é", "日本", "😀", "\u{200B}", "\u{FEFF}", "\0", "##vso[", "##["];

pub const REGISTRY: &[&str] = &[
    "contoso.azurecr.io",
    "Contoso.AzureCR.io",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "[::1",
    "::1",
    "docker.io",
    "azureacr.io",
    "contosoazurecr.io",
    ":",
    "/",
    "//",
    "@",
    "=",
    "https://",
    "http://",
    "ftp://",
    "://",
    "user:pw@",
    "u@",
    ":5000",
    ":0",
    ":65536",
    ":-1",
    "sha256:",
    "sha512:",
    HEX64,
    "push",
    "pull",
    "platform=",
    "linux/amd64",
    "linux/arm/v7",
    "linux",
    "/v8/x",
    "latest",
    "v1.2-rc",
    ".",
    "-",
    "_",
    "__",
    "app",
    "team/app",
    "/v2",
    "/v1/",
    "A",
    "0",
];

pub const DEPLOY: &[&str] = &[
    "aks:",
    "webapp:",
    "AKS:",
    "vm:",
    "aks: ",
    "/subscriptions/",
    "s1",
    "/resourceGroups/",
    "/resourcegroups/",
    "rg",
    "/providers/",
    "Microsoft.ContainerService",
    "/managedClusters/",
    "aks1",
    "Microsoft.Web",
    "/sites/",
    "shop",
    "/slots/",
    "staging",
    "Microsoft.ContainerRegistry",
    "/registries/",
    "contoso",
    " image=",
    " registry=",
    "image=",
    "contoso.azurecr.io/web:1.4",
    "nginx",
    "@sha256:",
    HEX64,
    "=",
    "/",
    ":",
    "//",
];

pub const YAML: &[&str] = &[
    "steps:\n",
    "- task: Docker@2\n",
    "- task: 'Kubernetes@1'\n",
    "- task: \"A@1.2.3\"\n",
    "  task: B@2\n",
    "- task: >\n    C@3\n",
    "  inputs:\n",
    "    command: push\n",
    "    a: 'b'\n",
    "- ${{ if eq(parameters.a, true) }}:\n",
    "  - task: X@1\n",
    "- ${{ each s in parameters.steps }}:\n",
    "- template: t.yml@self\n",
    "  template: /b.yml\n",
    "extends:\n",
    "jobs:\n",
    "stages:\n",
    "- job: A\n",
    "  steps:\n",
    "parameters:\n",
    "  default:\n",
    "[",
    "]",
    "{",
    "}",
    "{{ x }}",
    "{{#if a}}",
    "{{",
    "}}",
    "${{",
    "&a ",
    "*a",
    "? ",
    ": ",
    "- ",
    ",",
    "---\n",
    "...\n",
    "'",
    "\"",
    "\\",
    "|\n",
    ">-\n",
    "  ",
    "    ",
    "!!str ",
    "!tag ",
    "%YAML 1.2\n",
    "%TAG ! x\n",
    "task",
    "template",
    "inputs",
    "# pinned by azp-preflight: x\n",
    "  # pinned by azp-preflight: x\r",
    "\\u00e9",
    "\"\\\"",
    "1",
    "null",
    "~",
];

pub const TOML: &[&str] = &[
    "id = \"AZP-ADV-0001\"\n",
    "title = \"t\"\n",
    "task = \"Docker\"\n",
    "task-id = \"333b11bd-d341-40d9-afcf-b32d5ce6f23b\"\n",
    "major = 2\n",
    "major = 4294967296\n",
    "updated = \"2024-01-31\"\n",
    "updated = 2024-01-31\n",
    "symptom = \"s\"\n",
    "confidence = \"high\"\n",
    "pinnable = false\n",
    "[versions]\n",
    "affected = [\">= 2.1.0, < 2.3.0\"]\n",
    "last-good = \"2.0.9\"\n",
    "fixed = \"2.3.0\"\n",
    "[sources]\n",
    "issues = [\"https://example.invalid/1\"]\n",
    "[applies-when]\n",
    "inputs = { command = \"push\" }\n",
    "[[x]]\n",
    "[a.b.c]\n",
    "=",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'''",
    "\"\"\"",
    "\\u0000",
    "\\UFFFFFFFF",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x1F",
    "1e999",
    "-0",
    "_",
    ".",
    ",",
];

pub const VERSIONS: &[&str] = &[
    ">=",
    ">",
    "<=",
    "<",
    "=",
    "~",
    " ",
    ",",
    ", ",
    "0",
    "1",
    "2",
    "2.241.0",
    "2.243.2",
    "999999999",
    "9999999999",
    ".",
    "@",
    "Docker",
    "Docker@",
    "-",
    "+",
    "${{",
    "$(",
    "$[",
    "v",
    "333b11bd-d341-40d9-afcf-b32d5ce6f23b",
    "a.b.c.Task",
    "/",
];

pub const CHALLENGE: &[&str] = &[
    "Bearer",
    "Basic",
    "Negotiate",
    "bearer",
    " ",
    ",",
    ", ",
    "=",
    "\"",
    "\\",
    "\\\"",
    "realm",
    "service",
    "scope",
    "error",
    "https://contoso.azurecr.io/oauth2/token",
    "repository:team/app:pull,push",
    "abc==",
    "insufficient_scope",
    "invalid_token",
    "!#$%&'*+-.^_`|~",
    "120",
    "Wed, 21 Oct 2015 07:28:00 GMT",
];

/// Raw input, shown as an escaped byte string when a case fails.
#[derive(Clone)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Arbitrary bytes, short and occasionally long.
pub fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![8 => vec(any::<u8>(), 0..256), 1 => vec(any::<u8>(), 256..4096)].prop_map(Bytes)
}

/// Text glued from a grammar's pieces, common troublemakers, short random words, arbitrary
/// characters and now and then a very long run.
pub fn soup(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        10 => select(pieces).prop_map(str::to_string),
        2 => select(COMMON).prop_map(str::to_string),
        3 => "[a-z0-9._-]{1,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect::<String>()),
        1 => (select(pieces), 50usize..1500).prop_map(|(p, n)| p.repeat(n.div_ceil(p.len().max(1)))),
    ];
    vec(piece, 0..max).prop_map(|parts| parts.concat())
}

/// A pipeline built from whole lines at varying indentation: most are valid YAML.
pub fn pipeline_document() -> impl Strategy<Value = String> {
    let line = (0usize..6, select(YAML), prop::option::of(select(COMMON)));
    vec(line, 0..48).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(indent, piece, extra)| format!("{}{}{}", "  ".repeat(indent), piece, extra.unwrap_or("")))
            .collect()
    })
}

fn field(valid: &'static [&'static str], name: &'static str) -> impl Strategy<Value = String> {
    // Each field: one of its valid forms, a wrong one, or missing.
    let invalid = prop_oneof![
        Just("\"\"".to_string()),
        Just("42".to_string()),
        Just("[]".to_string()),
        Just("{ a = 1 }".to_string()),
        "\"[ -~é]{0,20}\"",
    ];
    prop_oneof![6 => select(valid).prop_map(str::to_string), 2 => invalid, 1 => Just(String::new())]
        .prop_map(move |value| if value.is_empty() { String::new() } else { format!("{name} = {value}\n") })
}

/// An advisory file with every field valid, wrong or missing, and ranges from the grammar.
pub fn advisory_document() -> impl Strategy<Value = String> {
    let range = soup(VERSIONS, 8).prop_map(|r| format!("{r:?}"));
    (
        (
            field(&["\"AZP-ADV-0001\"", "\"CONTOSO-ADV-9999\"", "\"azp-adv-1\"", "\"-0001\""], "id"),
            field(&["\"Docker push fails\""], "title"),
            field(&["\"Docker\""], "task"),
            field(&["\"333b11bd-d341-40d9-afcf-b32d5ce6f23b\"", "\"333B11BD-D341-40D9-AFCF-B32D5CE6F23B\""], "task-id"),
            field(&["2", "0", "4294967295", "-1"], "major"),
            field(&["\"2024-01-31\"", "\"2024-02-30\"", "\"2024-1-1\""], "updated"),
            field(&["\"s\"", "\"  \""], "symptom"),
            field(&["\"high\"", "\"medium\"", "\"low\"", "\"sure\""], "confidence"),
            field(&["true", "false"], "pinnable"),
        ),
        (
            vec(range, 0..4),
            field(&["\"2.0.9\"", "\"2.3.0\"", "\"3.0.0\"", "\"2.0\""], "last-good"),
            field(&["\"2.3.0\"", "\"2.1.5\"", "\"1.0.0\""], "fixed"),
            field(&["[\"https://example.invalid/1\"]", "[\"http://x\"]", "[\"https://a b\"]", "[]"], "issues"),
            prop::option::of(field(&["{ command = \"push\" }", "{}"], "inputs")),
        ),
    )
        .prop_map(|((id, title, task, task_id, major, updated, symptom, confidence, pinnable), rest)| {
            let (ranges, last_good, fixed, issues, applies) = rest;
            let mut doc = [id, title, task, task_id, major, updated, symptom, confidence, pinnable].concat();
            doc.push_str(&format!("[versions]\naffected = [{}]\n{last_good}{fixed}", ranges.join(", ")));
            doc.push_str(&format!("[sources]\n{issues}"));
            if let Some(inputs) = applies {
                doc.push_str(&format!("[applies-when]\n{inputs}"));
            }
            doc
        })
}

const JSON_KEYS: &[&str] = &[
    "access_token",
    "expires_in",
    "expires_on",
    "error",
    "error_description",
    "error_codes",
    "trace_id",
    "correlation_id",
    "timestamp",
    "passwordCredentials",
    "keyCredentials",
    "displayName",
    "endDateTime",
    "customKeyIdentifier",
    "key",
    "usage",
    "hint",
    "keyId",
    "errors",
    "code",
    "message",
    "detail",
    "manifests",
    "platform",
    "os",
    "architecture",
    "variant",
    "annotations",
    "vnd.docker.reference.type",
    "tags",
    "value",
    "nextLink",
    "id",
    "innerError",
    "request-id",
    "access",
    "type",
    "name",
    "actions",
    "auths",
    "auth",
    "username",
    "password",
    "identitytoken",
    "credsStore",
    "credHelpers",
    "iss",
    "sub",
    "parameters",
    "scheme",
];

const JSON_STRINGS: &[&str] = &[
    "",
    " ",
    "##vso[task.setvariable variable=x]1",
    "client with IP '203.0.113.7' is not allowed",
    "DENIED",
    "NAME_UNKNOWN",
    "repository",
    "repository(plugin)",
    "team/app",
    "pull",
    "push",
    "*",
    "linux",
    "amd64",
    "arm",
    "v7",
    "unknown",
    "attestation-manifest",
    "2024-01-31T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "3599",
    "-1",
    "99999999999999999999",
    "Verify",
    "Sign",
    "AADSTS700016",
    "<html><title>x</title></html>",
    "/subscriptions/s/resourceGroups/r/providers/P/t/n",
    "dXNlcjpwYXNz",
    "dXNlcg==",
    "!!!",
    "Sm9objpTZWNyZXQ6OjE=",
];

/// JSON values shaped like the answers the tool reads: known keys, tricky leaves, nesting.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => select(JSON_STRINGS).prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((select(JSON_KEYS), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A status byte and a body: a JSON document, a truncated one, or HTML.
pub fn json_answer() -> impl Strategy<Value = Bytes> {
    (any::<u8>(), json_value(), 0usize..4, any::<usize>()).prop_map(|(status, value, how, cut)| {
        let text = value.to_string();
        let body = match how {
            0 => format!("{text:.len$}", len = cut % (text.len() + 1)),
            1 => format!("<html><head><title>{text}</title></head></html>"),
            _ => text,
        };
        let mut out = vec![status];
        out.extend_from_slice(body.as_bytes());
        Bytes(out)
    })
}

/// A compact JWS: header, payload (JSON shaped like the claims read), signature.
pub fn jwt() -> impl Strategy<Value = String> {
    let payload = prop_oneof![
        3 => json_value(),
        2 => vec((select(&["repository", "registry", "repository(x)"][..]), select(&["team/app", "a", ""][..]),
                  vec(select(&["pull", "push", "*", "metadata_read"][..]), 0..4)), 0..4)
            .prop_map(|entries| json!({"access": entries.into_iter().map(|(t, n, a)| json!({"type": t, "name": n, "actions": a})).collect::<Vec<_>>()})),
    ];
    (payload, 0usize..4, "[A-Za-z0-9_=.+/-]{0,12}").prop_map(|(value, how, sig)| {
        let body = URL_SAFE_NO_PAD.encode(value.to_string());
        match how {
            0 => format!("e30.{body}="),
            1 => format!("e30.{body}.{sig}.extra"),
            _ => format!("e30.{body}.{sig}"),
        }
    })
}

/// A Docker `config.json` with `auths` entries (base64 `user:password`), stores and helpers.
pub fn docker_config() -> impl Strategy<Value = Bytes> {
    let entry = (
        prop::option::of(prop_oneof![
            "[ -~é]{0,16}".prop_map(|s| STANDARD.encode(s)),
            select(JSON_STRINGS).prop_map(str::to_string)
        ]),
        prop::option::of("[ -~é]{0,12}"),
        prop::option::of("[ -~é]{0,12}"),
        prop::option::of("[ -~]{0,12}"),
    );
    (vec((select(REGISTRY), entry), 0..5), prop::option::of("[a-z-]{0,8}"), json_value()).prop_map(
        |(auths, store, noise)| {
            let mut map = Map::new();
            for (server, (auth, user, pass, token)) in auths {
                let mut e = Map::new();
                for (k, v) in [("auth", auth), ("username", user), ("password", pass), ("identitytoken", token)] {
                    if let Some(v) = v {
                        e.insert(k.to_string(), Value::from(v));
                    }
                }
                map.insert(server.to_string(), Value::Object(e));
            }
            let mut doc = json!({"auths": map, "extra": noise});
            if let Some(s) = store {
                doc["credsStore"] = Value::from(s.clone());
                doc["credHelpers"] = json!({"contoso.azurecr.io": s});
            }
            Bytes(doc.to_string().into_bytes())
        },
    )
}

/// The agent's variables for one or two connections (first line: the input), plus proxy
/// and endpoint overrides.
pub fn connection_variables() -> impl Strategy<Value = String> {
    let ids = select(&["1dfdea68-9549-409e-abee-c5da69cfec5f", "ID2", "", "a_b", "é"][..]);
    let name = select(
        &[
            "ENDPOINT_AUTH_SCHEME_",
            "ENDPOINT_URL_",
            "ENDPOINT_AUTH_",
            "ENDPOINT_AUTH_PARAMETER_{}_PASSWORD",
            "ENDPOINT_AUTH_PARAMETER_{}_USERNAME",
            "ENDPOINT_AUTH_PARAMETER_{}_SERVICEPRINCIPALKEY",
            "ENDPOINT_AUTH_PARAMETER_{}_SERVICEPRINCIPALCERTIFICATE",
            "ENDPOINT_AUTH_PARAMETER_{}_AUTHENTICATIONTYPE",
            "ENDPOINT_AUTH_PARAMETER_{}_LOGINSERVER",
            "ENDPOINT_AUTH_PARAMETER_{}_REGISTRY",
            "ENDPOINT_DATA_{}_REGISTRYTYPE",
            "endpoint_auth_parameter_{}_password",
        ][..],
    );
    let value = prop_oneof![
        select(
            &[
                "ServicePrincipal",
                "WorkloadIdentityFederation",
                "ManagedServiceIdentity",
                "UsernamePassword",
                "ACR",
                "spnKey",
                "spnCertificate",
                "https://contoso.azurecr.io",
                "user:pw@contoso.azurecr.io",
                " ",
                "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----",
                "s3cr3t-value",
            ][..]
        )
        .prop_map(str::to_string),
        json_value().prop_map(|v| v.to_string()),
        soup(REGISTRY, 6),
    ];
    let proxy = select(
        &[
            "AGENT_PROXYURL=http://u:p@proxy:8080",
            "AGENT_PROXYURL=::",
            "AGENT_PROXYBYPASSLIST=[\"(a\", \"b\"]",
            "AGENT_PROXYBYPASSLIST=[\"\\\\.corp$\"]",
            "HTTPS_PROXY=proxy:3128",
            "HTTPS_PROXY=http://[::1",
            "NO_PROXY=*,.a",
            "AZP_PREFLIGHT_ARM_URL=http://127.0.0.1:1/",
            "AZP_PREFLIGHT_REGISTRY_ENDPOINTS=a=b,c",
            "SYSTEM_COLLECTIONURI=https://dev.azure.com/o",
            "SYSTEM_TEAMPROJECT=p",
        ][..],
    );
    (vec(ids.clone(), 1..3), vec((name, ids, value), 0..12), vec(proxy, 0..3)).prop_map(|(input, vars, proxies)| {
        let mut out = input.join(", ");
        for (name, id, value) in vars {
            let name = if name.contains("{}") { name.replace("{}", id) } else { format!("{name}{id}") };
            out.push_str(&format!("\n{name}={}", value.replace('\n', " ")));
        }
        for p in proxies {
            out.push_str(&format!("\n{p}"));
        }
        out
    })
}

/// PEM text: blocks with known and odd labels, base64 bodies (valid or not), escaped line
/// breaks as the agent passes them, legacy encryption headers.
pub fn pem() -> impl Strategy<Value = String> {
    let label = select(
        &["CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "X", ""][..],
    );
    let block = (label.clone(), prop::option::of(label), vec(any::<u8>(), 0..300), 0usize..4).prop_map(
        |(label, end, der, how)| {
            let body = match how {
                0 => "Proc-Type: 4,ENCRYPTED\nDEK-Info: x\n\nAAAA".to_string(),
                1 => "not base64!".to_string(),
                _ => STANDARD.encode(der),
            };
            let end = end.unwrap_or(label);
            format!("-----BEGIN {label}-----\n{body}\n-----END {end}-----\n")
        },
    );
    (vec(block, 0..4), any::<bool>()).prop_map(|(blocks, escaped)| {
        if escaped {
            blocks.concat().replace('\n', "\\n")
        } else {
            blocks.concat()
        }
    })
}
