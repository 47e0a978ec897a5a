//! An RSA key pair made once per test binary (no key file is ever committed), and its
//! fingerprint computed independently of the plugin: straight from the public PEM's bytes.
//! Shared by the snowflake plugin's tests and the end-to-end tests.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::RsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

pub struct TestKey {
    /// The public key as a JWK (`kty`, `n`, `e`), for verifiers that take a JWKS.
    pub public_jwk: serde_json::Value,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
    /// base64(SHA-256(DER SubjectPublicKeyInfo)), without the `SHA256:` prefix.
    pub fingerprint_base64: String,
}

impl TestKey {
    /// The binary's key, made on first use (2048 bits: slow in a debug build, so only once).
    pub fn get() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(TestKey::generate)
    }

    pub fn generate() -> TestKey {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key is generated");
        let private_pem = key.to_pkcs8_pem(LineEnding::LF).expect("the key encodes").to_string();
        let public_pem = key.to_public_key().to_public_key_pem(LineEnding::LF).expect("the public key encodes");
        let fingerprint_base64 = fingerprint_of_pem(&public_pem);
        let public = key.to_public_key();
        let public_jwk = serde_json::json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test-key",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        TestKey { public_jwk, private_pem, public_pem, fingerprint_base64 }
    }
}

/// The PEM body is the base64 of the DER SubjectPublicKeyInfo: decode it and hash it.
fn fingerprint_of_pem(public_pem: &str) -> String {
    let body: String = public_pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = STANDARD.decode(body).expect("a PEM body is base64");
    STANDARD.encode(Sha256::digest(der))
}
