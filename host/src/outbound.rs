//! `allowed_outbound_hosts`: which URLs a component may call with outbound HTTP. Supports
//! the forms Spin documents: `https://example.com`, `http://127.0.0.1:8080`,
//! `https://*.example.com`, `http://localhost:*`, `*://*:*`, and (after variable expansion)
//! any of these built from a template such as `{{ taskcluster_root_url }}`.

use anyhow::{anyhow, bail, Result};

#[derive(Debug, Clone, PartialEq)]
struct AllowedHost {
    scheme: Option<String>, // None = any
    host: HostPattern,
    port: Option<u16>, // None = any
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    Exact(String),
    SubdomainOf(String),
}

#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn parse(entries: &[String]) -> Result<Self> {
        // As Spin: every entry, after variable expansion, must be a host pattern; an empty
        // one (an unset variable) is an error, not "nothing allowed".
        let allowed = entries.iter().map(|e| parse_entry(e.trim())).collect::<Result<_>>()?;
        Ok(Self { allowed })
    }

    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.allowed.iter().any(|a| {
            a.scheme.as_deref().is_none_or(|s| s == scheme)
                && a.port.is_none_or(|p| p == port)
                && match &a.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::SubdomainOf(d) => {
                        host.len() > d.len() + 1
                            && host.ends_with(d.as_str())
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                    }
                }
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost> {
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| anyhow!("allowed_outbound_hosts entry `{entry}` needs a scheme (e.g. https://)"))?;
    // As Spin: `<scheme>://<host>[:<port>]`, at most a trailing `/`, no path.
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !path.is_empty() && path != "/" {
        bail!("allowed_outbound_hosts entry `{entry}` has a path; give `<scheme>://<host>[:<port>]`");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() {
        bail!("allowed_outbound_hosts entry `{entry}` has no host");
    }
    let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
    let port = match port {
        Some("*") => None,
        Some(p) => Some(p.parse().map_err(|_| anyhow!("bad port in `{entry}`"))?),
        None => match scheme.as_deref() {
            Some(s) => Some(default_port(s).ok_or_else(|| anyhow!("`{entry}` needs a port"))?),
            None => bail!("`{entry}`: a wildcard scheme needs an explicit port (or `:*`)"),
        },
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        HostPattern::SubdomainOf(domain.to_string())
    } else {
        HostPattern::Exact(host)
    };
    Ok(AllowedHost { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_hosts_use_default_ports() {
        let p = policy(&["https://tc.example.com", "http://127.0.0.1:8080"]);
        assert!(p.allows("https", "tc.example.com", 443));
        assert!(!p.allows("https", "tc.example.com", 8443));
        assert!(!p.allows("http", "tc.example.com", 443));
        assert!(p.allows("http", "127.0.0.1", 8080));
        assert!(!p.allows("http", "127.0.0.2", 8080));
    }

    #[test]
    fn wildcards() {
        let p = policy(&["https://*.example.com", "http://localhost:*"]);
        assert!(p.allows("https", "a.example.com", 443));
        assert!(p.allows("https", "a.b.example.com", 443));
        assert!(!p.allows("https", "example.com", 443));
        assert!(!p.allows("https", "badexample.com", 443));
        assert!(p.allows("http", "localhost", 1234));
        let any = policy(&["*://*:*"]);
        assert!(any.allows("http", "anything", 1));
        assert!(!policy(&[]).allows("http", "localhost", 80));
    }

    #[test]
    fn root_urls_with_paths_and_bad_entries() {
        let p = policy(&["https://tc.example.com/"]);
        assert!(p.allows("https", "tc.example.com", 443));
        assert!(OutboundPolicy::parse(&["example.com".into()]).is_err());
        assert!(OutboundPolicy::parse(&["*://example.com".into()]).is_err());
        assert!(OutboundPolicy::parse(&["http://h:port".into()]).is_err());
        assert!(OutboundPolicy::parse(&["".into()]).is_err(), "an unset variable is an error, as in Spin");
        assert!(OutboundPolicy::parse(&["http://127.0.0.1:9/report".into()]).is_err(), "no paths, as in Spin");
    }
}
