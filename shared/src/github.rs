//! GitHub webhooks as Pulse messages: a verified delivery becomes the message that
//! Taskcluster's GitHub integration publishes for it (same exchange, routing key and
//! body shape), and fires the hooks bound to it through the relay's `handle_message`.

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

pub const EXCHANGE_PREFIX: &str = "exchange/taskcluster-github/v1/";

/// Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `body`
/// under `secret`. The MAC comparison is constant-time (`Mac::verify_slice`).
pub fn signature_matches(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(digits) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else { return false };
    let Ok(signature) = hex::decode(digits) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// The message a delivery becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubMessage {
    pub exchange: String,
    pub routing_key: String,
    pub body: Value,
}

/// Routing-key words as Taskcluster's GitHub service writes them: `.` becomes `%` (so a
/// name stays one word) and characters other than letters, digits, `-`, `_` and `%` go.
pub fn routing_word(name: &str) -> String {
    name.replace('.', "%").chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%')).collect()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn put(details: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        details.insert(key.into(), value.into());
    }
}

/// The Pulse message for a `push`, `pull_request` or `release` delivery; `Ok(None)` for
/// events Taskcluster's GitHub service publishes nothing for; `Err` for a payload that
/// lacks what the message needs.
pub fn message(event: &str, delivery: &str, payload: &Value) -> Result<Option<GithubMessage>, String> {
    let (exchange, tasks_for) = match event {
        "push" => ("push", "github-push"),
        "pull_request" => ("pull-request", "github-pull-request"),
        "release" => ("release", "github-release"),
        _ => return Ok(None),
    };
    let owner = text(payload, &["repository", "owner", "login"])
        .or_else(|| text(payload, &["repository", "owner", "name"]))
        .ok_or("the payload has no repository.owner.login")?;
    let repo = text(payload, &["repository", "name"]).ok_or("the payload has no repository.name")?;
    let (organization, repository) = (routing_word(owner), routing_word(repo));
    let mut details = Map::new();
    let mut body = Map::new();
    let mut routing_key = format!("primary.{organization}.{repository}");
    let branch = match event {
        "push" => {
            let git_ref = text(payload, &["ref"]).ok_or("a push payload has no ref")?;
            let tag = git_ref.strip_prefix("refs/tags/");
            let branch = git_ref.strip_prefix("refs/heads/");
            put(&mut details, "event.type", Some(if tag.is_some() { "tag" } else { "push" }));
            put(&mut details, "event.head.tag", tag);
            put(&mut details, "event.base.repo.branch", branch);
            put(&mut details, "event.head.repo.branch", branch);
            put(&mut details, "event.head.ref", Some(git_ref));
            put(&mut details, "event.base.sha", text(payload, &["before"]));
            put(&mut details, "event.head.sha", text(payload, &["after"]));
            put(&mut details, "event.head.repo.url", text(payload, &["repository", "clone_url"]));
            put(&mut details, "event.head.user.login", text(payload, &["sender", "login"]));
            branch.or(tag).unwrap_or(git_ref).to_string()
        }
        "pull_request" => {
            let action = text(payload, &["action"]).ok_or("a pull_request payload has no action")?;
            routing_key.push('.');
            routing_key.push_str(&routing_word(action));
            body.insert("action".into(), json!(action));
            let pr = payload.get("pull_request").ok_or("a pull_request payload has no pull_request")?;
            put(&mut details, "event.type", Some(format!("pull_request.{action}")));
            put(&mut details, "event.pullNumber", pr.get("number").cloned());
            put(&mut details, "event.base.ref", text(pr, &["base", "ref"]));
            put(&mut details, "event.base.repo.branch", text(pr, &["base", "ref"]));
            put(&mut details, "event.base.sha", text(pr, &["base", "sha"]));
            put(&mut details, "event.head.ref", text(pr, &["head", "ref"]));
            put(&mut details, "event.head.repo.branch", text(pr, &["head", "ref"]));
            put(&mut details, "event.head.sha", text(pr, &["head", "sha"]));
            put(&mut details, "event.head.repo.url", text(pr, &["head", "repo", "clone_url"]));
            put(&mut details, "event.head.user.login", text(pr, &["user", "login"]));
            text(pr, &["head", "ref"]).unwrap_or_default().to_string()
        }
        _ => {
            let release = payload.get("release").ok_or("a release payload has no release")?;
            put(&mut details, "event.type", Some("release"));
            put(&mut details, "event.version", text(release, &["tag_name"]));
            put(&mut details, "event.name", text(release, &["name"]));
            put(&mut details, "event.base.repo.branch", text(release, &["target_commitish"]));
            put(&mut details, "event.head.repo.url", text(payload, &["repository", "clone_url"]));
            put(&mut details, "event.head.user.login", text(payload, &["sender", "login"]));
            text(release, &["target_commitish"]).unwrap_or_default().to_string()
        }
    };
    body.insert("version".into(), json!(1));
    body.insert("organization".into(), json!(organization));
    body.insert("repository".into(), json!(repository));
    body.insert("eventId".into(), json!(delivery));
    if let Some(id) = payload.get("installation").and_then(|i| i.get("id")) {
        body.insert("installationId".into(), id.clone());
    }
    body.insert("branch".into(), json!(branch));
    body.insert("tasks_for".into(), json!(tasks_for));
    body.insert("details".into(), Value::Object(details));
    body.insert("body".into(), payload.clone());
    Ok(Some(GithubMessage { exchange: format!("{EXCHANGE_PREFIX}{exchange}"), routing_key, body: Value::Object(body) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    #[test]
    fn signatures_over_the_exact_body() {
        let body = br#"{"zen": "Keep it logically awesome."}"#;
        // GitHub's documented test vector: secret "It's a Secret to Everybody", body "Hello, World!".
        assert!(signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        ));
        let good = sign(b"s3cret", body);
        assert!(signature_matches(b"s3cret", body, Some(&good)));
        assert!(!signature_matches(b"other", body, Some(&good)));
        assert!(!signature_matches(b"s3cret", &body[1..], Some(&good)));
        assert!(!signature_matches(b"s3cret", body, None));
        assert!(!signature_matches(b"s3cret", body, Some(&good.replace("sha256=", "sha1="))));
        assert!(!signature_matches(b"s3cret", body, Some("sha256=zz")));
        assert!(!signature_matches(b"s3cret", body, Some(&good[..good.len() - 2])));
    }

    #[test]
    fn push_pull_request_and_release_become_taskcluster_github_messages() {
        let repo = json!({"name": "hooks.testing", "owner": {"login": "Task.Robot", "name": "Task.Robot"}, "clone_url": "https://github.com/Task.Robot/hooks.testing.git"});
        let push = json!({"ref": "refs/heads/main", "before": "aaa", "after": "bbb", "repository": repo, "sender": {"login": "dev"}, "installation": {"id": 7}});
        let m = message("push", "d-1", &push).unwrap().unwrap();
        assert_eq!(m.exchange, "exchange/taskcluster-github/v1/push");
        assert_eq!(m.routing_key, "primary.Task%Robot.hooks%testing");
        assert_eq!(m.body["tasks_for"], "github-push");
        assert_eq!(m.body["branch"], "main");
        assert_eq!(m.body["eventId"], "d-1");
        assert_eq!(m.body["installationId"], 7);
        assert_eq!(m.body["details"]["event.head.sha"], "bbb");
        assert_eq!(m.body["body"], push);

        let tag = json!({"ref": "refs/tags/v1.0", "repository": repo});
        assert_eq!(message("push", "d", &tag).unwrap().unwrap().body["details"]["event.type"], "tag");

        let pr = json!({"action": "opened", "repository": repo, "pull_request": {"number": 5, "head": {"ref": "fix", "sha": "ccc"}, "base": {"ref": "main", "sha": "ddd"}, "user": {"login": "dev"}}});
        let m = message("pull_request", "d-2", &pr).unwrap().unwrap();
        assert_eq!(m.exchange, "exchange/taskcluster-github/v1/pull-request");
        assert_eq!(m.routing_key, "primary.Task%Robot.hooks%testing.opened");
        assert_eq!(m.body["action"], "opened");
        assert_eq!(m.body["details"]["event.pullNumber"], 5);
        assert_eq!(m.body["branch"], "fix");

        let release = json!({"action": "published", "repository": repo, "release": {"tag_name": "v2", "name": "Two", "target_commitish": "main"}});
        let m = message("release", "d-3", &release).unwrap().unwrap();
        assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("exchange/taskcluster-github/v1/release", "primary.Task%Robot.hooks%testing"));
        assert_eq!(m.body["details"]["event.version"], "v2");

        assert_eq!(message("issues", "d", &json!({})).unwrap(), None);
        assert!(message("push", "d", &json!({"ref": "x"})).is_err());
    }
}
