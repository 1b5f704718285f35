//! Spin's HTTP route matching for the route forms taskhooks uses: exact routes (`/ping`)
//! and trailing wildcards (`/api/...`, `/...`). An exact match beats any wildcard, and a
//! longer wildcard prefix beats a shorter one. Matching is on the raw (still
//! percent-encoded) path, as in Spin.

#[derive(Debug, Clone)]
pub struct Route {
    /// As written in spin.toml, e.g. `/api/...`.
    pub raw: String,
    /// The route without the wildcard, e.g. `/api` (empty for `/...`).
    pub prefix: String,
    pub wildcard: bool,
    pub component: String,
}

/// What Spin tells a component about the match, through its `spin-*` request headers.
#[derive(Debug, PartialEq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    pub matched_route: &'a str,
    pub component_route: String,
    pub path_info: String,
}

impl Route {
    pub fn parse(raw: &str, component: &str) -> anyhow::Result<Route> {
        if !raw.starts_with('/') {
            anyhow::bail!("route `{raw}` must start with `/`");
        }
        let (prefix, wildcard) = match raw.strip_suffix("/...") {
            Some(p) => (p.to_string(), true),
            None => (raw.trim_end_matches('/').to_string(), false),
        };
        if prefix.contains("...") {
            anyhow::bail!("route `{raw}`: `...` is only allowed as the last segment");
        }
        Ok(Route { raw: raw.to_string(), prefix, wildcard, component: component.to_string() })
    }
}

pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(mut routes: Vec<Route>) -> anyhow::Result<Router> {
        // Most specific first: exact routes, then wildcards by decreasing prefix length.
        routes.sort_by(|a, b| {
            a.wildcard.cmp(&b.wildcard).then(b.prefix.len().cmp(&a.prefix.len()))
        });
        for pair in routes.windows(2) {
            if pair[0].prefix == pair[1].prefix && pair[0].wildcard == pair[1].wildcard {
                anyhow::bail!("duplicate route `{}`", pair[0].raw);
            }
        }
        Ok(Router { routes })
    }

    pub fn find(&self, path: &str) -> Option<RouteMatch<'_>> {
        let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        self.routes.iter().find_map(|r| {
            if !r.wildcard {
                let exact = if r.prefix.is_empty() { "/" } else { r.prefix.as_str() };
                return (trimmed == exact).then(|| RouteMatch {
                    component: &r.component,
                    matched_route: &r.raw,
                    component_route: r.prefix.clone(),
                    path_info: String::new(),
                });
            }
            let rest = path.strip_prefix(r.prefix.as_str())?;
            // `/api/...` matches `/api` and `/api/x`, never `/apix`.
            (rest.is_empty() || rest.starts_with('/')).then(|| RouteMatch {
                component: &r.component,
                matched_route: &r.raw,
                component_route: r.prefix.clone(),
                path_info: rest.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(vec![
            Route::parse("/...", "ui").unwrap(),
            Route::parse("/api/...", "api").unwrap(),
            Route::parse("/api/hooks/v1/ping", "ping").unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router();
        assert_eq!(r.find("/api/hooks/v1/ping").unwrap().component, "ping");
        let m = r.find("/api/hooks/v1/hooks/g/a%2Fb").unwrap();
        assert_eq!(m.component, "api");
        assert_eq!(m.path_info, "/hooks/v1/hooks/g/a%2Fb");
        assert_eq!(m.component_route, "/api");
        assert_eq!(r.find("/api").unwrap().component, "api");
        assert_eq!(r.find("/apix").unwrap().component, "ui");
        assert_eq!(r.find("/").unwrap().component, "ui");
        assert_eq!(r.find("/").unwrap().path_info, "/");
    }

    #[test]
    fn no_match_without_catch_all_and_duplicates_rejected() {
        let r = Router::new(vec![Route::parse("/api/...", "api").unwrap()]).unwrap();
        assert!(r.find("/other").is_none());
        assert!(Router::new(vec![
            Route::parse("/a/...", "x").unwrap(),
            Route::parse("/a/...", "y").unwrap()
        ])
        .is_err());
        assert!(Route::parse("api", "x").is_err());
        assert!(Route::parse("/a/.../b", "x").is_err());
    }
}
