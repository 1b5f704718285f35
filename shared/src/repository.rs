//! Reading a repository the way build-decision does (`repository.py` in
//! mozilla-releng/fxci-config), over the hosts' own HTTP protocols:
//!
//! * git on GitHub: the branch tip from `GET <api>/repos/<org>/<repo>/git/ref/heads/<branch>`
//!   (`object.sha`), files from `GET <url>/raw/<sha>/<path>`;
//! * hg (hg.mozilla.org): the tip from `GET <url>/json-pushes?version=2&changeset=<branch>&full=1`
//!   (the push's last changeset; its first changeset's parent is the base), files from
//!   `GET <url>/raw-file/<rev>/<path>`.
//!
//! A repository URL is accepted only on an allowed host (`github.com` and `hg.mozilla.org`
//! unless configured otherwise), so a cron project cannot make the service fetch from
//! anywhere else.

use crate::cron_decision::Push;
use crate::remote_queue::HttpClient;
use serde_json::Value;
use std::time::Duration;

/// How long one request to a repository host may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The largest file read (`.cron.yml`, `.taskcluster.yml`).
pub const MAX_FILE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Git,
    Hg,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Git => "git",
            Kind::Hg => "hg",
        }
    }

    /// The branch build-decision reads when none is given (`main` for git, `default`).
    pub fn default_branch(self) -> &'static str {
        match self {
            Kind::Git => "main",
            Kind::Hg => "default",
        }
    }
}

/// Where the service reads repositories from.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryHosts {
    /// `host[:port]` of each allowed repository host.
    pub allowed: Vec<String>,
    /// The GitHub API (`https://api.github.com`).
    pub github_api: String,
    /// Sent to the GitHub API (`Authorization: Bearer`), as build-decision sends its
    /// `github_token`: unauthenticated callers get 60 requests an hour.
    pub github_token: Option<String>,
}

impl Default for RepositoryHosts {
    fn default() -> Self {
        RepositoryHosts { allowed: vec!["github.com".into(), "hg.mozilla.org".into()], github_api: "https://api.github.com".into(), github_token: None }
    }
}

/// A repository URL split as the service uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryUrl {
    /// As given, without a trailing `/`.
    pub url: String,
    /// The URL without its scheme: `github.com/org/repo` (the `repo:<repoPath>` of roles).
    pub repo_path: String,
    /// The path on its host: `org/repo`, `mozilla-central`, `releases/mozilla-beta`.
    pub path: String,
}

/// A test host on loopback (`127.0.0.1:<port>`, `localhost:<port>`): the only one read
/// over plain `http`.
fn is_loopback(host: &str) -> bool {
    host.starts_with("127.0.0.1:") || host.starts_with("localhost:")
}

/// Checks a repository URL: `https://` (or `http://` for a loopback test host), an
/// allowed host, and a path of plain segments; for git, exactly `<org>/<repo>`.
pub fn parse_url(url: &str, kind: Kind, hosts: &RepositoryHosts) -> Result<RepositoryUrl, String> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let (host, path) = rest.split_once('/').ok_or_else(|| format!("{url:?} names no repository on its host"))?;
    if !(scheme == "https" || scheme == "http" && is_loopback(host)) {
        return Err(format!("{url:?}: repositories are read over https"));
    }
    if !hosts.allowed.iter().any(|h| h == host) {
        return Err(format!("{url:?}: the host {host} is not one this deployment reads repositories from ({})", hosts.allowed.join(", ")));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let plain = |s: &&str| !s.is_empty() && *s != "." && *s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !segments.iter().all(plain) {
        return Err(format!("{url:?}: the repository path must be plain segments of letters, digits, `-`, `_` and `.`"));
    }
    if kind == Kind::Git && segments.len() != 2 {
        return Err(format!("{url:?}: a git repository is https://<host>/<org>/<repo>"));
    }
    Ok(RepositoryUrl { url: url.to_string(), repo_path: rest.to_string(), path: path.to_string() })
}

/// Why a repository could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// No answer, a 5xx, a 429 or a 403 (GitHub's rate limit): the host may answer later, so the fire that needed it
    /// is tried again (a dependency's failure is a retry, not a loss).
    #[error("{0}")]
    Unavailable(String),
    /// The host answered, and the answer cannot be used (no such branch, not JSON, ...).
    #[error("{0}")]
    Refused(String),
}

impl From<ReadError> for String {
    fn from(e: ReadError) -> String {
        e.to_string()
    }
}

/// How many redirects a read follows (GitHub's `raw` URLs answer one, to
/// `raw.githubusercontent.com`).
const MAX_REDIRECTS: usize = 3;

fn get(http: &dyn HttpClient, url: &str, accept: &str) -> Result<Option<Vec<u8>>, ReadError> {
    get_authorized(http, url, accept, None)
}

/// `get`, with an `authorization` header that only `url`'s origin is sent (a redirect
/// elsewhere goes without it).
fn get_authorized(http: &dyn HttpClient, url: &str, accept: &str, authorization: Option<&str>) -> Result<Option<Vec<u8>>, ReadError> {
    let mut headers = vec![("accept".to_string(), accept.to_string()), ("user-agent".to_string(), "taskhooks".to_string())];
    if let Some(a) = authorization {
        headers.push(("authorization".to_string(), a.to_string()));
    }
    let origin = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
    let refused = |m: String| ReadError::Refused(format!("GET {url}: {m}"));
    let mut at = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        if origin(&at) != origin(url) {
            headers.retain(|(k, _)| k != "authorization");
        }
        match http.get_within(&at, &headers, TIMEOUT) {
            Ok((200, _, body)) if body.len() <= MAX_FILE_BYTES => return Ok(Some(body)),
            Ok((200, _, body)) => return Err(refused(format!("the answer is {} bytes; at most {MAX_FILE_BYTES} are read", body.len()))),
            Ok((404, _, _)) => return Ok(None),
            Ok((301 | 302 | 303 | 307 | 308, Some(location), _)) => {
                at = redirect_target(&at, &location).ok_or_else(|| refused(format!("redirected to {location:?}, which is not read")))?
            }
            Ok((status, _, _)) if status >= 500 || status == 429 => return Err(ReadError::Unavailable(format!("GET {url}: HTTP {status}"))),
            // GitHub's answer when its rate limit is reached, which passes.
            Ok((403, _, _)) => {
                return Err(ReadError::Unavailable(format!("GET {url}: HTTP 403 (GitHub answers so when its rate limit is reached; set `github_token`)")))
            }
            Ok((status, _, _)) => return Err(refused(format!("HTTP {status}"))),
            Err(e) => return Err(ReadError::Unavailable(format!("GET {url}: {e}"))),
        }
    }
    Err(refused(format!("more than {MAX_REDIRECTS} redirects")))
}

/// Where a redirect from `from` to `location` goes: a path on the same origin, or an
/// `https` URL (`http` only from a loopback test host, as repository URLs). The
/// platform's outbound permissions still decide which hosts can be reached.
fn redirect_target(from: &str, location: &str) -> Option<String> {
    let (scheme, rest) = from.split_once("://")?;
    let origin = rest.split('/').next()?;
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(format!("{scheme}://{origin}{location}"));
    }
    match location.split_once("://") {
        Some(("https", _)) => Some(location.to_string()),
        Some(("http", to)) if is_loopback(origin) && is_loopback(to.split('/').next().unwrap_or("")) => Some(location.to_string()),
        _ => None,
    }
}

/// The tip of `branch`, as build-decision's `get_push_info` reports it.
pub fn tip(http: &dyn HttpClient, repo: &RepositoryUrl, kind: Kind, branch: &str, hosts: &RepositoryHosts) -> Result<Push, ReadError> {
    let bad = ReadError::Refused;
    match kind {
        Kind::Git => {
            let url = format!("{}/repos/{}/git/ref/heads/{branch}", hosts.github_api.trim_end_matches('/'), repo.path);
            let authorization = hosts.github_token.as_ref().map(|t| format!("Bearer {t}"));
            let body = get_authorized(http, &url, "application/vnd.github+json", authorization.as_deref())?.ok_or_else(|| bad(format!("GET {url}: no branch {branch}")))?;
            let answer: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("GET {url}: not JSON: {e}")))?;
            let sha = answer["object"]["sha"].as_str().filter(|s| is_revision(s)).ok_or_else(|| bad(format!("GET {url}: no object.sha")))?;
            Ok(Push::Git { branch: branch.to_string(), revision: sha.to_string() })
        }
        Kind::Hg => {
            let url = format!("{}/json-pushes?version=2&changeset={branch}&full=1", repo.url);
            let body = get(http, &url, "application/json")?.ok_or_else(|| bad(format!("GET {url}: no branch {branch}")))?;
            let answer: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("GET {url}: not JSON: {e}")))?;
            let pushes = answer["pushes"].as_object().ok_or_else(|| bad(format!("GET {url}: no pushes")))?;
            let [(pushlog_id, push)] = pushes.iter().collect::<Vec<_>>()[..] else {
                return Err(bad(format!("GET {url}: {} pushes for {branch}; exactly one is supported", pushes.len())));
            };
            let changesets = push["changesets"].as_array().filter(|c| !c.is_empty()).ok_or_else(|| bad(format!("GET {url}: a push without changesets")))?;
            let revision = changesets[changesets.len() - 1]["node"].as_str().filter(|s| is_revision(s)).ok_or_else(|| bad(format!("GET {url}: no tip node")))?;
            let base = changesets[0]["parents"][0].as_str().unwrap_or_default();
            Ok(Push::Hg {
                revision: revision.to_string(),
                base_revision: base.to_string(),
                pushlog_id: pushlog_id.clone(),
                pushdate: push["date"].as_i64().unwrap_or_default(),
            })
        }
    }
}

/// A revision as the hosts write them (hex); anything else is not put into a URL.
fn is_revision(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The file at `path` in `revision`, `None` if the repository has no such file.
pub fn file(http: &dyn HttpClient, repo: &RepositoryUrl, kind: Kind, revision: &str, path: &str) -> Result<Option<String>, ReadError> {
    let url = match kind {
        Kind::Git => format!("{}/raw/{revision}/{path}", repo.url),
        Kind::Hg => format!("{}/raw-file/{revision}/{path}", repo.url),
    };
    match get(http, &url, "text/plain")? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| ReadError::Refused(format!("GET {url}: not UTF-8 text"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Answers by URL.
    struct Host(Vec<(&'static str, u16, &'static str)>, RefCell<Vec<String>>);

    impl HttpClient for Host {
        fn send(&self, _m: &str, url: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.1.borrow_mut().push(url.to_string());
            self.0.iter().find(|(u, _, _)| *u == url).map(|(_, s, b)| (*s, b.as_bytes().to_vec())).ok_or_else(|| "connection refused".to_string())
        }
        fn sleep(&self, _: Duration) {}
    }

    #[test]
    fn urls_must_be_on_an_allowed_host_with_a_plain_path() {
        let hosts = RepositoryHosts::default();
        let gh = parse_url("https://github.com/mozilla-mobile/fenix/", Kind::Git, &hosts).unwrap();
        assert_eq!((gh.repo_path.as_str(), gh.path.as_str()), ("github.com/mozilla-mobile/fenix", "mozilla-mobile/fenix"));
        let hg = parse_url("https://hg.mozilla.org/releases/mozilla-beta", Kind::Hg, &hosts).unwrap();
        assert_eq!(hg.repo_path, "hg.mozilla.org/releases/mozilla-beta");
        assert!(parse_url("https://evil.example/a/b", Kind::Git, &hosts).unwrap_err().contains("not one this deployment reads"));
        assert!(parse_url("http://github.com/a/b", Kind::Git, &hosts).unwrap_err().contains("https"));
        assert!(parse_url("https://github.com/a/b/c", Kind::Git, &hosts).is_err());
        assert!(parse_url("https://github.com/a/..", Kind::Git, &hosts).is_err());
        assert!(parse_url("https://github.com/a/b?x=1", Kind::Git, &hosts).is_err());
        let local = RepositoryHosts { allowed: vec!["127.0.0.1:8000".into()], ..hosts };
        assert!(parse_url("http://127.0.0.1:8000/org/repo", Kind::Git, &local).is_ok(), "http only for a loopback test host");
    }

    #[test]
    fn reads_follow_a_few_redirects_to_https_only() {
        assert_eq!(redirect_target("https://github.com/o/r/raw/x/f", "https://raw.githubusercontent.com/o/r/x/f").as_deref(), Some("https://raw.githubusercontent.com/o/r/x/f"));
        assert_eq!(redirect_target("http://127.0.0.1:9/o/r/raw/x/f", "/raw/o/r/x/f").as_deref(), Some("http://127.0.0.1:9/raw/o/r/x/f"));
        assert_eq!(redirect_target("https://github.com/a", "http://evil.example/a"), None, "never down to plain http");
        assert_eq!(redirect_target("https://github.com/a", "//evil.example/a"), None);
        assert_eq!(redirect_target("https://github.com/a", "file:///etc/passwd"), None);
        /// Redirects `/loop` to itself and `/moved` to `/there`.
        struct Redirecting;
        impl HttpClient for Redirecting {
            fn send(&self, _m: &str, _u: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
                unreachable!("reads ask for the location")
            }
            fn get_within(&self, url: &str, _h: &[(String, String)], _t: Duration) -> Result<(u16, Option<String>, Vec<u8>), String> {
                Ok(match url {
                    "https://h.example/moved" => (302, Some("/there".into()), vec![]),
                    "https://h.example/there" => (200, None, b"here".to_vec()),
                    _ => (302, Some("https://h.example/loop".into()), vec![]),
                })
            }
            fn sleep(&self, _: Duration) {}
        }
        assert_eq!(get(&Redirecting, "https://h.example/moved", "text/plain"), Ok(Some(b"here".to_vec())));
        assert!(matches!(get(&Redirecting, "https://h.example/loop", "text/plain"), Err(ReadError::Refused(e)) if e.contains("more than 3 redirects")));
    }

    #[test]
    fn the_github_token_goes_to_the_api_only() {
        /// The API redirects once elsewhere; records who saw an authorization header.
        struct Api(RefCell<Vec<(String, bool)>>);
        impl HttpClient for Api {
            fn send(&self, _m: &str, _u: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
                unreachable!()
            }
            fn get_within(&self, url: &str, h: &[(String, String)], _t: Duration) -> Result<(u16, Option<String>, Vec<u8>), String> {
                self.0.borrow_mut().push((url.to_string(), h.iter().any(|(k, v)| k == "authorization" && v == "Bearer ghp_secret")));
                Ok(match url {
                    "https://api.github.com/repos/org/repo/git/ref/heads/main" => (307, Some("https://elsewhere.example/ref".into()), vec![]),
                    _ => (200, None, br#"{"object": {"sha": "0123456789abcdef"}}"#.to_vec()),
                })
            }
            fn sleep(&self, _: Duration) {}
        }
        let hosts = RepositoryHosts { github_token: Some("ghp_secret".into()), ..RepositoryHosts::default() };
        let gh = parse_url("https://github.com/org/repo", Kind::Git, &hosts).unwrap();
        let api = Api(RefCell::default());
        assert_eq!(tip(&api, &gh, Kind::Git, "main", &hosts).unwrap().revision(), "0123456789abcdef");
        assert_eq!(
            *api.0.borrow(),
            [("https://api.github.com/repos/org/repo/git/ref/heads/main".to_string(), true), ("https://elsewhere.example/ref".to_string(), false)]
        );
        file(&api, &gh, Kind::Git, "0123456789abcdef", ".cron.yml").unwrap();
        assert!(!api.0.borrow()[2].1, "files are read without it");
    }

    #[test]
    fn tips_and_files_over_githubs_and_hgs_protocols() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let pushes = r#"{"lastpushid": 9, "pushes": {"42": {"user": "someone@example.com", "date": 1700000000,
            "changesets": [{"node": "aaaaaaaaaaaa", "parents": ["bbbbbbbbbbbb"]}, {"node": "cccccccccccc", "parents": ["aaaaaaaaaaaa"]}]}}}"#;
        let http = Host(
            vec![
                ("https://api.github.com/repos/org/repo/git/ref/heads/main", 200, r#"{"object": {"sha": "0123456789abcdef0123456789abcdef01234567", "type": "commit"}}"#),
                ("https://github.com/org/repo/raw/0123456789abcdef0123456789abcdef01234567/.cron.yml", 200, "jobs: []"),
                ("https://github.com/org/repo/raw/0123456789abcdef0123456789abcdef01234567/.taskcluster.yml", 404, "Not Found"),
                ("https://hg.mozilla.org/mozilla-central/json-pushes?version=2&changeset=default&full=1", 200, pushes),
                ("https://hg.mozilla.org/mozilla-central/raw-file/cccccccccccc/.cron.yml", 200, "jobs: []"),
            ],
            RefCell::default(),
        );
        let hosts = RepositoryHosts::default();
        let gh = parse_url("https://github.com/org/repo", Kind::Git, &hosts).unwrap();
        assert_eq!(tip(&http, &gh, Kind::Git, "main", &hosts), Ok(Push::Git { branch: "main".into(), revision: sha.into() }));
        assert_eq!(file(&http, &gh, Kind::Git, sha, ".cron.yml"), Ok(Some("jobs: []".into())));
        assert_eq!(file(&http, &gh, Kind::Git, sha, ".taskcluster.yml"), Ok(None), "404: no such file");
        let hg = parse_url("https://hg.mozilla.org/mozilla-central", Kind::Hg, &hosts).unwrap();
        let push = tip(&http, &hg, Kind::Hg, "default", &hosts).unwrap();
        assert_eq!(push, Push::Hg { revision: "cccccccccccc".into(), base_revision: "bbbbbbbbbbbb".into(), pushlog_id: "42".into(), pushdate: 1_700_000_000 });
        assert_eq!(file(&http, &hg, Kind::Hg, push.revision(), ".cron.yml"), Ok(Some("jobs: []".into())));
        // No answer is worth a retry; an answer that cannot be used is not.
        assert!(matches!(tip(&http, &gh, Kind::Git, "gone", &hosts), Err(ReadError::Unavailable(e)) if e.contains("connection refused")));
        let busy = Host(vec![("https://api.github.com/repos/org/repo/git/ref/heads/main", 503, "")], RefCell::default());
        assert!(matches!(tip(&busy, &gh, Kind::Git, "main", &hosts), Err(ReadError::Unavailable(e)) if e.contains("HTTP 503")));
        let odd = Host(vec![("https://api.github.com/repos/org/repo/git/ref/heads/main", 200, "{}")], RefCell::default());
        assert!(matches!(tip(&odd, &gh, Kind::Git, "main", &hosts), Err(ReadError::Refused(e)) if e.contains("no object.sha")));
    }
}
