//! Key-pair authentication: every SQL API request carries a JWT signed (RS256) with the user's
//! private key. Snowflake finds the public key to check it with through the issuer claim:
//!
//! - `iss`: `<ACCOUNT>.<USER>.SHA256:<base64 of the SHA-256 of the public key's DER
//!   SubjectPublicKeyInfo>` (the `RSA_PUBLIC_KEY_FP` that `DESC USER` shows);
//! - `sub`: `<ACCOUNT>.<USER>`;
//! - `iat`, `exp`: issued now, valid for at most an hour.
//!
//! A token is signed once and reused until shortly before it expires: signing costs an RSA
//! private-key operation, and one job makes many requests (polls, result partitions).

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::private_key::PrivateKeyPem;

/// Snowflake refuses tokens valid for more than an hour; a minute less absorbs clock skew.
pub const TOKEN_LIFETIME_SECONDS: u64 = 59 * 60;
/// A cached token this close to its expiry is replaced rather than sent.
const RENEW_BEFORE_SECONDS: u64 = 5 * 60;

/// The claims Snowflake reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
}

/// Signs the JWTs of one account and user.
pub(crate) struct KeyPairJwt {
    key: EncodingKey,
    /// `ACCOUNT.USER`.
    subject: String,
    /// `SHA256:<base64>`.
    fingerprint: String,
    /// The token in use and its `exp`.
    current: Mutex<Option<(String, u64)>>,
}

/// Redacted by hand: the signing key never reaches a log.
impl fmt::Debug for KeyPairJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPairJwt")
            .field("subject", &self.subject)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyPairJwt {
    /// Reads the key. The error says what is wrong with it, never what it holds.
    pub fn new(account: &str, user: &str, pem: &PrivateKeyPem) -> Result<Self, String> {
        let private_key = parse_private_key(pem.expose())?;
        let fingerprint = public_key_fingerprint(&private_key)?;
        let pkcs1 =
            private_key.to_pkcs1_der().map_err(|error| format!("the key cannot be encoded for signing: {error}"))?;
        Ok(Self {
            key: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            subject: format!("{}.{}", jwt_account(account), user.to_uppercase()),
            fingerprint,
            current: Mutex::new(None),
        })
    }

    /// `SHA256:<base64>`, as `DESC USER` shows it (`RSA_PUBLIC_KEY_FP`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `ACCOUNT.USER`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn claims_at(&self, now: u64) -> Claims {
        Claims {
            iss: format!("{}.{}", self.subject, self.fingerprint),
            sub: self.subject.clone(),
            iat: now,
            exp: now + TOKEN_LIFETIME_SECONDS,
        }
    }

    /// A token valid for at least a few more minutes.
    pub fn token(&self) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, exp)) = current.as_ref()
            && now + RENEW_BEFORE_SECONDS < *exp
        {
            return Ok(token.clone());
        }
        let claims = self.claims_at(now);
        let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|error| format!("could not sign the JWT: {error}"))?;
        *current = Some((token.clone(), claims.exp));
        Ok(token)
    }
}

/// The account part of the claims: upper case, without a region (`xy12345.us-east-1` →
/// `XY12345`) or a global-URL suffix (`xy12345-abc.global` → `XY12345`), as Snowflake's own
/// connectors write it. Org-style names (`myorg-myaccount`) stay whole.
pub(crate) fn jwt_account(account: &str) -> String {
    let upper = account.to_ascii_uppercase();
    let separator = if upper.contains(".GLOBAL") { '-' } else { '.' };
    upper.split(separator).next().unwrap_or_default().to_owned()
}

fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, String> {
    let pem = pem.trim();
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("the key is encrypted; store it unencrypted (`openssl pkcs8 -topk8 -nocrypt`) and protect where it is stored instead".into());
    }
    // PKCS#8 as Snowflake documents, or PKCS#1 (what older `openssl genrsa` writes): the same
    // key, so accepted too. The PKCS#8 parser's message is the one worth showing.
    let parsed = RsaPrivateKey::from_pkcs8_pem(pem)
        .map_err(|error| error.to_string())
        .or_else(|pkcs8_error| RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| pkcs8_error));
    // The parsers' messages name the encoding problem, never the bytes.
    parsed.map_err(|why| format!("the key is not an unencrypted PKCS#8 PEM RSA private key ({why})"))
}

/// `SHA256:` + base64 of the SHA-256 of the public key's DER SubjectPublicKeyInfo.
fn public_key_fingerprint(private_key: &RsaPrivateKey) -> Result<String, String> {
    let der = private_key
        .to_public_key()
        .to_public_key_der()
        .map_err(|error| format!("the public key cannot be encoded: {error}"))?;
    Ok(format!("SHA256:{}", STANDARD.encode(Sha256::digest(der.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use heimdall_fake_snowflake::key::TestKey;

    fn signer() -> KeyPairJwt {
        KeyPairJwt::new("xy12345.us-east-1", "heimdall_svc", &PrivateKeyPem::new(TestKey::get().private_pem.clone()))
            .unwrap()
    }

    #[test]
    fn the_claims_name_account_user_and_the_public_key_fingerprint() {
        // GIVEN a signer for a region-qualified account and a lower-case user
        let signer = signer();
        // WHEN it makes a token
        let token = signer.token().unwrap();
        // THEN the token verifies with the public key, and its claims are what Snowflake expects,
        // the fingerprint being the one computed independently from the public key's DER
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let key = DecodingKey::from_rsa_pem(TestKey::get().public_pem.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Claims>(&token, &key, &validation).unwrap().claims;
        let expected_fingerprint = format!("SHA256:{}", TestKey::get().fingerprint_base64);
        assert_eq!(claims.sub, "XY12345.HEIMDALL_SVC");
        assert_eq!(claims.iss, format!("XY12345.HEIMDALL_SVC.{expected_fingerprint}"));
        assert_eq!(signer.fingerprint(), expected_fingerprint);
        assert!(claims.exp > claims.iat && claims.exp - claims.iat <= 3600, "{claims:?}");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(claims.iat.abs_diff(now) < 60, "{claims:?}");
    }

    #[test]
    fn a_token_is_reused_until_close_to_expiry() {
        let signer = signer();
        assert_eq!(signer.token().unwrap(), signer.token().unwrap());
        // A token about to expire is replaced.
        let stale = "stale".to_owned();
        *signer.current.lock().unwrap() = Some((stale.clone(), 1));
        assert_ne!(signer.token().unwrap(), stale);
    }

    #[test]
    fn account_identifiers_lose_region_and_global_suffixes_and_are_upper_cased() {
        let cases = [
            ("xy12345", "XY12345"),
            ("xy12345.us-east-1", "XY12345"),
            ("xy12345.us-east-2.aws", "XY12345"),
            ("xy12345-abcdef.global", "XY12345"),
            ("myorg-myaccount", "MYORG-MYACCOUNT"),
        ];
        for (account, expected) in cases {
            assert_eq!(jwt_account(account), expected, "{account}");
        }
    }

    #[test]
    fn an_unusable_key_is_refused_without_repeating_it() {
        let garbage = crate::private_key::fake_pem("PRIVATE KEY", "Tm90QUtleUF0QWxsU2VjcmV0");
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nTm90QUtleUF0QWxsU2VjcmV0\n-----END ENCRYPTED PRIVATE KEY-----\n";
        for (pem, expected) in [(garbage.as_str(), "not an unencrypted PKCS#8 PEM RSA private key"), (encrypted, "encrypted")] {
            let message = KeyPairJwt::new("a", "u", &PrivateKeyPem::new(pem.into())).unwrap_err();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("Tm90QUtl"), "{message}");
        }
    }

    #[test]
    fn debug_output_of_the_signer_holds_no_key() {
        let debug = format!("{:?}", signer());
        let body_line = TestKey::get().private_pem.lines().nth(1).unwrap().to_owned();
        assert!(debug.contains("XY12345.HEIMDALL_SVC") && !debug.contains(&body_line), "{debug}");
    }
}
