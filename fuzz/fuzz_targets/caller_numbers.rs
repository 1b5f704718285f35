//! The numbers a caller controls before anything about it is trusted: a temporary
//! certificate's `start` and `expiry` (checked before its signature), a Hawk header's
//! `ts` (signed by a client that exists), and the clock they are compared with. Any i64
//! must be refused or accepted without an overflow (a panic here: fuzz builds check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskhooks_shared::auth::{authenticate, Client, SignedRequest};
use taskhooks_shared::hawk::{client_header, Certificate, Outgoing};
use taskhooks_shared::scopes::Roles;

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let n = |i: usize| i64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
    let (start, expiry, now_ms, ts) = (n(0), n(8), n(16), n(24));
    let cert = Certificate { version: 1, scopes: vec![], start, expiry, seed: "s".repeat(44), signature: "x".into(), issuer: None };
    assert!(cert.verify("client", b"issuer-token", now_ms).is_err(), "an unsigned certificate verified");
    let url = "http://localhost:3000/api/hooks/v1/hooks";
    let outgoing = Outgoing { method: "GET", url, content_type: "", body: b"" };
    let Some(header) = client_header("root", "secret-token", &outgoing, None, ts, "nonce") else { return };
    let roles = Roles::new(vec![]);
    let lookup = |id: &str| (id == "root").then(|| Client { client_id: "root".into(), access_token: "secret-token".into(), scopes: vec!["*".into()] });
    let request = SignedRequest {
        method: "GET", resource: "/api/hooks/v1/hooks", host: "localhost", port: 3000,
        authorization: Some(&header), content_type: "", body: b"",
    };
    let accepted = authenticate(&request, &lookup, &roles, now_ms).is_ok();
    // Far outside the 15 minutes of skew: never accepted.
    if (now_ms / 1000).abs_diff(ts) > 16 * 60 {
        assert!(!accepted, "ts {ts} at {now_ms}");
    }
});
