//! Hook definitions: any body to createHook, signed by the root client, then read back and
//! triggered. A definition the service accepts must read back and trigger without a 500.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskhooks_shared::api::{ApiRequest, Service};

mod common;
use taskhooks_shared::hawk::{client_header, Outgoing};
use taskhooks_shared::platform::{FixedClock, MemoryStore};

const NOW: &str = "2026-11-24T00:00:00Z";

fn signed(method: &str, path: &str, body: &[u8]) -> ApiRequest {
    let url = format!("http://localhost:3000{path}");
    let out = Outgoing { method, url: &url, content_type: "application/json", body };
    let ts = chrono::DateTime::parse_from_rfc3339(NOW).unwrap().timestamp();
    let auth = client_header("root", "secret-token", &out, None, ts, "fuzz").unwrap();
    ApiRequest {
        method: method.into(),
        path: path.into(),
        headers: vec![
            ("host".into(), "localhost:3000".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), body.len().to_string()),
            ("authorization".into(), auth),
        ],
        body: body.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let config = common::config(None);
    let kv = MemoryStore::default();
    let clock = FixedClock::at(NOW);
    let svc = Service::new(&kv, &clock, &config);
    let created = svc.handle(&signed("PUT", "/api/hooks/v1/hooks/g/h", data));
    assert!(created.status == 200 || created.status == 400, "{} {}", created.status, String::from_utf8_lossy(&created.body));
    if created.status == 200 {
        let read = svc.handle(&signed("GET", "/api/hooks/v1/hooks/g/h", b""));
        assert_eq!(read.status, 200);
        let fired = svc.handle(&signed("POST", "/api/hooks/v1/hooks/g/h/trigger", b"{}"));
        assert_ne!(fired.status, 500, "{}", String::from_utf8_lossy(&fired.body));
    }
});
