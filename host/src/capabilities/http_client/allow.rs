//! The allow-list of outbound HTTP: which `scheme://host:port` a component may reach.
//!
//! A pattern is `scheme://host[:port]`:
//! - `scheme` is `http`, `https` or `*`;
//! - `host` is a name or IP literal (`api.example.com`, `127.0.0.1`, `[::1]`), `*.example.com`
//!   (any subdomain, not `example.com` itself), or `*` (any host);
//! - `port` is a number or `*`; without one, the scheme's default port (80, 443).
//!
//! A URL with credentials (`https://user:pass@...`) is refused whatever the list says: send an
//! `Authorization` header instead.

use url::{Host, Url};

/// One allowed `scheme://host:port` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomain(String),
}

/// A component's allowed hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Pattern>);

impl AllowList {
    /// Parses patterns; an invalid one is an error naming it.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<AllowList, String> {
        patterns.iter().map(|p| parse_pattern(p.as_ref())).collect::<Result<_, _>>().map(AllowList)
    }

    /// Why `url` may not be fetched, if it may not.
    pub fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Invalid(format!(
                "unsupported scheme `{}` (use http or https)",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::NotAllowed(format!(
                "{}: credentials in URLs are not allowed; send an Authorization header",
                redacted(url)
            )));
        }
        let Some(host) = url.host() else {
            return Err(Refusal::Invalid(format!("`{url}` has no host")));
        };
        let host = match host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => format!("[{ip}]"),
        };
        let port = url.port_or_known_default().unwrap_or(0);
        let allowed = self.0.iter().any(|p| {
            p.scheme.as_deref().is_none_or(|s| s == url.scheme())
                && p.port.is_none_or(|want| want == port)
                && match &p.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomain(parent) => {
                        host.len() > parent.len() + 1
                            && host.ends_with(parent.as_str())
                            && host.as_bytes()[host.len() - parent.len() - 1] == b'.'
                    }
                }
        });
        if allowed { Ok(()) } else { Err(Refusal::NotAllowed(url.to_string())) }
    }
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not on the list (or carrying credentials).
    NotAllowed(String),
    /// Not an http(s) URL with a host.
    Invalid(String),
}

fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn parse_pattern(pattern: &str) -> Result<Pattern, String> {
    let bad = |why: &str| format!("invalid allowed host `{pattern}`: {why}");
    let (scheme, rest) = pattern.split_once("://").ok_or_else(|| bad("expected `scheme://host[:port]`"))?;
    let scheme = match scheme {
        "*" => None,
        "http" | "https" => Some(scheme.to_string()),
        _ => return Err(bad("the scheme must be http, https or *")),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err(bad("only scheme, host and port are allowed (no path, user or query)"));
    }
    // Split the port off, minding IPv6 literals (`[::1]:8080`).
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.starts_with('[') || h.ends_with(']')) && !p.contains(']') => {
            (h, Some(p))
        }
        _ => (rest, None),
    };
    let port = match port {
        None => match scheme.as_deref() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        },
        Some("*") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port must be a number or *"))?),
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(parent) = host.strip_prefix("*.") {
        if parent.is_empty() || parent.contains('*') {
            return Err(bad("a wildcard may only stand for the leftmost labels: `*.example.com`"));
        }
        HostPattern::Subdomain(parent.to_string())
    } else if host.is_empty() || host.contains('*') {
        return Err(bad("a wildcard may only stand for the leftmost labels: `*.example.com`"));
    } else {
        // Normalise IP literals the way URLs are (e.g. `[::0001]` is `[::1]`).
        let parsed = Url::parse(&format!("http://{host}/")).map_err(|e| bad(&e.to_string()))?;
        HostPattern::Exact(match parsed.host() {
            Some(Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(h) => h.to_string(),
            None => return Err(bad("no host")),
        })
    };
    Ok(Pattern { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(patterns: &[&str], url: &str) -> bool {
        AllowList::parse(patterns).unwrap().check(&Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let list = ["https://api.example.com"];
        assert!(allows(&list, "https://api.example.com/v1?q=1"));
        assert!(allows(&list, "https://API.example.com:443/"));
        assert!(!allows(&list, "https://api.example.com:8443/"));
        assert!(!allows(&list, "http://api.example.com/"));
        assert!(!allows(&list, "https://evil.com/?https://api.example.com"));
        assert!(!allows(&list, "https://api.example.com.evil.com/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["https://*.example.com"], "https://a.b.example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://badexample.com/"));
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1:3000/x"));
        assert!(!allows(&["http://127.0.0.1:*"], "http://127.0.0.2:3000/x"));
        assert!(allows(&["*://*:*"], "http://10.0.0.1:1/"));
        assert!(allows(&["http://[::1]:8080"], "http://[0:0:0:0:0:0:0:1]:8080/"));
    }

    #[test]
    fn credentials_and_other_schemes_are_refused() {
        let list = AllowList::parse(&["*://*:*"]).unwrap();
        let creds = list.check(&Url::parse("https://user:secret@example.com/").unwrap()).unwrap_err();
        assert!(matches!(&creds, Refusal::NotAllowed(m) if !m.contains("secret")), "{creds:?}");
        let ftp = list.check(&Url::parse("ftp://example.com/").unwrap()).unwrap_err();
        assert!(matches!(ftp, Refusal::Invalid(_)));
    }

    #[test]
    fn ip_literals_outside_the_list_are_refused() {
        assert!(!allows(&["https://api.example.com"], "https://93.184.216.34/"));
        assert!(!allows(&["http://localhost:*"], "http://127.0.0.1:80/"));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for bad in ["example.com", "ftp://x", "http://a*.com", "http://x:port", "http://x/path", "http://*."]
        {
            assert!(AllowList::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
