//! What the API-level fuzz targets share: a standalone deployment whose root client has
//! the token `secret-token`.

use taskhooks_shared::api::ServiceConfig;
use taskhooks_shared::sealed::SealingKey;

pub const ROOT_TOKEN: &str = "secret-token";

pub fn config(github_webhook_secret: Option<&str>) -> ServiceConfig {
    ServiceConfig {
        root_client_id: "root".into(),
        root_access_token: Some(ROOT_TOKEN.into()),
        sealing_key: SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
        build: taskhooks_shared::health::Build { version: "fuzz".into(), ..Default::default() },
        taskcluster: None,
        failure_channel: None,
        pulse: None,
        github_webhook_secret: github_webhook_secret.map(str::to_string),
        repository_hosts: Default::default(),
        public_url: None,
        metrics_token: None,
    }
}
