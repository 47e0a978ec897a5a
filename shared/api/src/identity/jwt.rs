//! Bearer tokens verified by the server itself (`heimdall serve --auth jwt`): RS/PS/ES/EdDSA
//! signatures by a key of a JWKS, the issuer and the audience, expiry with a minute of leeway.
//! Symmetric (HMAC) keys and `alg: none` are refused, so a token can never pick its own key.
//! The claims read are those API Gateway's JWT authorizer passes on AWS: the user is
//! `username`, `cognito:username` or `sub`; groups are `groups` or `cognito:groups`.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use heimdall_domain::Caller;
use jsonwebtoken::jwk::AlgorithmParameters;
pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The claims, in order of preference, that name the user.
pub const USER_CLAIMS: [&str; 3] = ["username", "cognito:username", "sub"];
/// The claims that list the caller's groups.
pub const GROUP_CLAIMS: [&str; 2] = ["groups", "cognito:groups"];

/// What tokens must satisfy.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub keys: JwkSet,
}

/// Checks tokens against [`JwtSettings`].
pub struct JwtVerifier {
    settings: JwtSettings,
}

impl JwtVerifier {
    /// Refuses key sets that could verify nothing, or hold a symmetric key.
    pub fn new(settings: JwtSettings) -> Result<Self, String> {
        if settings.issuer.trim().is_empty() || settings.audience.trim().is_empty() {
            return Err("JWT verification needs an issuer and an audience".into());
        }
        if settings.keys.keys.is_empty() {
            return Err("the JWKS holds no keys".into());
        }
        if settings.keys.keys.iter().any(|key| matches!(key.algorithm, AlgorithmParameters::OctetKey(_))) {
            return Err("the JWKS holds a symmetric (oct) key; only public keys (RSA, EC, OKP) may verify tokens".into());
        }
        Ok(Self { settings })
    }

    /// The caller a request's bearer token proves, or what is wrong with it.
    pub fn caller_of(&self, headers: &HeaderMap) -> Result<Caller, String> {
        let value = headers
            .get(AUTHORIZATION)
            .ok_or("send a token with the header `Authorization: Bearer <JWT>`")?
            .to_str()
            .map_err(|_| "the Authorization header must be plain ASCII text")?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or("the Authorization header must be `Bearer <JWT>`")?
            .trim();
        self.verify(token)
    }

    /// The caller `token` proves.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| format!("the token is not a JWT: {error}"))?;
        if !is_public_key_algorithm(header.alg) {
            return Err(format!("the token is signed with {:?}; only public-key algorithms are accepted", header.alg));
        }
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => self.settings.keys.find(kid).into_iter().collect(),
            None => self.settings.keys.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err("the token's key id (kid) is not in the server's JWKS".into());
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut last_error = String::new();
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            match jsonwebtoken::decode::<Value>(token, &key, &validation) {
                Ok(data) => return caller_from_claims(&data.claims),
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(format!("the token is refused: {last_error}"))
    }
}

fn is_public_key_algorithm(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The user and groups of verified claims (the first user claim present).
pub fn caller_from_claims(claims: &Value) -> Result<Caller, String> {
    let user = USER_CLAIMS
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str).filter(|v| !v.trim().is_empty()))
        .ok_or("the token names no user (claims username, cognito:username or sub)")?;
    let groups = GROUP_CLAIMS.iter().filter_map(|name| claims.get(*name)).flat_map(group_names).collect::<BTreeSet<_>>();
    Ok(Caller::new(user).with_groups(groups))
}

/// Group names from a claim: a JSON array, or the string forms API Gateway passes on (`[a b]`)
/// and some issuers use (`a,b`).
pub fn group_names(claim: &Value) -> Vec<String> {
    match claim {
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Value::String(text) => text
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split([',', ' '])
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn groups_come_from_arrays_and_api_gateways_string_form() {
        assert_eq!(group_names(&json!(["a", "b"])), ["a", "b"]);
        assert_eq!(group_names(&json!("[platform data-eng]")), ["platform", "data-eng"]);
        assert_eq!(group_names(&json!("x,y")), ["x", "y"]);
        let caller = caller_from_claims(&json!({"sub": "u-1", "username": "alice", "cognito:groups": ["platform"]})).unwrap();
        assert_eq!(caller.user, "alice");
        assert!(caller.in_group("platform"));
        assert!(caller_from_claims(&json!({"groups": ["x"]})).is_err());
    }

    #[test]
    fn a_jwks_with_a_symmetric_key_is_refused() {
        let keys: JwkSet = serde_json::from_value(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).unwrap();
        let error = JwtVerifier::new(JwtSettings { issuer: "i".into(), audience: "a".into(), keys }).err().unwrap();
        assert!(error.contains("symmetric"), "{error}");
    }
}
