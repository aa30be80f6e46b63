//! The largest input of each shape, timed: long parts, many separators, deep nesting. Each
//! parser must finish within `BOUND` of CPU time in a debug build; a stack overflow aborts the whole test
//! binary, which fails the run just as well.

use std::time::Duration;

use azp_preflight::azure::{certificate, jwt};
use azp_preflight::checks::registry::server::{self, ServerOrigin};
use azp_preflight::checks::registry::{answer, tags};
use azp_preflight::checks::tasks::advisories::Advisory;
use azp_preflight::checks::tasks::scan;
use azp_preflight::{deploy_target, fuzz, registry_target};

use crate::thread_cpu_time;

const BOUND: Duration = Duration::from_secs(2);
const MB: usize = 1 << 20;

/// Runs `work`, failing when it takes more than `BOUND` of this thread's CPU time.
fn timed<T>(name: &str, size: usize, work: impl FnOnce() -> T) -> T {
    let start = thread_cpu_time();
    let out = work();
    let took = thread_cpu_time().saturating_sub(start);
    assert!(took < BOUND, "{name}: {size} bytes took {took:?}");
    out
}

#[test]
fn registry_specs_of_a_megabyte() {
    let host = format!("{}/app:1", "a".repeat(MB));
    let colons = format!("contoso.azurecr.io/{}", "a:".repeat(MB / 2));
    let slashes = format!("contoso.azurecr.io/{}x", "a/".repeat(MB / 2));
    let words = format!("contoso.azurecr.io/app {}", "push ".repeat(MB / 5));
    let at = format!("{}contoso.azurecr.io/app", "u:p@".repeat(MB / 4));
    let ipv6 = format!("[{}:1]/app", "a".repeat(MB));
    for input in [host, colons, slashes, words, at, ipv6] {
        let _ = timed("registry line", input.len(), || registry_target::parse_line(&input));
        for origin in [ServerOrigin::Line, ServerOrigin::LoginServer, ServerOrigin::RegistryUrl] {
            let _ = timed("server", input.len(), || server::parse_server(&input, origin));
        }
        let _ = timed("repository", input.len(), || server::check_repository(&input));
        timed("typo guard", input.len(), || server::typo_of_known_domain(&input));
    }
    let lines = "contoso.azurecr.io/app:1 push platform=linux/amd64\n".repeat(MB / 50);
    timed("registry lines", lines.len(), || lines.lines().map(registry_target::parse_line).count());
}

#[test]
fn deploy_targets_of_a_megabyte() {
    let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a";
    let long_id = format!("aks:{id}{} image=c.azurecr.io/a", "/slots/x".repeat(MB / 8));
    let words = format!("webapp:{id} image=c.azurecr.io/a {}", "registry= ".repeat(MB / 10));
    for input in [long_id, words] {
        let _ = timed("deploy line", input.len(), || deploy_target::parse_line(&input));
    }
}

#[test]
fn tag_lists_with_a_long_tag() {
    // A registry's tag list: one tag of 2 MB (the body cap) against a 128-character wanted
    // tag, then 2 MB of short tags.
    let wanted = "t".repeat(128);
    let long = vec!["x".repeat(2 * MB), "latest".into()];
    timed("closest tags", 2 * MB, || tags::closest_tags(&wanted, &long));
    let many: Vec<String> = (0..2 * MB / 80).map(|i| format!("{i:0>70}")).collect();
    timed("closest tags", 2 * MB, || tags::closest_tags(&wanted, &many));
}

#[test]
fn challenges_with_a_hundred_thousand_separators() {
    let commas = format!("Bearer {}", ",".repeat(100_000));
    let params = format!("Bearer {}", "a=b,".repeat(100_000));
    let schemes = "Basic, ".repeat(100_000);
    let open_quote = format!("Bearer realm=\"{}", "\\\"".repeat(100_000));
    let equals = "=".repeat(100_000);
    for input in [commas, params, schemes, open_quote, equals] {
        timed("challenge", input.len(), || answer::parse_challenges(&input));
    }
}

#[test]
fn yaml_nested_ten_thousand_levels() {
    let flow_seq = "[".repeat(10_000);
    let flow_map = "{a: ".repeat(10_000);
    let closed = format!("steps: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let block_seq = "- ".repeat(10_000) + "task: A@1\n";
    let mut indented = String::new();
    for depth in 0..2_000 {
        indented.push_str(&" ".repeat(depth));
        indented.push_str("a:\n");
    }
    for input in [flow_seq, flow_map, closed, block_seq, indented] {
        timed("yaml", input.len(), || scan::scan(&input));
    }
}

#[test]
fn yaml_long_lines_and_many_steps() {
    // Non-ASCII text makes columns characters, not bytes: positions must stay cheap.
    let flow = format!("é: [{}]\n", "{task: A@1}, ".repeat(50_000));
    let steps = format!("steps:\n{}", "- task: Docker@2\n  inputs:\n    a: b\n".repeat(30_000));
    let steps_unicode = format!("# é\nsteps:\n{}", "- task: Docker@2\n".repeat(50_000));
    let handlebars = format!("{}: [\n", "{{ x }} é ".repeat(50_000));
    let carriage_returns = format!("steps:{}", "\r- task: Docker@2".repeat(50_000));
    for input in [flow, steps, steps_unicode, handlebars, carriage_returns] {
        let found = timed("yaml", input.len(), || scan::scan(&input));
        assert!(found.references.len() < 50_001);
    }
}

#[test]
fn toml_with_a_hundred_thousand_tables_and_deep_nesting() {
    let tables: String = (0..100_000).map(|i| format!("[t{i}]\nk = 1\n")).collect();
    let arrays = format!("id = {}", "[".repeat(10_000));
    let inline = format!("id = {}", "{a = ".repeat(10_000));
    let dotted = format!("{} = 1\n", vec!["a"; 10_000].join("."));
    let affected = format!(
        "[versions]\naffected = [{}]\n",
        (0..2_000).map(|i| format!("\"= 2.{i}.0\"")).collect::<Vec<_>>().join(",")
    );
    for input in [tables, arrays, inline, dotted, affected] {
        assert!(timed("toml", input.len(), || Advisory::parse(&input, "worst-case")).is_err());
    }
}

#[test]
fn json_nested_beyond_the_recursion_limit() {
    // serde_json stops at depth 128; a body nested 100,000 deep must be an error, not a crash,
    // in every reader of JSON (the fuzz entry points run them all).
    use base64::Engine as _;
    for nested in ["[".repeat(100_000), "{\"a\":".repeat(100_000)] {
        let mut answer = vec![0u8];
        answer.extend_from_slice(nested.as_bytes());
        timed("json answers", nested.len(), || fuzz::json_answers(&answer));
        let token = format!("e30.{}.s", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&nested));
        assert!(timed("jwt", token.len(), || jwt::claims(&token)).is_none());
        timed("docker config", nested.len(), || fuzz::docker_config(nested.as_bytes()));
        let env = format!("id\nENDPOINT_AUTH_id={nested}\nAGENT_PROXYURL=http://p\nAGENT_PROXYBYPASSLIST={nested}");
        timed("connections", env.len(), || fuzz::connection_env(env.as_bytes()));
    }
}

#[test]
fn pem_with_a_megabyte_of_markers() {
    let begins = "-----BEGIN X-----".repeat(MB / 17);
    let blocks = "-----BEGIN X-----\nAAAA\n-----END X-----\n".repeat(MB / 40);
    let escaped = "\\n".repeat(MB / 2);
    for input in [begins, blocks, escaped] {
        assert!(timed("pem", input.len(), || certificate::ClientCertificate::from_pem(&input)).is_err());
    }
}
