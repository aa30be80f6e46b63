//! Which credential the organisation scan sends to Azure DevOps, and how: a personal access
//! token as Basic with an empty user name, an Entra access token (or the job's token) as
//! Bearer. A token is never printed; it is registered with the run's redactor when read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::net::http::Request;
use crate::secret::{Redactor, Secret};

/// The resource id of Azure DevOps in Entra ID; `/.default` asks for its app-only scope.
pub const DEVOPS_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";

/// The variable a user sets to scan with their own token.
pub const TOKEN_VAR: &str = "AZP_PREFLIGHT_ADO_TOKEN";

#[derive(Debug, Clone)]
pub enum DevOpsAuth {
    /// A personal access token: `Authorization: Basic base64(":" + pat)`.
    Pat(Secret),
    /// An Entra access token or the job access token: `Authorization: Bearer ...`.
    Bearer { token: Secret, source: &'static str },
}

impl DevOpsAuth {
    /// `AZP_PREFLIGHT_ADO_TOKEN` told apart by shape: a JWT is an Entra token, anything else a
    /// PAT. Registers the value (and the Basic form a PAT is sent in) with the redactor.
    pub fn from_user_token(value: &str, redactor: &Redactor) -> DevOpsAuth {
        let value = value.trim();
        if looks_like_jwt(value) {
            DevOpsAuth::Bearer { token: redactor.secret(value), source: TOKEN_VAR }
        } else {
            redactor.register_basic("", value);
            DevOpsAuth::Pat(redactor.secret(value))
        }
    }

    /// The pipeline's job access token (`SYSTEM_ACCESSTOKEN`).
    pub fn job_token(token: Secret, redactor: &Redactor) -> DevOpsAuth {
        redactor.register(token.expose());
        DevOpsAuth::Bearer { token, source: "SYSTEM_ACCESSTOKEN" }
    }

    /// An Entra access token obtained for [`DEVOPS_SCOPE`].
    pub fn entra(token: Secret, redactor: &Redactor) -> DevOpsAuth {
        redactor.register(token.expose());
        DevOpsAuth::Bearer { token, source: "an Entra ID token of the Azure identity" }
    }

    /// Where the credential came from, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            DevOpsAuth::Pat(_) => "the personal access token in AZP_PREFLIGHT_ADO_TOKEN",
            DevOpsAuth::Bearer { source, .. } => source,
        }
    }

    pub fn apply(&self, request: Request) -> Request {
        match self {
            DevOpsAuth::Pat(pat) => request.basic("", pat),
            DevOpsAuth::Bearer { token, .. } => request.bearer(token),
        }
    }
}

/// Three base64url segments whose first decodes to a JSON object: a JWT. PATs are 52 or 84
/// characters of base32/base64 without dots.
pub fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return false;
    }
    let base64url = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=');
    if !parts[..2].iter().all(|p| base64url(p)) {
        return false;
    }
    URL_SAFE_NO_PAD
        .decode(parts[0].trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|header| header.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_is_bearer_and_anything_else_a_pat() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
        let jwt = format!("{header}.e30.c2ln");
        assert!(looks_like_jwt(&jwt));
        assert!(!looks_like_jwt("abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"));
        assert!(!looks_like_jwt("a.b.c"), "segments that are not JSON");
        let redactor = Redactor::default();
        assert!(matches!(DevOpsAuth::from_user_token(&jwt, &redactor), DevOpsAuth::Bearer { .. }));
        let pat = DevOpsAuth::from_user_token("pat-value-canary-1234567890", &redactor);
        assert!(matches!(pat, DevOpsAuth::Pat(_)));
        // The Basic blob the PAT is sent in is known before any answer could echo it.
        let blob = base64::engine::general_purpose::STANDARD.encode(":pat-value-canary-1234567890");
        assert_eq!(redactor.redact(&blob), "***");
    }
}
