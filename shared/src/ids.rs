//! Identifiers: hook group and hook ids (SPEC §1.1) and Taskcluster slugids.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;

/// Why an identifier was refused; the message names the rule, as upstream's does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} `{value}` must match regular expression {pattern}")]
pub struct InvalidId {
    pub name: &'static str,
    pub value: String,
    pub pattern: &'static str,
}

fn check(name: &'static str, value: &str, allow_slash: bool) -> Result<(), InvalidId> {
    let ok = !value.is_empty()
        && value.len() <= 1000
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (allow_slash && b == b'/'));
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            name,
            value: value.to_string(),
            pattern: if allow_slash { "^[a-zA-Z0-9-_/]{1,1000}$" } else { "^[a-zA-Z0-9-_]{1,1000}$" },
        })
    }
}

/// `hookGroupId`: letters, digits, `-`, `_`; 1–1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookGroupId(String);

/// `hookId`: as a group id, plus `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookId(String);

impl HookGroupId {
    pub fn new(value: &str) -> Result<Self, InvalidId> {
        check("hookGroupId", value, false).map(|()| Self(value.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl HookId {
    pub fn new(value: &str) -> Result<Self, InvalidId> {
        check("hookId", value, true).map(|()| Self(value.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HookGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for HookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fresh "nice" slugid (v4): a random UUIDv4 whose first bit is cleared, in URL-safe
/// base64 without padding, so it never starts with `-`.
pub fn nice_slugid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the platform's random source failed");
    slugid_from_bytes(bytes)
}

/// Shapes 16 bytes into a nice v4 slugid. Deterministic: the same bytes give the same id,
/// which is how idempotent fires derive their taskId from a digest.
pub fn slugid_from_bytes(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    bytes[0] &= 0x7f; // "nice": first base64 character in [A-Za-f]
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A slugid derived from `parts` (e.g. a hook's id and a message id): the same parts
/// always give the same taskId, so a redelivered message or a retried fire creates the
/// same task, which the Queue then recognises. Parts are length-prefixed so that
/// (`ab`, `c`) and (`a`, `bc`) differ.
pub fn slugid_from_parts(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    slugid_from_bytes(bytes)
}

/// Compares two secrets (tokens, MACs) in time that depends only on their lengths, so a
/// caller cannot learn a secret byte by byte from response times.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `s` has the shape of a v4 slugid (the pattern the Queue enforces on taskIds).
pub fn is_slugid(s: &str) -> bool {
    let b = s.as_bytes();
    let url64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    b.len() == 22
        && b.iter().all(|&c| url64(c))
        && (b'Q'..=b'T').contains(&b[8])
        && b"CGKOSWaeimquy26-".contains(&b[10])
        && b"AQgw".contains(&b[21])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_url_parameter_rules() {
        assert!(HookGroupId::new("my-group_1").is_ok());
        assert!(HookGroupId::new("a/b").is_err());
        assert!(HookGroupId::new("").is_err());
        assert!(HookGroupId::new(&"x".repeat(1001)).is_err());
        assert!(HookGroupId::new(&"x".repeat(1000)).is_ok());
        assert!(HookId::new("bar/slash").is_ok());
        let err = HookId::new("a b").unwrap_err();
        assert_eq!(err.to_string(), "hookId `a b` must match regular expression ^[a-zA-Z0-9-_/]{1,1000}$");
    }

    #[test]
    fn slugids_are_nice_and_valid() {
        for _ in 0..500 {
            let id = nice_slugid();
            assert!(is_slugid(&id), "{id}");
            assert!(id.as_bytes()[0].is_ascii_alphabetic() && id.as_bytes()[0] <= b'f', "{id}");
        }
        assert_ne!(nice_slugid(), nice_slugid());
        assert_eq!(slugid_from_bytes([0xff; 16]), slugid_from_bytes([0xff; 16]));
        assert!(is_slugid(&slugid_from_bytes([0xff; 16])));
        assert!(!is_slugid("not-a-slugid"));
    }

    #[test]
    fn derived_slugids_are_deterministic_and_separated() {
        let a = slugid_from_parts(&[b"hook-id:g/h", b"message-1"]);
        assert_eq!(a, slugid_from_parts(&[b"hook-id:g/h", b"message-1"]));
        assert!(is_slugid(&a));
        assert_ne!(a, slugid_from_parts(&[b"hook-id:g/h", b"message-2"]));
        assert_ne!(slugid_from_parts(&[b"ab", b"c"]), slugid_from_parts(&[b"a", b"bc"]));
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal(b"token", b"token"));
        assert!(!secrets_equal(b"token", b"tokeN"));
        assert!(!secrets_equal(b"token", b"token2"));
        assert!(secrets_equal(b"", b""));
    }
}
