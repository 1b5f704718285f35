//! Harness for the end-to-end tests: starts the real `taskhooks` host on the repository's
//! spin.toml and built .wasm components, on a free loopback port with its own state
//! directory, and talks to it over real HTTP.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The host binary cargo built beside this test (`<target>/debug/taskhooks`), or
/// `TASKHOOKS_BIN`.
pub fn host_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TASKHOOKS_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("taskhooks");
    assert!(bin.exists(), "{} is missing: run scripts/build first", bin.display());
    bin
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "taskhooks-e2e-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The root credentials and secrets key every test host runs with (spin.toml requires
/// them; see the README's "Configure").
pub const ROOT_CLIENT_ID: &str = "static/taskhooks/root";
pub const ROOT_ACCESS_TOKEN: &str = "e2e-root-access-token-not-a-secret";
pub const SECRETS_KEY: &str = "ZTJlLXNlY3JldHMta2V5LTAxMjM0NTY3ODlhYmNkZWY=";

/// The `SPIN_VARIABLE_*` settings a test host needs.
pub fn required_variables() -> Vec<(String, String)> {
    vec![
        ("SPIN_VARIABLE_ROOT_ACCESS_TOKEN".into(), ROOT_ACCESS_TOKEN.into()),
        ("SPIN_VARIABLE_SECRETS_KEY".into(), SECRETS_KEY.into()),
    ]
}

/// Hawk credentials: (clientId, accessToken).
pub type Credentials<'a> = (&'a str, &'a str);

pub const ROOT: Credentials<'static> = (ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN);

/// A Hawk `Authorization` header for a request to `url`, as the official clients make it
/// (payload hash always included).
pub fn hawk_header(creds: Credentials<'_>, method: &str, url: &str, content_type: &str, body: &[u8]) -> String {
    use taskhooks_shared::hawk;
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (authority, resource) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').map(|(h, p)| (h, p.parse().unwrap())).unwrap_or((authority, 80));
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let nonce = format!("n{}", ts % 100_000);
    let hash = hawk::payload_hash(content_type, body);
    let a = hawk::Artifacts { ts, nonce: &nonce, method, resource, host, port, hash: Some(&hash), ext: None };
    let mac = hawk::mac(creds.1.as_bytes(), "header", &a);
    format!(r#"Hawk id="{}", ts="{ts}", nonce="{nonce}", hash="{hash}", mac="{mac}""#, creds.0)
}

/// A running host; killed when dropped.
pub struct Host {
    child: Child,
    pub base_url: String,
    pub state_dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

pub struct HostOptions {
    /// The application manifest; the repository's spin.toml when `None`.
    pub manifest: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub extra_args: Vec<String>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self { manifest: None, state_dir: temp_dir("state"), env: vec![], extra_args: vec!["--disable-cron".into()] }
    }
}

impl Host {
    pub fn start() -> Host {
        Self::start_with(HostOptions::default())
    }

    pub fn start_with(opts: HostOptions) -> Host {
        let mut cmd = Command::new(host_binary());
        cmd.current_dir(repo_root())
            .args(["up", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&opts.state_dir)
            .args(&opts.extra_args)
            .args(opts.manifest.iter().flat_map(|m| [std::ffi::OsStr::new("--from"), m.as_os_str()]))
            .envs(required_variables())
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start taskhooks");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base_url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("Serving ") {
                        break url.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.wait();
                    panic!("taskhooks exited before serving:\n{}", stderr.lock().unwrap());
                }
            }
        };
        // Keep draining stdout (where guests print) so the host never blocks on a full pipe.
        let stdout = Arc::new(Mutex::new(String::new()));
        let out_sink = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut out = out_sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        Host { child, base_url, state_dir: opts.state_dir, stderr, stdout }
    }

    /// What the host has written to stderr so far (its log).
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What guests have printed to stdout so far.
    pub fn output(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Polls `check` on the host's stdout until it holds or `timeout` passes.
    pub fn wait_for_output(&self, timeout: Duration, check: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if check(&self.output()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check(&self.output())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// A request signed as the root client.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.request_as(Some(ROOT), method, path, body)
    }

    /// A request signed with `creds`, or anonymous.
    pub fn request_as(&self, creds: Option<Credentials<'_>>, method: &str, path: &str, body: Option<&Value>) -> Response {
        send(&format!("{}{}", self.base_url, path), method, body, creds)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One unauthenticated HTTP request; any status is a `Response`, only transport failures
/// panic.
pub fn request(url: &str, method: &str, body: Option<&Value>) -> Response {
    send(url, method, body, None)
}

fn send(url: &str, method: &str, body: Option<&Value>, creds: Option<Credentials<'_>>) -> Response {
    let agent = agent();
    let text = body.map(|b| serde_json::to_string(b).unwrap());
    let content_type = if text.is_some() { "application/json" } else { "" };
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(creds) = creds {
        let header = hawk_header(creds, method, url, content_type, text.as_deref().unwrap_or_default().as_bytes());
        builder = builder.header("authorization", header);
    }
    let result = match text {
        Some(text) => agent.run(builder.header("content-type", content_type).body(text).unwrap()),
        None => agent.run(builder.body(()).unwrap()),
    };
    let resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = resp.into_body().read_to_string().unwrap_or_default();
    Response { status, headers, body }
}

/// Starts `taskhooks cron <component> --at <at>` without waiting (to kill or overlap it).
pub fn spawn_cron(state_dir: &Path, component: &str, at: &str) -> std::process::Child {
    Command::new(host_binary())
        .current_dir(repo_root())
        .args(["cron", component, "--at", at, "--state-dir"])
        .arg(state_dir)
        .envs(required_variables())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start taskhooks cron")
}

/// Runs `taskhooks cron <component> --at <at>` against a state directory.
pub fn run_cron(state_dir: &Path, component: &str, at: &str, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(host_binary())
        .current_dir(repo_root())
        .args(["cron", component, "--at", at, "--state-dir"])
        .arg(state_dir)
        .envs(required_variables())
        .envs(env.iter().copied())
        .output()
        .expect("run taskhooks cron")
}
