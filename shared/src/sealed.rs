//! Secrets at rest (trigger tokens, `nextTaskId`, client access tokens): AES-256-GCM with
//! a key from a secret Spin variable, so a copy of the key-value store alone reveals none
//! of them.
//!
//! Each sealed value is bound to the store key it lives under (the AEAD's associated
//! data): a ciphertext copied into another record fails to open instead of handing one
//! hook's token to another.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

const PREFIX: &str = "v1:";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SealError {
    #[error("the secrets key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`); got {0} bytes")]
    KeyLength(usize),
    #[error("the secrets key is not valid base64")]
    KeyEncoding,
    /// Wrong key, a tampered value, or a value moved from another record. Deliberately
    /// says no more.
    #[error("a stored secret could not be decrypted (wrong secrets key, or the record was tampered with)")]
    Open,
}

#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// From the `secrets_key` variable: 32 bytes in standard or URL-safe base64.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SealError::KeyEncoding)?;
        if bytes.len() != 32 {
            return Err(SealError::KeyLength(bytes.len()));
        }
        Ok(Self(Aes256Gcm::new_from_slice(&bytes).expect("length checked")))
    }

    /// Encrypts `secret` for the record stored under `record_key`.
    pub fn seal(&self, record_key: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the platform's random source failed");
        let ciphertext = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: record_key.as_bytes() })
            .expect("AES-GCM encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, record_key: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or(SealError::Open)?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: record_key.as_bytes() })
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn round_trip_and_each_refusal() {
        let key = SealingKey::from_base64(KEY).unwrap();
        let sealed = key.seal("hook/g/h", "token-123");
        assert!(!sealed.contains("token-123"));
        assert_ne!(sealed, key.seal("hook/g/h", "token-123"), "a fresh nonce every time");
        assert_eq!(key.open("hook/g/h", &sealed).unwrap(), "token-123");
        assert_eq!(key.open("hook/g/other", &sealed), Err(SealError::Open), "bound to its record");
        let other = SealingKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(other.open("hook/g/h", &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open("hook/g/h", std::str::from_utf8(&tampered).unwrap()), Err(SealError::Open));
        assert_eq!(key.open("hook/g/h", "token-123"), Err(SealError::Open), "plaintext is not accepted");
    }

    #[test]
    fn key_must_be_32_bytes_of_base64() {
        assert_eq!(SealingKey::from_base64("c2hvcnQ=").unwrap_err(), SealError::KeyLength(5));
        assert_eq!(SealingKey::from_base64("not base64!").unwrap_err(), SealError::KeyEncoding);
        assert!(SealingKey::from_base64(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        assert_eq!(format!("{:?}", SealingKey::from_base64(KEY).unwrap()), "SealingKey(..)");
    }
}
