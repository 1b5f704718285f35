//! Bakes what was built into the components (`__version__`): the source commit, from git
//! (empty outside a git checkout), and the build time (`SOURCE_DATE_EPOCH` when set, so a
//! reproducible build stays reproducible).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    // Rebuilt when HEAD moves (a commit, a checkout), not on every build.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{branch}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let time = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .unwrap_or_else(chrono::Utc::now);
    println!("cargo:rustc-env=TASKHOOKS_COMMIT={commit}");
    println!("cargo:rustc-env=TASKHOOKS_BUILD_TIME={}", time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
}
