//! Idempotent submit: a client that lost its connection sends the same request again with the
//! same `Idempotency-Key` header and gets the first job back instead of a second one. A key is
//! the caller's own (two users may use the same key) and is remembered for
//! [`IDEMPOTENCY_KEY_TTL_SECONDS`]; the request body it came with is kept as a fingerprint, so
//! the same key with another body is told apart (and refused) rather than answered wrongly.

use sha2::{Digest, Sha256};

use crate::job::JobRequest;

/// How long a key is remembered: a day, as Stripe and the IETF draft suggest.
pub const IDEMPOTENCY_KEY_TTL_SECONDS: i64 = 24 * 3600;
/// Longest key accepted (a UUID is 36; room for a client's own scheme).
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// A checked `Idempotency-Key` of one user, with the fingerprint of the request it came with
/// and when it stops being remembered: what a store keeps beside the job it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub user: String,
    pub key: String,
    /// SHA-256 (hex) of the normalized request.
    pub fingerprint: String,
    /// Epoch seconds after which the key may name another job.
    pub expires_at: i64,
}

impl IdempotencyClaim {
    /// The claim of `key` for `user`'s `request` made at `now`; the error says what is wrong
    /// with the key.
    pub fn new(user: &str, key: &str, request: &JobRequest, now: i64) -> Result<Self, String> {
        check_key(key)?;
        Ok(Self {
            user: user.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint(request),
            expires_at: now + IDEMPOTENCY_KEY_TTL_SECONDS,
        })
    }

    /// One string naming user and key together, safe as a store key whatever characters
    /// either holds (SHA-256 hex of both, length-prefixed so `a`+`bc` ≠ `ab`+`c`).
    pub fn scoped_key(&self) -> String {
        let mut hash = Sha256::new();
        hash.update((self.user.len() as u64).to_be_bytes());
        hash.update(self.user.as_bytes());
        hash.update(self.key.as_bytes());
        hex(&hash.finalize())
    }
}

/// A key is 1 to 255 visible ASCII characters (what an HTTP header carries unchanged).
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters without spaces, e.g. a UUID"
        ));
    }
    Ok(())
}

/// The request's fingerprint: SHA-256 of its JSON with object keys sorted (serde_json's maps
/// are ordered), so the same request sent with its fields in another order is the same.
pub fn fingerprint(request: &JobRequest) -> String {
    let canonical = serde_json::to_value(request).map(|value| value.to_string()).unwrap_or_default();
    hex(&Sha256::digest(canonical.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> JobRequest {
        serde_json::from_value::<JobRequest>(json).unwrap().normalized()
    }

    #[test]
    fn the_same_request_in_another_field_order_has_the_same_fingerprint() {
        let a = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"], "context": {"p": 1, "q": 2}}));
        let b = request(serde_json::json!({"context": {"q": 2, "p": 1}, "command_criteria": ["t:x", "t:x"], "version": "1", "name": "a"}));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = request(serde_json::json!({"name": "a", "version": "2", "command_criteria": ["t:x"]}));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn keys_are_checked_and_scoped_to_their_user() {
        let job = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"]}));
        for bad in ["", "has space", "é", &"k".repeat(256)] {
            assert!(IdempotencyClaim::new("u", bad, &job, 0).unwrap_err().contains("Idempotency-Key"), "{bad:?}");
        }
        let alice = IdempotencyClaim::new("alice", "k-1", &job, 100).unwrap();
        let bob = IdempotencyClaim::new("bob", "k-1", &job, 100).unwrap();
        assert_ne!(alice.scoped_key(), bob.scoped_key());
        assert_ne!(IdempotencyClaim::new("a", "bc", &job, 0).unwrap().scoped_key(), IdempotencyClaim::new("ab", "c", &job, 0).unwrap().scoped_key());
        assert_eq!(alice.expires_at, 100 + IDEMPOTENCY_KEY_TTL_SECONDS);
    }
}
