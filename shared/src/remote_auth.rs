//! Authentication delegated to a remote Taskcluster deployment's Auth service (SPEC §3.1:
//! what every upstream service does): `POST <rootUrl>/api/auth/v1/authenticate-hawk` with
//! the request's method, resource, host, port and `Authorization`, answered with the
//! caller's expanded scopes. The payload hash, which the Auth service cannot see the body
//! for, is checked here.

use crate::api::ApiRequest;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::hawk::payload_hash;
use crate::ids::secrets_equal;
use crate::remote_queue::{HttpClient, TaskclusterCredentials};
use serde_json::{json, Value};

pub fn authenticate_remotely(http: &dyn HttpClient, tc: &TaskclusterCredentials, req: &ApiRequest, host: &str, port: u16) -> Result<Caller, ApiError> {
    let url = format!("{}/api/auth/v1/authenticate-hawk", tc.root_url.trim_end_matches('/'));
    let mut body = json!({"method": req.method.to_ascii_lowercase(), "resource": req.path, "host": host, "port": port});
    if let Some(auth) = req.header("authorization") {
        body["authorization"] = json!(auth);
    }
    let bytes = body.to_string().into_bytes();
    let headers = [("content-type".to_string(), "application/json".to_string()), ("content-length".to_string(), bytes.len().to_string())];
    // The deployment's Auth service is a dependency: its failure is the caller's to retry.
    let unavailable = |why: String| ApiError::new(ErrorCode::ServiceUnavailable, format!("the Auth service at {url} could not be asked: {why}"));
    let answer: Value = match http.send("POST", &url, &headers, &bytes) {
        Ok((200, answer)) => serde_json::from_slice(&answer).map_err(|e| unavailable(e.to_string()))?,
        Ok((status, _)) => return Err(unavailable(format!("HTTP {status}"))),
        Err(e) => return Err(unavailable(e)),
    };
    let scopes = || -> Vec<String> { serde_json::from_value(answer["scopes"].clone()).unwrap_or_default() };
    match answer["status"].as_str() {
        Some("no-auth") => Ok(Caller { client_id: None, scopes: scopes() }),
        Some("auth-success") => {
            if let Some(claimed) = answer["hash"].as_str() {
                let actual = payload_hash(req.header("content-type").unwrap_or_default(), &req.body);
                if !secrets_equal(actual.as_bytes(), claimed.as_bytes()) {
                    return Err(ApiError::new(ErrorCode::AuthenticationFailed, "payload hash does not match the body"));
                }
            }
            Ok(Caller { client_id: answer["clientId"].as_str().map(str::to_string), scopes: scopes() })
        }
        _ => Err(ApiError::new(
            ErrorCode::AuthenticationFailed,
            answer["message"].as_str().unwrap_or("authentication failed").to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Answer(RefCell<Option<Result<(u16, Vec<u8>), String>>>, RefCell<Value>);

    impl HttpClient for Answer {
        fn send(&self, _m: &str, _url: &str, _h: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
            *self.1.borrow_mut() = serde_json::from_slice(body).unwrap();
            self.0.borrow_mut().take().unwrap()
        }
        fn sleep(&self, _: std::time::Duration) {}
    }

    fn ask(answer: Result<(u16, Vec<u8>), String>, req: &ApiRequest) -> (Result<Caller, ApiError>, Value) {
        let http = Answer(RefCell::new(Some(answer)), RefCell::new(Value::Null));
        let tc = TaskclusterCredentials { root_url: "https://tc.example.com".into(), client_id: "c".into(), access_token: "t".into(), request_timeout: std::time::Duration::from_secs(30) };
        let result = authenticate_remotely(&http, &tc, req, "hooks.example.com", 443);
        (result, http.1.into_inner())
    }

    fn request(body: &[u8]) -> ApiRequest {
        ApiRequest {
            method: "PUT".into(),
            path: "/api/hooks/v1/hooks/g/h?x=1".into(),
            headers: vec![("authorization".into(), "Hawk id=\"u\"".into()), ("content-type".into(), "application/json".into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn success_failure_and_the_payload_hash() {
        let hash = payload_hash("application/json", b"{}");
        let ok = json!({"status": "auth-success", "clientId": "u", "scopes": ["hooks:*"], "hash": hash}).to_string().into_bytes();
        let (caller, sent) = ask(Ok((200, ok.clone())), &request(b"{}"));
        assert_eq!(caller.unwrap(), Caller { client_id: Some("u".into()), scopes: vec!["hooks:*".into()] });
        assert_eq!(sent, json!({"method": "put", "resource": "/api/hooks/v1/hooks/g/h?x=1", "host": "hooks.example.com", "port": 443, "authorization": "Hawk id=\"u\""}));
        let (tampered, _) = ask(Ok((200, ok)), &request(b"{\"evil\": 1}"));
        assert_eq!(tampered.unwrap_err().code, ErrorCode::AuthenticationFailed);
        let failed = json!({"status": "auth-failed", "message": "ext.certificate expired"}).to_string().into_bytes();
        let (refused, _) = ask(Ok((200, failed)), &request(b"{}"));
        assert_eq!(refused.unwrap_err().message, "ext.certificate expired");
        let (down, _) = ask(Err("connection refused".into()), &request(b"{}"));
        assert_eq!(down.unwrap_err().code, ErrorCode::ServiceUnavailable);
    }
}
