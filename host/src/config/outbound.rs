//! `http_hosts` patterns: which URLs a plugin may request, with Spin's
//! `allowed_outbound_hosts` semantics. Parsed here, beside the other grant keys, so config
//! validation can report a bad pattern with its position; matched by `capabilities::http`.

use std::fmt;

/// One `http_hosts` entry: `[scheme://]host[:port]`.
///
/// - scheme: `http`, `https` or `*`; left out, it is `https`.
/// - host: a name (`api.example.com`, matched without regard to case), an IP literal
///   (`127.0.0.1`, `[::1]`), `*.example.org` (any subdomain, not the apex) or `*` (any).
/// - port: a number, or `*`; left out, the scheme's default (80, 443; with scheme `*`,
///   both).
///
/// No path, query or user info: a grant names servers, not resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    /// `*.suffix`: names ending in `.suffix` (stored lowercase, without the dot).
    Subdomains(String),
    /// One host, lowercase; IPv6 literals without brackets.
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Any,
    /// The scheme's default port (80 for http, 443 for https).
    Default,
    Exact(u16),
}

impl HostPattern {
    /// Parses one entry; the error says what is wrong in words fit for a config message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let text = text.strip_suffix('/').unwrap_or(text);
        if text.is_empty() {
            return Err("is empty; write a host, e.g. \"api.example.com\"".into());
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) => {
                let s = s.to_ascii_lowercase();
                let scheme = match s.as_str() {
                    "*" => None,
                    "http" | "https" => Some(s),
                    _ => return Err(format!("scheme `{s}` is not http, https or *")),
                };
                (scheme, rest)
            }
            None => (Some("https".to_string()), text),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}` has a path or user info; name only [scheme://]host[:port]"
            ));
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Exact(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535 or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_name(suffix)?;
            HostMatch::Subdomains(suffix.to_string())
        } else if host.parse::<std::net::IpAddr>().is_ok() {
            HostMatch::Exact(host)
        } else {
            check_name(&host)?;
            HostMatch::Exact(host)
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry. `host` is the
    /// URL's host (IPv6 without brackets); `port` the explicit or default port.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        if self.scheme.as_ref().is_some_and(|s| *s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
            PortMatch::Default => default_port(&scheme) == Some(port),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        };
        port_ok && host_ok
    }

    /// Whether the entry names one host exactly (no `*`): only such an entry, with
    /// `http_private = true`, lets a request reach a private address.
    pub fn names_exact_host(&self, host: &str) -> bool {
        matches!(&self.host, HostMatch::Exact(h) if *h == host.trim_end_matches('.').to_ascii_lowercase())
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_deref().unwrap_or("*"))?;
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Subdomains(s) => write!(f, "*.{s}")?,
            HostMatch::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostMatch::Exact(h) => f.write_str(h)?,
        }
        match self.port {
            PortMatch::Any => f.write_str(":*"),
            PortMatch::Default => Ok(()),
            PortMatch::Exact(p) => write!(f, ":{p}"),
        }
    }
}

/// The port a URL of `scheme` uses when it names none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// What to add to `http_hosts` to allow `scheme://host:port` (for denial messages).
pub fn grant_for(scheme: &str, host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if default_port(scheme) == Some(port) {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{rest}`: missing `]` after the IPv6 address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            p => p
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| format!("`{rest}`: expected :port after `]`")),
        };
    }
    match rest.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => Err(format!(
            "`{rest}`: write an IPv6 address in brackets, e.g. \"[::1]:8080\""
        )),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((rest, None)),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a host name (`*` is allowed only as a whole label at the start, as in \"*.example.org\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_bare_host_means_https_on_443() {
        let g = p("api.example.com");
        assert!(g.matches("https", "api.example.com", 443));
        assert!(g.matches("https", "API.Example.com.", 443));
        assert!(!g.matches("http", "api.example.com", 80));
        assert!(!g.matches("https", "api.example.com", 8443));
        assert!(!g.matches("https", "example.com", 443));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_apex() {
        let g = p("https://*.example.org:8443");
        assert!(g.matches("https", "a.example.org", 8443));
        assert!(g.matches("https", "a.b.example.org", 8443));
        assert!(!g.matches("https", "example.org", 8443));
        assert!(!g.matches("https", "evilexample.org", 8443));
        assert!(!g.matches("https", "a.example.org", 443));
        assert!(!g.names_exact_host("a.example.org"));
    }

    #[test]
    fn scheme_and_port_wildcards() {
        let g = p("*://127.0.0.1:*");
        assert!(g.matches("http", "127.0.0.1", 1234));
        assert!(g.matches("https", "127.0.0.1", 443));
        assert!(g.names_exact_host("127.0.0.1"));
        let g = p("*://h");
        assert!(g.matches("http", "h", 80) && g.matches("https", "h", 443));
        assert!(!g.matches("http", "h", 443));
        let g = p("http://[::1]:8080");
        assert!(g.matches("http", "::1", 8080));
        assert_eq!(g.to_string(), "http://[::1]:8080");
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in [
            "",
            "ftp://x",
            "https://x/path",
            "user@x",
            "x:0",
            "x:http",
            "a.*.org",
            "*x.org",
            "::1",
            "[::1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn the_grant_to_add_leaves_out_default_ports() {
        assert_eq!(grant_for("https", "a.b", 443), "https://a.b");
        assert_eq!(grant_for("http", "a.b", 8080), "http://a.b:8080");
        assert_eq!(grant_for("http", "::1", 80), "http://[::1]");
    }
}
