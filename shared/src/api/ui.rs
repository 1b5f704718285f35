//! The web UI's files, built into the component (no CDN: it works offline) and served
//! at the service root. The UI calls the same public API as every client.

use super::ApiResponse;

const ASSETS: [(&str, &str, &[u8]); 4] = [
    ("/", "text/html; charset=utf-8", include_bytes!("../../ui/index.html")),
    ("/ui/app.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/app.js")),
    ("/ui/hawk.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/hawk.js")),
    ("/ui/style.css", "text/css; charset=utf-8", include_bytes!("../../ui/style.css")),
];

/// Scripts, styles and API calls from this origin only: credentials typed into the UI can
/// reach nothing but this service.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI file at `path` (`GET`/`HEAD`), if there is one.
pub(super) fn asset(method: &str, path: &str) -> Option<ApiResponse> {
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let path = if path == "/index.html" { "/" } else { path };
    let (_, content_type, body) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let headers = [
        ("content-type", *content_type),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    ];
    Some(ApiResponse {
        status: 200,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: if method == "HEAD" { vec![] } else { body.to_vec() },
    })
}
