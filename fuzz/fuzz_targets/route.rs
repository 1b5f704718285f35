//! Whole requests (method, raw path with query, headers, body) through the API's router and
//! pipeline, unauthenticated: every answer is a well-formed HTTP status with a JSON body
//! or a UI file, no answer carries the root token the request did not, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskhooks_shared::api::{ApiRequest, Service};

mod common;
use taskhooks_shared::platform::{FixedClock, MemoryStore};

const METHODS: [&str; 6] = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\n');
    let path = parts.next().unwrap_or_default().to_string();
    let header = parts.next().unwrap_or_default().to_string();
    let body = parts.next().unwrap_or_default().as_bytes().to_vec();
    let config = common::config(Some("gh"));
    let kv = MemoryStore::default();
    let clock = FixedClock::at("2026-11-24T00:00:00Z");
    let mut headers = vec![("host".to_string(), "localhost:3000".to_string()), ("content-type".into(), "application/json".into())];
    if let Some((k, v)) = header.split_once(':') {
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let req = ApiRequest { method: METHODS[m as usize % METHODS.len()].into(), path: format!("/{path}"), headers, body };
    let resp = Service::new(&kv, &clock, &config).handle(&req);
    assert!((200..600).contains(&resp.status));
    // The root token never appears in an answer unless the request itself carried it
    // (errors echo the request's path and body).
    if !String::from_utf8_lossy(data).contains("secret-token") {
        assert!(!String::from_utf8_lossy(&resp.body).contains("secret-token"));
    }
});
