//! Credentials written into a URL or a server (`user:password@host`) are taken out before
//! the text is used for anything that may be shown: a display name, a finding, an input
//! error. What is taken out is registered as a secret, and a `***@` stays in its place so
//! the checks can still say "this server carries credentials" (REG001) without quoting them.

use crate::secret::Redactor;

/// What stands in for the removed credentials.
pub const PLACEHOLDER: &str = "***";

/// The byte range of the userinfo in `text` (`[scheme://]userinfo@host...`), if any. The
/// authority ends at the first `/`, `?` or `#` after the scheme, as in RFC 3986; its
/// userinfo is everything before the last `@` in it.
fn userinfo_range(text: &str) -> Option<(usize, usize)> {
    let start = match text.find("://") {
        // A scheme is letters, digits, `+`, `-`, `.` before `://`; anything else is not one.
        Some(i) if i > 0 && text[..i].chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) => {
            i + 3
        }
        _ => 0,
    };
    let authority_end = text[start..].find(['/', '?', '#']).map_or(text.len(), |i| start + i);
    let at = text[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

/// Removes the userinfo from `text`, registering it (whole, and the password alone) with
/// the redactor. Text without userinfo is returned unchanged.
pub fn strip(text: &str, redactor: &Redactor) -> String {
    let Some((start, at)) = userinfo_range(text) else { return text.to_string() };
    let userinfo = &text[start..at];
    if !userinfo.is_empty() && userinfo != PLACEHOLDER {
        redactor.register(userinfo);
        if let Some((user, password)) = userinfo.split_once(':') {
            redactor.register(password);
            redactor.register_basic(user, password);
            // Written percent-encoded in a URL, the decoded forms are what a server echoes.
            if let (Ok(u), Ok(p)) = (percent_decode(user), percent_decode(password)) {
                redactor.register(&p);
                redactor.register_basic(&u, &p);
            }
        }
    }
    format!("{}{PLACEHOLDER}{}", &text[..start], &text[at..])
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Strips every whitespace-separated word of a line that carries userinfo (a `registries`
/// line may have the server first and options after it).
pub fn strip_words(line: &str, redactor: &Redactor) -> String {
    if !line.contains('@') {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let word_start = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
        out.push_str(&rest[..word_start]);
        rest = &rest[word_start..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_end];
        // `image=user:pw@host/app`: the credentials are in the value of an option.
        match word.split_once('=') {
            Some((key, value)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()) => {
                out.push_str(key);
                out.push('=');
                out.push_str(&strip(value, redactor));
            }
            _ => out.push_str(&strip(word, redactor)),
        }
        rest = &rest[word_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_and_registers_credentials() {
        let r = Redactor::default();
        assert_eq!(strip("https://bob:s3cret-pw@contoso.azurecr.io/v2/", &r), "https://***@contoso.azurecr.io/v2/");
        assert_eq!(r.redact("x s3cret-pw y bob:s3cret-pw"), "x *** y ***");
        assert_eq!(strip("al:p%40ss-word@h.example:5000/app:1", &r), "***@h.example:5000/app:1");
        assert_eq!(r.redact("p@ss-word"), "***", "the decoded password is registered too");
        assert_eq!(strip("user@host/app", &r), "***@host/app");
    }

    #[test]
    fn digests_and_plain_servers_are_not_userinfo() {
        let r = Redactor::default();
        let digest = format!("h.example/app@sha256:{}", "a".repeat(64));
        assert_eq!(strip(&digest, &r), digest);
        assert_eq!(strip("contoso.azurecr.io/app:1", &r), "contoso.azurecr.io/app:1");
        assert_eq!(strip("http://127.0.0.1:5000", &r), "http://127.0.0.1:5000");
        assert!(r.values().is_empty());
    }

    #[test]
    fn words_of_a_line() {
        let r = Redactor::default();
        assert_eq!(
            strip_words("  u:pw-canary@h.example/app push  platform=linux/amd64 ", &r),
            "  ***@h.example/app push  platform=linux/amd64 "
        );
        assert_eq!(strip_words("aks:/x image=u:pw2-canary@h.example/a:1", &r), "aks:/x image=***@h.example/a:1");
        assert_eq!(r.redact("pw2-canary"), "***");
        assert_eq!(r.redact("pw-canary"), "***");
    }
}
