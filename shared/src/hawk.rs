//! Hawk request signing as Taskcluster uses it (SPEC §3.1): the `Authorization: Hawk ...`
//! header, the normalised string, the MAC, the payload hash and bewits.
//!
//! Written by hand on RustCrypto (`hmac`, `sha2`) because the `hawk` crate needs ring or
//! OpenSSL, which do not build for wasm32-wasip2. Checked against vectors produced by
//! mohawk, the implementation the official Taskcluster Python client uses
//! (`shared/tests/vectors/make_hawk_vectors.py`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HawkError {
    #[error("Authorization header is not a Hawk header")]
    NotHawk,
    #[error("malformed Hawk header: {0}")]
    Malformed(String),
    #[error("Hawk header is missing `{0}`")]
    Missing(&'static str),
    #[error("malformed bewit")]
    BadBewit,
}

/// The attributes of an `Authorization: Hawk ...` header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HawkHeader {
    pub id: String,
    pub ts: i64,
    pub nonce: String,
    pub mac: String,
    pub hash: Option<String>,
    pub ext: Option<String>,
}

const KEYS: [&str; 8] = ["id", "ts", "nonce", "hash", "ext", "mac", "app", "dlg"];

/// Parses `Hawk id="...", ts="...", nonce="...", mac="..."[, hash="..."][, ext="..."]`.
pub fn parse_header(header: &str) -> Result<HawkHeader, HawkError> {
    let rest = header.trim().strip_prefix("Hawk ").ok_or(HawkError::NotHawk)?;
    let mut attrs: BTreeMap<&str, &str> = BTreeMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find("=\"").ok_or_else(|| HawkError::Malformed("expected key=\"value\"".into()))?;
        let key = s[..eq].trim();
        if !KEYS.contains(&key) {
            return Err(HawkError::Malformed(format!("unknown attribute `{key}`")));
        }
        let after = &s[eq + 2..];
        let end = after.find('"').ok_or_else(|| HawkError::Malformed(format!("unterminated `{key}`")))?;
        let value = &after[..end];
        // Hawk allows printable ASCII except `"` and `\` in attribute values.
        if value.bytes().any(|b| !(0x20..=0x7e).contains(&b) || b == b'\\') {
            return Err(HawkError::Malformed(format!("bad characters in `{key}`")));
        }
        if attrs.insert(key, value).is_some() {
            return Err(HawkError::Malformed(format!("duplicate attribute `{key}`")));
        }
        s = after[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s).trim_start();
    }
    let get = |k: &'static str| attrs.get(k).map(|v| v.to_string()).ok_or(HawkError::Missing(k));
    Ok(HawkHeader {
        id: get("id")?,
        ts: get("ts")?.parse().map_err(|_| HawkError::Malformed("ts is not a number".into()))?,
        nonce: get("nonce")?,
        mac: get("mac")?,
        hash: attrs.get("hash").map(|v| v.to_string()),
        ext: attrs.get("ext").map(|v| v.to_string()),
    })
}

/// What the MAC covers, besides the credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifacts<'a> {
    pub ts: i64,
    pub nonce: &'a str,
    pub method: &'a str,
    /// Path and query, exactly as sent (still percent-encoded).
    pub resource: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub hash: Option<&'a str>,
    pub ext: Option<&'a str>,
}

/// `hawk.1.<kind>` then one line per artifact.
pub fn normalized_string(kind: &str, a: &Artifacts<'_>) -> String {
    format!(
        "hawk.1.{kind}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        a.ts,
        a.nonce,
        a.method.to_ascii_uppercase(),
        a.resource,
        a.host.to_ascii_lowercase(),
        a.port,
        a.hash.unwrap_or(""),
        a.ext.unwrap_or("").replace('\\', "\\\\").replace('\n', "\\n"),
    )
}

/// base64(HMAC-SHA256(key, normalised string)).
pub fn mac(key: &[u8], kind: &str, a: &Artifacts<'_>) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(normalized_string(kind, a).as_bytes());
    STANDARD.encode(m.finalize().into_bytes())
}

/// The payload hash: base64(SHA-256 of `hawk.1.payload`, the bare lower-cased content
/// type, and the body).
pub fn payload_hash(content_type: &str, body: &[u8]) -> String {
    let bare = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut h = Sha256::new();
    h.update(b"hawk.1.payload\n");
    h.update(bare.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.update(b"\n");
    STANDARD.encode(h.finalize())
}

/// The `Authorization` header a client sends (as the official clients build it): a
/// payload hash always, and `ext` when given (base64 of its JSON).
/// A request a client is about to send, as far as its signature is concerned.
pub struct Outgoing<'a> {
    pub method: &'a str,
    /// Absolute.
    pub url: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

pub fn client_header(client_id: &str, access_token: &str, req: &Outgoing<'_>, ext: Option<&serde_json::Value>, ts: i64, nonce: &str) -> Option<String> {
    let Outgoing { method, url, content_type, body } = *req;
    let (scheme, rest) = url.split_once("://")?;
    let (authority, resource) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let resource = if resource.is_empty() { "/" } else { resource };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let hash = payload_hash(content_type, body);
    let ext = ext.map(|e| STANDARD.encode(e.to_string()));
    let a = Artifacts { ts, nonce, method, resource, host, port, hash: Some(&hash), ext: ext.as_deref() };
    let mac = mac(access_token.as_bytes(), "header", &a);
    let ext_part = ext.map(|e| format!(", ext=\"{e}\"")).unwrap_or_default();
    Some(format!(r#"Hawk id="{client_id}", ts="{ts}", nonce="{nonce}", hash="{hash}"{ext_part}, mac="{mac}""#))
}

/// A decoded `bewit` query parameter: `id\exp\mac\ext`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bewit {
    pub id: String,
    pub exp: i64,
    pub mac: String,
    pub ext: String,
}

pub fn parse_bewit(bewit: &str) -> Result<Bewit, HawkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(bewit.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(bewit))
        .map_err(|_| HawkError::BadBewit)?;
    let text = String::from_utf8(bytes).map_err(|_| HawkError::BadBewit)?;
    let parts: Vec<&str> = text.split('\\').collect();
    let [id, exp, mac, ext] = parts.as_slice() else { return Err(HawkError::BadBewit) };
    Ok(Bewit {
        id: id.to_string(),
        exp: exp.parse().map_err(|_| HawkError::BadBewit)?,
        mac: mac.to_string(),
        ext: ext.to_string(),
    })
}

/// The decoded `ext` attribute: Taskcluster's certificate and authorizedScopes.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ext {
    pub certificate: Option<Certificate>,
    pub authorized_scopes: Option<Vec<String>>,
}

/// Decodes `ext`: base64 JSON, in either alphabet (the Python client sends URL-safe, the
/// JavaScript client standard), with or without padding.
pub fn decode_ext(ext: &str) -> Result<Ext, CredentialError> {
    let normal: String = ext.trim_end_matches('=').chars().map(|c| match c { '-' => '+', '_' => '/', c => c }).collect();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(normal)
        .map_err(|_| CredentialError::BadExt("ext is not base64".into()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| CredentialError::BadExt("ext is not JSON".into()))?;
    if !value.is_object() {
        return Err(CredentialError::BadExt("ext must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| CredentialError::BadExt(e.to_string()))
}

/// A temporary-credentials certificate (carried in `ext.certificate`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Certificate {
    pub version: u64,
    pub scopes: Vec<String>,
    /// Milliseconds since the epoch.
    pub start: i64,
    pub expiry: i64,
    pub seed: String,
    pub signature: String,
    #[serde(default)]
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialError {
    #[error("bad ext: {0}")]
    BadExt(String),
    #[error("certificate: {0}")]
    BadCertificate(String),
}

const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
const THIRTY_ONE_DAYS_MS: i64 = 31 * 24 * 60 * 60 * 1000;

/// The temporary access token for a certificate: base64url, unpadded, of
/// HMAC-SHA256(issuer's access token, seed).
pub fn temporary_access_token(issuer_access_token: &[u8], seed: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(issuer_access_token).expect("any key length");
    m.update(seed.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

impl Certificate {
    /// Who issued it: `issuer` for named credentials, else the Hawk `id` itself.
    pub fn issuer_of<'a>(&'a self, hawk_id: &'a str) -> &'a str {
        self.issuer.as_deref().unwrap_or(hawk_id)
    }

    pub(crate) fn signature_for(&self, hawk_id: &str, issuer_access_token: &[u8]) -> String {
        let mut lines = vec![format!("version:{}", self.version)];
        if let Some(issuer) = &self.issuer {
            lines.push(format!("clientId:{hawk_id}"));
            lines.push(format!("issuer:{issuer}"));
        }
        lines.push(format!("seed:{}", self.seed));
        lines.push(format!("start:{}", self.start));
        lines.push(format!("expiry:{}", self.expiry));
        lines.push("scopes:".to_string());
        lines.extend(self.scopes.iter().cloned());
        let mut m = Hmac::<Sha256>::new_from_slice(issuer_access_token).expect("any key length");
        m.update(lines.join("\n").as_bytes());
        STANDARD.encode(m.finalize().into_bytes())
    }

    /// Checks the certificate's form, validity window and signature (SPEC §3.1) and
    /// returns the temporary access token that must have signed the request. Whether
    /// the issuer may grant these scopes is the caller's check (it needs the roles).
    pub fn verify(&self, hawk_id: &str, issuer_access_token: &[u8], now_ms: i64) -> Result<String, CredentialError> {
        let bad = |m: &str| Err(CredentialError::BadCertificate(m.to_string()));
        if self.version != 1 {
            return bad("version must be 1");
        }
        if self.seed.len() != 44 {
            return bad("seed must be 44 characters");
        }
        if self.issuer.as_deref() == Some(hawk_id) {
            return bad("a named certificate's issuer must differ from its clientId");
        }
        if !self.scopes.iter().all(|s| crate::scopes::is_valid_scope(s)) {
            return bad("scopes must be printable ASCII");
        }
        // Every number here is the caller's, unchecked until the signature is: saturating
        // arithmetic, so no value overflows (a panic in debug builds, a wrap in release).
        if self.start > now_ms.saturating_add(FIVE_MINUTES_MS) {
            return bad("start is in the future");
        }
        if self.expiry < now_ms.saturating_sub(FIVE_MINUTES_MS) {
            return bad("expired");
        }
        if self.expiry < self.start {
            return bad("expiry is before start");
        }
        if self.expiry.saturating_sub(self.start) > THIRTY_ONE_DAYS_MS {
            return bad("valid for more than 31 days");
        }
        let expected = self.signature_for(hawk_id, issuer_access_token);
        if !crate::ids::secrets_equal(expected.as_bytes(), self.signature.as_bytes()) {
            return bad("signature does not match");
        }
        Ok(temporary_access_token(issuer_access_token, &self.seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../tests/vectors/hawk_vectors.json")).unwrap()
    }

    /// scheme://host[:port]/resource -> (host, port, resource)
    fn split_url(url: &str) -> (String, u16, String) {
        let (scheme, rest) = url.split_once("://").unwrap();
        let slash = rest.find('/').unwrap();
        let (authority, resource) = rest.split_at(slash);
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap()),
            None => (authority.to_string(), if scheme == "https" { 443 } else { 80 }),
        };
        (host, port, resource.to_string())
    }

    #[test]
    fn headers_and_macs_match_mohawk() {
        let v = vectors();
        let key = v["credentials"]["key"].as_str().unwrap().as_bytes();
        for case in v["requests"].as_array().unwrap() {
            let header = parse_header(case["header"].as_str().unwrap()).unwrap();
            let parsed = &case["parsed"];
            assert_eq!(header.id, parsed["id"].as_str().unwrap());
            assert_eq!(header.ts.to_string(), parsed["ts"].as_str().unwrap());
            assert_eq!(header.ext.as_deref(), parsed["ext"].as_str());
            let content = case["content"].as_str().unwrap();
            let content_type = case["content_type"].as_str().unwrap();
            assert_eq!(header.hash.as_deref(), Some(payload_hash(content_type, content.as_bytes()).as_str()));
            let (host, port, resource) = split_url(case["url"].as_str().unwrap());
            let artifacts = Artifacts {
                ts: header.ts,
                nonce: &header.nonce,
                method: case["method"].as_str().unwrap(),
                resource: &resource,
                host: &host,
                port,
                hash: header.hash.as_deref(),
                ext: header.ext.as_deref(),
            };
            assert_eq!(mac(key, "header", &artifacts), header.mac, "{}", case["url"]);
            // Any change to what is signed changes the MAC.
            let tampered = Artifacts { resource: "/api/hooks/v1/hooks/g/other", ..artifacts.clone() };
            assert_ne!(mac(key, "header", &tampered), header.mac);
            assert_ne!(mac(b"wrong key", "header", &artifacts), header.mac);
        }
    }

    #[test]
    fn payload_hashes_match_mohawk() {
        for case in vectors()["payloadHashes"].as_array().unwrap() {
            let got = payload_hash(case["contentType"].as_str().unwrap(), case["content"].as_str().unwrap().as_bytes());
            assert_eq!(got, case["hash"].as_str().unwrap(), "{case}");
        }
    }

    #[test]
    fn bewits_match_mohawk() {
        let v = vectors();
        let key = v["credentials"]["key"].as_str().unwrap().as_bytes();
        for case in v["bewits"].as_array().unwrap() {
            let b = parse_bewit(case["bewit"].as_str().unwrap()).unwrap();
            assert_eq!(b.id, v["credentials"]["id"].as_str().unwrap());
            assert_eq!(b.exp, case["exp"].as_i64().unwrap());
            let (host, port, resource) = split_url(case["url"].as_str().unwrap());
            let artifacts = Artifacts { ts: b.exp, nonce: "", method: "GET", resource: &resource, host: &host, port, hash: None, ext: None };
            assert_eq!(mac(key, "bewit", &artifacts), b.mac);
        }
        assert_eq!(parse_bewit("not base64!"), Err(HawkError::BadBewit));
        assert_eq!(parse_bewit(&URL_SAFE_NO_PAD.encode("a\\b")), Err(HawkError::BadBewit));
    }

    #[test]
    fn temporary_credentials_match_the_official_client() {
        let v = vectors();
        for case in v["temporaryCredentials"].as_array().unwrap() {
            let issuer_token = case["issuerAccessToken"].as_str().unwrap().as_bytes();
            let result = &case["result"];
            let client_id = result["clientId"].as_str().unwrap();
            let cert: Certificate = serde_json::from_str(result["certificate"].as_str().unwrap()).unwrap();
            assert_eq!(cert.issuer_of(client_id), case["issuerClientId"].as_str().unwrap());
            let during = cert.start + 1000;
            let token = cert.verify(client_id, issuer_token, during).unwrap();
            assert_eq!(token, result["accessToken"].as_str().unwrap());

            // The Python client's URL-safe ext decodes to the same certificate.
            let ext = decode_ext(case["extBase64"].as_str().unwrap()).unwrap();
            assert_eq!(ext.certificate.as_ref(), Some(&cert));
            assert_eq!(ext.authorized_scopes, Some(vec!["hooks:trigger-hook:g/h".to_string()]));

            // Each rule refuses.
            let err = |c: &Certificate, id: &str, key: &[u8], now: i64| c.verify(id, key, now).unwrap_err().to_string();
            assert!(err(&cert, client_id, b"wrong issuer token", during).contains("signature"));
            let mut widened = cert.clone();
            widened.scopes.push("*".into());
            assert!(err(&widened, client_id, issuer_token, during).contains("signature"));
            assert!(err(&cert, client_id, issuer_token, cert.expiry + 6 * 60 * 1000).contains("expired"));
            assert!(err(&cert, client_id, issuer_token, cert.start - 6 * 60 * 1000).contains("future"));
            assert!(cert.verify(client_id, issuer_token, cert.expiry + 4 * 60 * 1000).is_ok(), "5 minutes of skew allowed");
            let mut long = cert.clone();
            long.expiry = long.start + THIRTY_ONE_DAYS_MS + 1;
            assert!(err(&long, client_id, issuer_token, during).contains("31 days"));
            // The caller's numbers at the ends of the range: refused, never an overflow.
            let mut backwards = cert.clone();
            (backwards.start, backwards.expiry) = (i64::MIN, i64::MAX);
            assert!(err(&backwards, client_id, issuer_token, during).contains("31 days"));
            (backwards.start, backwards.expiry) = (during, i64::MIN);
            assert!(err(&backwards, client_id, issuer_token, during).contains("expired"));
            (backwards.start, backwards.expiry) = (during, during - 1);
            assert!(err(&backwards, client_id, issuer_token, during).contains("before start"));
            assert!(err(&cert, client_id, issuer_token, i64::MIN).contains("future"));
            assert!(err(&cert, client_id, issuer_token, i64::MAX).contains("expired"));
            let mut v2 = cert.clone();
            v2.version = 2;
            assert!(err(&v2, client_id, issuer_token, during).contains("version"));
            if let Some(issuer) = &cert.issuer {
                assert!(err(&cert, issuer, issuer_token, during).contains("differ"));
            }
        }
    }

    #[test]
    fn ext_in_either_alphabet() {
        let json = br#"{"authorizedScopes":["a>b?"]}"#;
        for encoded in [STANDARD.encode(json), URL_SAFE.encode(json), URL_SAFE_NO_PAD.encode(json)] {
            assert_eq!(decode_ext(&encoded).unwrap().authorized_scopes, Some(vec!["a>b?".to_string()]));
        }
        assert!(decode_ext("!!").is_err());
        assert!(decode_ext(&STANDARD.encode("[1]")).is_err());
        assert!(decode_ext(&STANDARD.encode("nope")).is_err());
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(parse_header("Basic abc"), Err(HawkError::NotHawk));
        assert_eq!(parse_header(r#"Hawk id="a", ts="1", nonce="n""#), Err(HawkError::Missing("mac")));
        assert!(matches!(parse_header(r#"Hawk id="a", ts="x", nonce="n", mac="m""#), Err(HawkError::Malformed(_))));
        assert!(matches!(parse_header(r#"Hawk id="a", id="b", ts="1", nonce="n", mac="m""#), Err(HawkError::Malformed(_))));
        assert!(matches!(parse_header(r#"Hawk id="a", ts="1", nonce="n", mac="m", evil="x""#), Err(HawkError::Malformed(_))));
        assert!(matches!(parse_header(r#"Hawk id="a\b", ts="1", nonce="n", mac="m""#), Err(HawkError::Malformed(_))));
        assert!(matches!(parse_header(r#"Hawk id="a"#), Err(HawkError::Malformed(_))));
    }
}
