//! Authenticating a request as Taskcluster's Auth service does (SPEC §3.1), locally: the
//! Hawk header or a bewit, temporary credentials, `authorizedScopes`, and role expansion.
//! Pure: the caller supplies the client lookup, the roles and the time.

use crate::hawk::{self, Artifacts, Certificate};
use crate::ids::secrets_equal;
use crate::scopes::{Roles, ScopeExpr, ScopeSet};

/// A permanent client, as the client store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    pub access_token: String,
    /// Unexpanded.
    pub scopes: Vec<String>,
}

/// The request, as far as Hawk is concerned.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Raw path and query, as sent.
    pub resource: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub authorization: Option<&'a str>,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// Who is calling and what they may do (scopes expanded through the roles).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// `None` for anonymous requests.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
}

/// Authentication failed (HTTP 401); the text says why without revealing secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct AuthFailed(pub String);

const MAX_SKEW_SECONDS: i64 = 15 * 60;

fn failed(m: impl Into<String>) -> AuthFailed {
    AuthFailed(m.into())
}

fn expand_with_anonymous(roles: &Roles, scopes: &[String]) -> Result<Vec<String>, AuthFailed> {
    roles.expand(scopes.iter().map(String::as_str).chain(["assume:anonymous"])).map_err(|e| failed(e.to_string()))
}

/// The host and port a signature is checked against (SPEC §3.1): host and port from the
/// `Host` header (the port defaulting by scheme); `X-Forwarded-Port` overrides the port,
/// else `X-Forwarded-Proto: https` makes it 443. Clients sign the URL they used, which a
/// TLS-terminating proxy in front of Spin changes. Header names are lower-case.
pub fn signed_host_and_port(headers: &[(String, String)], scheme: &str) -> Option<(String, u16)> {
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let host_header = header("host")?;
    let (host, port) = match host_header.rsplit_once(':') {
        // `[::1]:3000`, `example.com:8443`; a bare IPv6 literal `[::1]` has no port.
        Some((h, p)) if !p.contains(']') => (h.to_string(), p.parse::<u16>().ok()?),
        _ => (host_header.to_string(), if scheme == "https" { 443 } else { 80 }),
    };
    let port = match (header("x-forwarded-port"), header("x-forwarded-proto")) {
        (Some(p), _) => p.parse().ok()?,
        (None, Some(proto)) if proto.eq_ignore_ascii_case("https") => 443,
        _ => port,
    };
    Some((host, port))
}

/// Splits `bewit=<value>` out of the query; the MAC covers the resource without it.
fn take_bewit(resource: &str) -> Option<(String, String)> {
    let (path, query) = resource.split_once('?')?;
    let mut bewit = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("bewit=") {
            Some(v) => {
                bewit = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    let bewit = bewit?;
    let resource = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
    Some((bewit, resource))
}

/// Authenticates `req` at `now_ms`. No credentials at all is not a failure: the caller
/// is anonymous, with the scopes of the `anonymous` role.
pub fn authenticate(
    req: &SignedRequest<'_>,
    clients: &dyn Fn(&str) -> Option<Client>,
    roles: &Roles,
    now_ms: i64,
) -> Result<Caller, AuthFailed> {
    let now_s = now_ms.div_euclid(1000);
    let bewit = take_bewit(req.resource);
    match (req.authorization, bewit) {
        (Some(_), Some(_)) => Err(failed("a request may not carry both a bewit and an Authorization header")),
        (None, None) => Ok(Caller { client_id: None, scopes: expand_with_anonymous(roles, &[])? }),
        (None, Some((bewit, resource))) => {
            if !req.method.eq_ignore_ascii_case("GET") {
                return Err(failed("bewits are only accepted on GET requests"));
            }
            let b = hawk::parse_bewit(&percent_encoding::percent_decode_str(&bewit).decode_utf8_lossy())
                .map_err(|e| failed(e.to_string()))?;
            if b.exp < now_s {
                return Err(failed("bewit has expired"));
            }
            let client = clients(&b.id).ok_or_else(|| failed(format!("unknown client `{}`", b.id)))?;
            let artifacts = Artifacts {
                ts: b.exp,
                nonce: "",
                method: "GET",
                resource: &resource,
                host: req.host,
                port: req.port,
                hash: None,
                ext: (!b.ext.is_empty()).then_some(b.ext.as_str()),
            };
            let expected = hawk::mac(client.access_token.as_bytes(), "bewit", &artifacts);
            if !secrets_equal(expected.as_bytes(), b.mac.as_bytes()) {
                return Err(failed("bad bewit signature"));
            }
            let ext = match b.ext.as_str() {
                "" => hawk::Ext::default(),
                e => hawk::decode_ext(e).map_err(|e| failed(e.to_string()))?,
            };
            finish(&b.id, client, ext, roles)
        }
        (Some(header), None) => {
            let h = hawk::parse_header(header).map_err(|e| failed(e.to_string()))?;
            let ext = match h.ext.as_deref() {
                None | Some("") => hawk::Ext::default(),
                Some(e) => hawk::decode_ext(e).map_err(|e| failed(e.to_string()))?,
            };
            // The key that must have signed: the client's own, or a certificate's
            // temporary token.
            let (key, client) = match &ext.certificate {
                None => {
                    let c = clients(&h.id).ok_or_else(|| failed(format!("unknown client `{}`", h.id)))?;
                    (c.access_token.clone(), c)
                }
                Some(cert) => {
                    let issuer_id = cert.issuer_of(&h.id);
                    let issuer = clients(issuer_id).ok_or_else(|| failed(format!("unknown issuer `{issuer_id}`")))?;
                    let key = cert.verify(&h.id, issuer.access_token.as_bytes(), now_ms).map_err(|e| failed(e.to_string()))?;
                    (key, issuer)
                }
            };
            let artifacts = Artifacts {
                ts: h.ts,
                nonce: &h.nonce,
                method: req.method,
                resource: req.resource,
                host: req.host,
                port: req.port,
                hash: h.hash.as_deref(),
                ext: h.ext.as_deref(),
            };
            let expected = hawk::mac(key.as_bytes(), "header", &artifacts);
            if !secrets_equal(expected.as_bytes(), h.mac.as_bytes()) {
                return Err(failed("bad mac"));
            }
            // `ts` is the caller's number: the distance without overflow.
            if now_s.abs_diff(h.ts) > MAX_SKEW_SECONDS.unsigned_abs() {
                return Err(failed("timestamp is more than 15 minutes from the server's clock"));
            }
            if let Some(hash) = &h.hash {
                let actual = hawk::payload_hash(req.content_type, req.body);
                if !secrets_equal(actual.as_bytes(), hash.as_bytes()) {
                    return Err(failed("payload hash does not match the body"));
                }
            }
            finish(&h.id, client, ext, roles)
        }
    }
}

/// Applies the certificate's and `authorizedScopes`' limits, then expands.
fn finish(hawk_id: &str, client: Client, ext: hawk::Ext, roles: &Roles) -> Result<Caller, AuthFailed> {
    let mut scopes = client.scopes.clone();
    if let Some(cert) = &ext.certificate {
        check_certificate_scopes(cert, hawk_id, &client, roles)?;
        scopes = cert.scopes.clone();
    }
    if let Some(authorized) = &ext.authorized_scopes {
        if let Some(bad) = authorized.iter().find(|s| !crate::scopes::is_valid_scope(s)) {
            return Err(failed(format!("authorizedScopes contains an invalid scope {bad:?}")));
        }
        let have = expand_with_anonymous(roles, &scopes)?;
        let want = ScopeExpr::AllOf(authorized.iter().cloned().map(ScopeExpr::Scope).collect());
        if let Some(missing) = want.unsatisfied(&ScopeSet::new(&have)) {
            return Err(failed(format!("authorizedScopes exceed the credentials' scopes; missing:\n{missing}")));
        }
        scopes = authorized.clone();
    }
    Ok(Caller { client_id: Some(hawk_id.to_string()), scopes: expand_with_anonymous(roles, &scopes)? })
}

fn check_certificate_scopes(cert: &Certificate, hawk_id: &str, issuer: &Client, roles: &Roles) -> Result<(), AuthFailed> {
    let issuer_scopes = ScopeSet::new(expand_with_anonymous(roles, &issuer.scopes)?);
    let mut want: Vec<ScopeExpr> = cert.scopes.iter().cloned().map(ScopeExpr::Scope).collect();
    if cert.issuer.is_some() {
        want.push(ScopeExpr::Scope(format!("auth:create-client:{hawk_id}")));
    }
    match ScopeExpr::AllOf(want).unsatisfied(&issuer_scopes) {
        None => Ok(()),
        Some(missing) => Err(failed(format!("the certificate's issuer lacks scopes it grants:\n{missing}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::Role;
    use base64::Engine;
    use serde_json::{json, Value};

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../tests/vectors/hawk_vectors.json")).unwrap()
    }

    fn roles() -> Roles {
        Roles::new(vec![Role { role_id: "anonymous".into(), scopes: vec!["hooks:get:public:*".into()] }])
    }

    fn clients(id: &str) -> Option<Client> {
        let v = vectors();
        match id {
            i if i == v["credentials"]["id"].as_str().unwrap() => Some(Client {
                client_id: i.into(),
                access_token: v["credentials"]["key"].as_str().unwrap().into(),
                scopes: vec!["hooks:*".into()],
            }),
            "static/issuer" => Some(Client {
                client_id: id.into(),
                access_token: "issuer-access-token-0123456789abcdef".into(),
                scopes: vec!["hooks:trigger-hook:*".into(), "queue:create-task:*".into(), "auth:create-client:project/*".into()],
            }),
            _ => None,
        }
    }

    /// The PUT from the mohawk vectors, as the server sees it.
    fn mohawk_put() -> (String, String) {
        let case = vectors()["requests"][1].clone();
        (case["header"].as_str().unwrap().to_string(), case["content"].as_str().unwrap().to_string())
    }

    fn put<'a>(header: &'a str, body: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "PUT",
            resource: "/api/hooks/v1/hooks/my-group/nightly%2Fbuild?x=1",
            host: "127.0.0.1",
            port: 3000,
            authorization: Some(header),
            content_type: "application/json",
            body: body.as_bytes(),
        }
    }

    const TS_MS: i64 = 1_795_436_101_000;

    #[test]
    fn a_mohawk_signed_request_authenticates() {
        let (header, body) = mohawk_put();
        let caller = authenticate(&put(&header, &body), &clients, &roles(), TS_MS + 60_000).unwrap();
        assert_eq!(caller.client_id.as_deref(), Some("static/taskhooks/root"));
        assert!(caller.scopes.contains(&"hooks:*".to_string()));
        assert!(caller.scopes.contains(&"assume:anonymous".to_string()));
    }

    #[test]
    fn a_signed_timestamp_at_the_ends_of_the_range_is_refused_without_overflow() {
        let v = vectors();
        let (id, key) = (v["credentials"]["id"].as_str().unwrap(), v["credentials"]["key"].as_str().unwrap());
        for ts in [i64::MIN, i64::MIN + 1, -1, i64::MAX] {
            let url = "http://127.0.0.1:3000/api/hooks/v1/hooks/my-group/nightly%2Fbuild?x=1";
            let outgoing = crate::hawk::Outgoing { method: "PUT", url, content_type: "application/json", body: b"{}" };
            let header = crate::hawk::client_header(id, key, &outgoing, None, ts, "nonce").unwrap();
            let req = put(&header, "{}");
            let err = authenticate(&req, &clients, &roles(), TS_MS).unwrap_err().0;
            assert!(err.contains("15 minutes"), "ts {ts}: {err}");
        }
    }

    #[test]
    fn each_failure_is_refused() {
        let (header, body) = mohawk_put();
        let r = roles();
        let fail = |req: &SignedRequest<'_>, now: i64| authenticate(req, &clients, &r, now).unwrap_err().0;
        assert!(fail(&put(&header, &body), TS_MS + 16 * 60_000).contains("15 minutes"));
        assert!(fail(&put(&header, &body), TS_MS - 16 * 60_000).contains("15 minutes"));
        assert!(fail(&put(&header, r#"{"metadata": {"name": "evil"}}"#), TS_MS).contains("payload hash"));
        let mut other_path = put(&header, &body);
        other_path.resource = "/api/hooks/v1/hooks/my-group/other";
        assert_eq!(fail(&other_path, TS_MS), "bad mac");
        let mut other_port = put(&header, &body);
        other_port.port = 3001;
        assert_eq!(fail(&other_port, TS_MS), "bad mac");
        let unknown = header.replace("static/taskhooks/root", "static/nobody");
        assert!(fail(&put(&unknown, &body), TS_MS).contains("unknown client"));
        assert!(fail(&put("Hawk nonsense", &body), TS_MS).contains("malformed"));
    }

    #[test]
    fn no_credentials_means_anonymous() {
        let req = SignedRequest { method: "GET", resource: "/api/hooks/v1/hooks", host: "h", port: 80, authorization: None, content_type: "", body: b"" };
        let caller = authenticate(&req, &clients, &roles(), TS_MS).unwrap();
        assert_eq!(caller, Caller { client_id: None, scopes: vec!["assume:anonymous".into(), "hooks:get:public:*".into()] });
    }

    /// Signs like a client with temporary credentials (the MAC code is itself checked
    /// against mohawk).
    fn sign_with_certificate(case: &Value, ext_json: Value, now_s: i64) -> String {
        let result = &case["result"];
        let ext = base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&ext_json).unwrap());
        let hash = hawk::payload_hash("", b"");
        let artifacts = Artifacts { ts: now_s, nonce: "n", method: "GET", resource: "/api/hooks/v1/hooks/g/h", host: "h", port: 443, hash: Some(&hash), ext: Some(&ext) };
        let mac = hawk::mac(result["accessToken"].as_str().unwrap().as_bytes(), "header", &artifacts);
        format!(r#"Hawk id="{}", ts="{now_s}", nonce="n", hash="{hash}", ext="{ext}", mac="{mac}""#, result["clientId"].as_str().unwrap())
    }

    #[test]
    fn temporary_credentials_and_authorized_scopes() {
        let v = vectors();
        let r = roles();
        for case in v["temporaryCredentials"].as_array().unwrap() {
            let cert: Value = serde_json::from_str(case["result"]["certificate"].as_str().unwrap()).unwrap();
            let now_s = cert["start"].as_i64().unwrap() / 1000 + 60;
            let get = |header: &str| {
                let req = SignedRequest { method: "GET", resource: "/api/hooks/v1/hooks/g/h", host: "h", port: 443, authorization: Some(header), content_type: "", body: b"" };
                authenticate(&req, &clients, &r, now_s * 1000)
            };
            let caller = get(&sign_with_certificate(case, json!({"certificate": cert}), now_s)).unwrap();
            assert_eq!(caller.client_id.as_deref(), case["result"]["clientId"].as_str());
            assert!(caller.scopes.contains(&"hooks:trigger-hook:g/*".to_string()), "{:?}", caller.scopes);
            assert!(!caller.scopes.iter().any(|s| s == "auth:create-client:project/*"), "limited to the certificate");

            let narrowed = get(&sign_with_certificate(case, json!({"certificate": cert, "authorizedScopes": ["hooks:trigger-hook:g/h"]}), now_s)).unwrap();
            assert_eq!(narrowed.scopes, vec!["assume:anonymous", "hooks:get:public:*", "hooks:trigger-hook:g/h"]);

            let escalate = get(&sign_with_certificate(case, json!({"certificate": cert, "authorizedScopes": ["hooks:modify-hook:g/h"]}), now_s)).unwrap_err();
            assert!(escalate.0.contains("authorizedScopes exceed"), "{escalate}");
        }
    }

    #[test]
    fn host_and_port_for_signatures() {
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(signed_host_and_port(&h(&[("host", "127.0.0.1:3000")]), "http"), Some(("127.0.0.1".into(), 3000)));
        assert_eq!(signed_host_and_port(&h(&[("host", "tc.example.com")]), "https"), Some(("tc.example.com".into(), 443)));
        assert_eq!(signed_host_and_port(&h(&[("host", "tc.example.com")]), "http"), Some(("tc.example.com".into(), 80)));
        assert_eq!(signed_host_and_port(&h(&[("host", "[::1]:8080")]), "http"), Some(("[::1]".into(), 8080)));
        assert_eq!(signed_host_and_port(&h(&[("host", "[::1]")]), "http"), Some(("[::1]".into(), 80)));
        // Behind a TLS-terminating proxy.
        assert_eq!(signed_host_and_port(&h(&[("host", "tc.example.com"), ("x-forwarded-proto", "https")]), "http"), Some(("tc.example.com".into(), 443)));
        assert_eq!(signed_host_and_port(&h(&[("host", "tc.example.com:80"), ("x-forwarded-port", "8443"), ("x-forwarded-proto", "https")]), "http"), Some(("tc.example.com".into(), 8443)));
        assert_eq!(signed_host_and_port(&h(&[]), "http"), None);
        assert_eq!(signed_host_and_port(&h(&[("host", "h:notaport")]), "http"), None);
    }

    #[test]
    fn bewits() {
        let v = vectors();
        let case = &v["bewits"][0];
        let exp = case["exp"].as_i64().unwrap();
        let resource = format!("/api/queue/v1/task/abc/artifacts/public%2Flog.txt?bewit={}", case["bewit"].as_str().unwrap());
        let req = |method: &'static str, resource: &str| {
            let r = SignedRequest { method, resource, host: "tc.example.com", port: 443, authorization: None, content_type: "", body: b"" };
            authenticate(&r, &clients, &roles(), (exp - 60) * 1000).map(|c| c.client_id)
        };
        assert_eq!(req("GET", &resource), Ok(Some("static/taskhooks/root".into())));
        assert!(req("POST", &resource).is_err());
        assert!(req("GET", &resource.replace("log.txt", "other.txt")).is_err());
        let late = SignedRequest { method: "GET", resource: &resource, host: "tc.example.com", port: 443, authorization: None, content_type: "", body: b"" };
        assert!(authenticate(&late, &clients, &roles(), (exp + 1) * 1000).unwrap_err().0.contains("expired"));
        let both = SignedRequest { authorization: Some("Hawk x"), ..late.clone() };
        assert!(authenticate(&both, &clients, &roles(), (exp - 60) * 1000).unwrap_err().0.contains("both"));
    }
}
