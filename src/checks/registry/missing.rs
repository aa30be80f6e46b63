//! What a missing manifest means (REG014), from what the registry said and nothing more.
//!
//! The manifest's own error code decides: `MANIFEST_UNKNOWN` is about the tag or digest (the
//! registry found the repository to look in it), `NAME_UNKNOWN` about the repository. Only
//! when the manifest answer names neither does the tag list's 404 speak for the repository,
//! and then only if nothing else showed the repository (ACR's attributes read earlier). A tag
//! list that was refused or missing says nothing about which tags exist.

/// What the finding may claim is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Repository,
    Reference,
}

/// What `GET /v2/<repo>/tags/list` gave.
#[derive(Debug, Clone, Copy)]
pub enum TagList<'a> {
    Listed(&'a [String]),
    /// Refused (401/403) or missing (404): its evidence, quoted as seen.
    Unread(&'a str),
}

/// `manifest_code`: the error code of the manifest GET (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`);
/// `list_missing`: the tag list answered 404; `repository_seen`: the repository was found by
/// another request of this target.
pub fn judge(manifest_code: Option<&str>, list_missing: bool, repository_seen: bool) -> Missing {
    match manifest_code {
        Some(c) if c.eq_ignore_ascii_case("NAME_UNKNOWN") => Missing::Repository,
        Some(c) if c.eq_ignore_ascii_case("MANIFEST_UNKNOWN") => Missing::Reference,
        _ if list_missing && !repository_seen => Missing::Repository,
        _ => Missing::Reference,
    }
}

/// The sentence after "`repo:tag` is not in the registry": the closest tags when the list was
/// read, else what the list request answered (never "no tags" for a list that was not read).
pub fn listed_sentence(list: TagList<'_>, near: &[String]) -> String {
    match list {
        TagList::Listed(tags) if near.is_empty() && tags.is_empty() => " The repository has no tags.".to_string(),
        TagList::Listed(_) if near.is_empty() => String::new(),
        TagList::Listed(_) => {
            format!(" Tags that exist: {}.", near.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "))
        }
        TagList::Unread(evidence) => format!(" The tags could not be listed: {evidence}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_code_decides_before_the_tag_list() {
        // A 404 tag list (refused scope, a registry without the endpoint) with MANIFEST_UNKNOWN
        // is a missing tag, whatever the list said.
        assert_eq!(judge(Some("MANIFEST_UNKNOWN"), true, false), Missing::Reference);
        assert_eq!(judge(Some("manifest_unknown"), true, true), Missing::Reference);
        assert_eq!(judge(Some("NAME_UNKNOWN"), false, false), Missing::Repository);
        // No code at all: the list's 404 speaks, unless the repository was seen otherwise.
        assert_eq!(judge(None, true, false), Missing::Repository);
        assert_eq!(judge(None, true, true), Missing::Reference);
        assert_eq!(judge(None, false, false), Missing::Reference);
    }

    #[test]
    fn an_unread_list_claims_no_tags() {
        let evidence = "GET /v2/shop/web/tags/list → HTTP 403 DENIED";
        let s = listed_sentence(TagList::Unread(evidence), &[]);
        assert_eq!(s, format!(" The tags could not be listed: {evidence}."));
        assert!(!s.contains("has no tags"));
        assert_eq!(listed_sentence(TagList::Listed(&[]), &[]), " The repository has no tags.");
        let tags = vec!["1.0".to_string()];
        assert_eq!(listed_sentence(TagList::Listed(&tags), &tags), " Tags that exist: `1.0`.");
        assert_eq!(listed_sentence(TagList::Listed(&tags), &[]), "");
    }
}
