//! The grammar of a registry target (the `registries` input and `--registry`; README, "Inputs"):
//! `<server>[/<repository>[:<tag>|@<digest>]] [pull|push] [platform=<os>/<arch>[/<variant>]]`.
//!
//! Parsing only splits the words: a line that does not fit the grammar is bad input (exit 2).
//! Whether the server is usable (scheme, case, path) is the registry check's REG001.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    Pull,
    Push,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Pull => "pull",
            Intent::Push => "push",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// The Windows build a host runs (`10.0.20348`): its process-isolated containers need
    /// an image of that build. Set by the deploy check for Windows node pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reference {
    Tag(String),
    Digest(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryTarget {
    /// The server as written, scheme included when one was given.
    pub server: String,
    pub repository: Option<String>,
    pub reference: Option<Reference>,
    pub intent: Intent,
    pub platform: Option<Platform>,
}

impl RegistryTarget {
    /// `server/repo:tag (push)`: how reports name this target.
    pub fn display_name(&self) -> String {
        let mut s = mask_userinfo(&self.server).into_owned();
        if let Some(repo) = &self.repository {
            s.push('/');
            s.push_str(repo);
        }
        match &self.reference {
            Some(Reference::Tag(t)) => s.push_str(&format!(":{t}")),
            Some(Reference::Digest(d)) => s.push_str(&format!("@{d}")),
            None => {}
        }
        format!("{s} ({})", self.intent.as_str())
    }
}

/// The server as it may be shown: a `user[:password]@` written before the host becomes `***@`.
/// The grammar takes such a server (the registry check then refuses it, REG001), so every
/// place that names the target shows this form.
pub fn mask_userinfo(server: &str) -> Cow<'_, str> {
    let host_start = server.find("://").map_or(0, |i| i + 3);
    let authority_end = server[host_start..].find('/').map_or(server.len(), |i| host_start + i);
    let Some(at) = server[..authority_end].rfind('@') else { return Cow::Borrowed(server) };
    // Keep the scheme only when no credentials were written before it either.
    let keep = if server[..host_start].contains('@') { 0 } else { host_start };
    Cow::Owned(format!("{}***{}", &server[..keep], &server[at..]))
}

pub const GRAMMAR: &str = "<server>[/<repository>[:<tag>|@<digest>]] [pull|push] [platform=<os>/<arch>[/<variant>]]";

/// Parses one target. `Ok(None)` for blank lines and comments.
pub fn parse_line(line: &str) -> Result<Option<RegistryTarget>, String> {
    let content = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut words = content.split_whitespace();
    let Some(reference) = words.next() else { return Ok(None) };
    let mut intent = None;
    let mut platform = None;
    for word in words {
        if let Some(p) = word.strip_prefix("platform=") {
            if platform.is_some() {
                return Err("`platform=` is given twice".into());
            }
            platform = Some(parse_platform(p)?);
        } else if word == "pull" || word == "push" {
            if intent.is_some() {
                return Err(format!("a second intent `{word}`: give one of pull or push"));
            }
            intent = Some(if word == "push" { Intent::Push } else { Intent::Pull });
        } else {
            return Err(format!("unexpected word `{word}`: after the image reference only `pull`, `push` or `platform=<os>/<arch>[/<variant>]` may follow"));
        }
    }
    let (server, repository, reference) = split_reference(reference)?;
    Ok(Some(RegistryTarget { server, repository, reference, intent: intent.unwrap_or(Intent::Pull), platform }))
}

fn parse_platform(text: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let valid =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    match parts.as_slice() {
        [os, arch] if valid(os) && valid(arch) => Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None, os_version: None }),
        [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => {
            Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
                os_version: None,
            })
        }
        _ => Err(format!("`platform={text}` is not of the form <os>/<arch>[/<variant>], e.g. platform=linux/amd64 or platform=linux/arm/v7")),
    }
}

/// Splits `[scheme://]server[/repo[:tag|@digest]]`.
fn split_reference(text: &str) -> Result<(String, Option<String>, Option<Reference>), String> {
    let (scheme, rest) = match text.find("://") {
        Some(i) => (&text[..i + 3], &text[i + 3..]),
        None => ("", text),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err("the server is empty".into());
    }
    let server = format!("{scheme}{host}");
    let Some(path) = path.filter(|p| !p.is_empty()) else { return Ok((server, None, None)) };
    let (repo, reference) = if let Some(at) = path.find('@') {
        let digest = &path[at + 1..];
        if !is_digest(digest) {
            return Err(format!("`@{digest}` is not a digest of the form sha256:<64 hex digits>"));
        }
        (&path[..at], Some(Reference::Digest(digest.to_string())))
    } else {
        match path.rfind(':') {
            Some(colon) if !path[colon..].contains('/') => {
                let tag = &path[colon + 1..];
                if !is_tag(tag) {
                    return Err(format!("`:{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)"));
                }
                (&path[..colon], Some(Reference::Tag(tag.to_string())))
            }
            _ => (path, None),
        }
    };
    if repo.is_empty() || repo.split('/').any(str::is_empty) {
        return Err(format!("`{repo}` is not a repository path"));
    }
    Ok((server, Some(repo.to_string()), reference))
}

fn is_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_digest(digest: &str) -> bool {
    match digest.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        Some(("sha512", hex)) => {
            hex.len() == 128 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = parse_line("contoso.azurecr.io/shop/web:1.2 push platform=linux/arm64/v8  # comment").unwrap().unwrap();
        assert_eq!(t.server, "contoso.azurecr.io");
        assert_eq!(t.repository.as_deref(), Some("shop/web"));
        assert_eq!(t.reference, Some(Reference::Tag("1.2".into())));
        assert_eq!(t.intent, Intent::Push);
        assert_eq!(t.platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(t.display_name(), "contoso.azurecr.io/shop/web:1.2 (push)");

        let t = parse_line("http://127.0.0.1:5000/app").unwrap().unwrap();
        assert_eq!(
            (t.server.as_str(), t.repository.as_deref(), t.intent),
            ("http://127.0.0.1:5000", Some("app"), Intent::Pull)
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let t = parse_line(&format!("localhost:5000/a/b@{digest}")).unwrap().unwrap();
        assert_eq!(t.reference, Some(Reference::Digest(digest)));
        assert_eq!(parse_line("   # only a comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
    }

    #[test]
    fn credentials_written_in_the_server_are_never_shown() {
        let t = parse_line("https://user:s3cret@contoso.azurecr.io/app:1 push").unwrap().unwrap();
        assert_eq!(t.display_name(), "https://***@contoso.azurecr.io/app:1 (push)");
        // Found by fuzzing: an `@` alone still marks where credentials would be.
        assert_eq!(parse_line("@\0").unwrap().unwrap().display_name(), "***@\0 (pull)");
        assert_eq!(mask_userinfo("a@b@host/x@y"), "***@host/x@y");
        assert_eq!(mask_userinfo("contoso.azurecr.io"), "contoso.azurecr.io");
        // Found by the long fuzz run: credentials written before a `://` as well.
        let t = parse_line("user:pw@https://user:pw@").unwrap().unwrap();
        assert_eq!(t.display_name(), "***@ (pull)");
        assert_eq!(mask_userinfo("u:p@x://host"), "***@x://host");
    }

    #[test]
    fn server_problems_are_left_to_the_check() {
        // Uppercase and http to a remote host parse; REG001 reports them per target.
        assert!(parse_line("Contoso.AzureCR.io/app").unwrap().is_some());
        assert!(parse_line("http://contoso.azurecr.io/app").unwrap().is_some());
    }

    #[test]
    fn rejects_what_does_not_fit_the_grammar() {
        for bad in [
            "contoso.azurecr.io/app pul",
            "contoso.azurecr.io/app push pull",
            "contoso.azurecr.io/app platform=linux",
            "contoso.azurecr.io/app platform=linux/amd64/v8/x",
            "contoso.azurecr.io/app extra words",
            "contoso.azurecr.io/app@sha256:xyz",
            "contoso.azurecr.io//app",
            "contoso.azurecr.io/app:-bad",
            "/app",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }
}
