//! Routes: which component serves a request.
//!
//! A route is `"[METHODS] PATH"`: `"POST /order"`, `"GET,HEAD /items/*"`, `"/health"` (any
//! method). `PATH` is exact, or a prefix when it ends in `/*` (`/items/*` takes `/items` and
//! everything under it; `/*` takes every path). The most specific route wins: an exact path
//! before any prefix, a longer prefix before a shorter one. A path some route takes, with a
//! method none of them takes, is answered `405`.

use super::manifest::ComponentSpec;

/// Paths the server keeps for itself: websocket channels.
pub const WEBSOCKET_PREFIX: &str = "/ws/";

const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// One route of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case methods; empty for any.
    methods: Vec<String>,
    /// The exact path, or the prefix (without `/*`).
    path: String,
    prefix: bool,
}

impl Route {
    /// Parses `"[METHODS] PATH"`.
    pub fn parse(text: &str) -> Result<Route, String> {
        let text = text.trim();
        let (methods, path) = match text.split_once(char::is_whitespace) {
            Some((methods, path)) => (methods, path.trim()),
            None => ("", text),
        };
        let methods: Vec<String> =
            methods.split(',').filter(|m| !m.is_empty()).map(|m| m.trim().to_ascii_uppercase()).collect();
        if let Some(bad) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(format!(
                "`{bad}` in \"{text}\" is not an HTTP method (use e.g. GET, POST, PUT, DELETE)"
            ));
        }
        if !path.starts_with('/') {
            return Err(format!("the path in \"{text}\" must start with `/`"));
        }
        if path.contains(['?', '#', ' ']) {
            return Err(format!("the path in \"{text}\" must not contain `?`, `#` or spaces"));
        }
        let (path, prefix) = match path.strip_suffix("/*") {
            Some(prefix) => (prefix.to_string(), true),
            None => (path.to_string(), false),
        };
        if path.contains('*') {
            return Err(format!("in \"{text}\", `*` may only end the path, as `/*`"));
        }
        let reserved = WEBSOCKET_PREFIX.trim_end_matches('/');
        if path == reserved || path.starts_with(WEBSOCKET_PREFIX) {
            return Err(format!(
                "\"{text}\": paths under {WEBSOCKET_PREFIX} are the server's websocket channels"
            ));
        }
        Ok(Route { methods, path, prefix })
    }

    fn matches_path(&self, path: &str) -> bool {
        if self.prefix {
            path == self.path
                || (path.starts_with(&self.path) && path.as_bytes().get(self.path.len()) == Some(&b'/'))
        } else {
            path == self.path
        }
    }

    fn matches_method(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// Higher is more specific.
    fn specificity(&self) -> (bool, usize) {
        (!self.prefix, self.path.len())
    }

    fn pattern(&self) -> String {
        if self.prefix { format!("{}/*", self.path) } else { self.path.clone() }
    }

    fn overlaps(&self, other: &Route) -> bool {
        self.path == other.path
            && self.prefix == other.prefix
            && (self.methods.is_empty()
                || other.methods.is_empty()
                || self.methods.iter().any(|m| other.methods.contains(m)))
    }
}

/// Two components (or one, twice) claiming the same path and method is a manifest error.
pub(crate) fn check_overlaps(components: &[ComponentSpec]) -> Result<(), String> {
    let all: Vec<(&str, &Route)> =
        components.iter().flat_map(|c| c.routes.iter().map(move |r| (c.name.as_str(), r))).collect();
    for (i, (a, ra)) in all.iter().enumerate() {
        for (b, rb) in &all[i + 1..] {
            if ra.overlaps(rb) {
                return Err(format!(
                    "`components.{a}.routes` and `components.{b}.routes` both take `{}` for the same methods",
                    ra.pattern()
                ));
            }
        }
    }
    Ok(())
}

/// What the router decided for a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// The index of the component that serves it.
    Component(usize),
    /// Routes take the path, not the method; the methods they take.
    MethodNotAllowed(Vec<String>),
    /// No route takes the path.
    NotFound,
}

/// Routes of every component, most specific first.
pub(crate) struct Router {
    routes: Vec<(Route, usize)>,
}

impl Router {
    pub(crate) fn new(components: &[ComponentSpec]) -> Router {
        let mut routes: Vec<(Route, usize)> = components
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.routes.iter().map(move |r| (r.clone(), i)))
            .collect();
        routes.sort_by_key(|(r, _)| std::cmp::Reverse(r.specificity()));
        Router { routes }
    }

    pub(crate) fn route(&self, method: &str, path: &str) -> Routed {
        let mut allowed: Vec<String> = Vec::new();
        for (route, component) in &self.routes {
            if !route.matches_path(path) {
                continue;
            }
            if route.matches_method(method) {
                return Routed::Component(*component);
            }
            allowed.extend(route.methods.iter().cloned());
        }
        if allowed.is_empty() {
            return Routed::NotFound;
        }
        allowed.sort();
        allowed.dedup();
        Routed::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ComponentLimits;

    fn spec(name: &str, routes: &[&str]) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            source: "x.wasm".into(),
            build: None,
            routes: routes.iter().map(|r| Route::parse(r).unwrap()).collect(),
            grants: mixio_host::Grants::new(),
            limits: ComponentLimits::default(),
            reuse: None,
            native: None,
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let components = [
            spec("order", &["POST /order"]),
            spec("api", &["GET /api/*"]),
            spec("item", &["GET,PUT /api/items/*"]),
            spec("exact", &["/api/items/special"]),
            spec("fallback", &["GET /*"]),
        ];
        let router = Router::new(&components);
        assert_eq!(router.route("POST", "/order"), Routed::Component(0));
        assert_eq!(router.route("GET", "/api"), Routed::Component(1));
        assert_eq!(router.route("GET", "/api/x"), Routed::Component(1));
        assert_eq!(router.route("PUT", "/api/items/7"), Routed::Component(2));
        assert_eq!(router.route("GET", "/api/items"), Routed::Component(2));
        assert_eq!(router.route("DELETE", "/api/items/special"), Routed::Component(3));
        assert_eq!(router.route("GET", "/apix"), Routed::Component(4));
        assert_eq!(router.route("GET", "/order"), Routed::Component(4));
        assert_eq!(
            router.route("DELETE", "/api/items/7"),
            Routed::MethodNotAllowed(vec!["GET".into(), "PUT".into()])
        );
        assert_eq!(router.route("POST", "/elsewhere"), Routed::MethodNotAllowed(vec!["GET".into()]));
    }

    #[test]
    fn nothing_matches_without_a_catch_all() {
        let components = [spec("order", &["POST /order"])];
        assert_eq!(Router::new(&components).route("GET", "/"), Routed::NotFound);
        assert_eq!(
            Router::new(&components).route("GET", "/order"),
            Routed::MethodNotAllowed(vec!["POST".into()])
        );
    }

    #[test]
    fn invalid_routes_are_explained() {
        assert!(Route::parse("GET order").unwrap_err().contains("must start with `/`"));
        assert!(Route::parse("FETCH /x").unwrap_err().contains("not an HTTP method"));
        assert!(Route::parse("/a/*/b").unwrap_err().contains("`*` may only end"));
        assert!(Route::parse("/ws/*").unwrap_err().contains("websocket"));
        assert!(Route::parse("get,post /x").is_ok());
    }

    #[test]
    fn overlapping_routes_are_refused() {
        assert!(check_overlaps(&[spec("a", &["GET /x"]), spec("b", &["POST /x"])]).is_ok());
        assert!(check_overlaps(&[spec("a", &["GET /x/*"]), spec("b", &["GET /x"])]).is_ok());
        let e = check_overlaps(&[spec("a", &["GET /x"]), spec("b", &["/x"])]).unwrap_err();
        assert!(e.contains("components.a.routes") && e.contains("components.b.routes"), "{e}");
    }
}
