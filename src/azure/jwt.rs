//! Reading (never verifying) the claims of a JWT: the OIDC token's issuer and subject, the
//! registry token's granted `access`. Values read here are facts about a token we hold; the
//! token itself stays secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// The payload of a compact JWS (`header.payload.signature`), or `None` if it is not one.
pub fn claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_payload_and_rejects_garbage() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://vstoken.dev.azure.com/org","sub":"sc://o/p/c"}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(claims(&token).unwrap()["sub"], "sc://o/p/c");
        assert!(claims("not-a-jwt").is_none());
        assert!(claims("a.!!!.c").is_none());
    }
}
