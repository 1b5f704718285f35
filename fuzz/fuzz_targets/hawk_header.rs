//! The Hawk `Authorization` header, its `ext` (certificates, authorizedScopes) and bewits:
//! parsed and fully authenticated against a known client. Nothing may panic, and no
//! arbitrary input may authenticate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskhooks_shared::auth::{authenticate, Client, SignedRequest};
use taskhooks_shared::hawk::{decode_ext, parse_bewit, parse_header};
use taskhooks_shared::scopes::Roles;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_header(text);
    let _ = decode_ext(text);
    let _ = parse_bewit(text);
    let roles = Roles::new(vec![]);
    let lookup = |id: &str| (id == "root").then(|| Client { client_id: "root".into(), access_token: "secret-token".into(), scopes: vec!["*".into()] });
    let header_request = SignedRequest {
        method: "GET", resource: "/api/hooks/v1/hooks", host: "localhost", port: 3000,
        authorization: Some(text), content_type: "", body: b"",
    };
    assert!(authenticate(&header_request, &lookup, &roles, 1_795_000_000_000).is_err(), "a fuzzed header authenticated");
    let resource = format!("/api/hooks/v1/hooks?bewit={}", text);
    let bewit_request = SignedRequest { resource: &resource, authorization: None, ..header_request };
    let _ = authenticate(&bewit_request, &lookup, &roles, 1_795_000_000_000);
});
