//! The outbound HTTP grant (`[capabilities.http] outbound = [...]`): which
//! `scheme://host[:port]` a component may send requests to, in the syntax Spin's
//! `allowed_outbound_hosts` made familiar.
//!
//! - `https://api.example.com`: that host, the scheme's default port (443);
//! - `https://*.example.org`: every subdomain of `example.org`, not `example.org` itself;
//! - `http://127.0.0.1:8080`, `http://localhost:*`: a port, or any port;
//! - `*://*:*`: everything (spelled out: a bare `*` is refused).
//!
//! Paths, queries and wildcards anywhere but a leading `*.` are refused.
//!
//! Every component is linked with `wasi:http/outgoing-handler`; this grant decides
//! where its requests may go. The engine checks each request (and so each redirect a
//! guest follows, which is a request of its own) against it before connecting.

/// Which hosts an [`OutboundRule`] matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.example.org`: the subdomains of `example.org` (stored as `.example.org`).
    Subdomains(String),
    /// One host name or IP address (lowercase; an IPv6 address without brackets).
    Exact(String),
}

/// One `scheme://host[:port]` entry of the outbound allowlist.
///
/// ```
/// use airssys_wasm_core::http::OutboundRule;
///
/// let r = OutboundRule::parse("https://*.example.org")?;
/// assert!(r.allows("https", "api.example.org", 443));
/// assert!(!r.allows("https", "example.org", 443));
/// assert!(!r.allows("http", "api.example.org", 80));
/// assert_eq!(r.to_string(), "https://*.example.org:443");
/// assert!(OutboundRule::parse("*").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundRule {
    /// The scheme (lowercase); `None` for `*`, any scheme.
    pub scheme: Option<String>,
    /// The hosts.
    pub host: HostPattern,
    /// The port; `None` for `*`, any port.
    pub port: Option<u16>,
}

/// The port a scheme uses when an entry names none.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundRule {
    /// Parses one entry.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong and the form expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        const FORM: &str = "write scheme://host[:port], e.g. \"https://api.example.com\", \
                            \"https://*.example.org\" or \"http://127.0.0.1:8080\"";
        let trimmed = text.trim();
        if trimmed == "*" || trimmed.is_empty() {
            return Err(format!(
                "`{text}` is not an outbound host: to allow every host, write \"*://*:*\"; \
                 better, name the hosts: {FORM}"
            ));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(format!("`{text}` has no scheme; {FORM}"));
        };
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Some(s.to_ascii_lowercase())
            }
            s => return Err(format!("`{s}` in `{text}` is not a scheme; {FORM}")),
        };
        if let Some(at) = rest.find(['/', '?', '#']) {
            return Err(format!(
                "`{text}` has a path (`{}`): entries name hosts only; {FORM}",
                &rest[at..]
            ));
        }
        if rest.contains('@') {
            return Err(format!("`{text}` has user information; {FORM}"));
        }
        // The host, and the port after the last ':' (outside an IPv6 address's brackets).
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (ip, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}` has an unclosed `[`; {FORM}"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("`{text}`: expected `:port` after `]`"))?,
                ),
            };
            let ip: std::net::Ipv6Addr = ip
                .parse()
                .map_err(|_| format!("`{ip}` in `{text}` is not an IPv6 address"))?;
            (HostPattern::Exact(ip.to_string()), port)
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            (host_pattern(host, text)?, port)
        };
        let port =
            match port {
                Some("*") => None,
                Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    format!("`{p}` in `{text}` is not a port (1 to 65535, or *)")
                })?),
                None => Some(scheme.as_deref().and_then(default_port).ok_or_else(|| {
                    format!(
                        "`{text}` names no port and its scheme has no default one; add `:PORT` or \
                     `:*` (http and https default to 80 and 443)"
                    )
                })?),
            };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .trim_end_matches('.');
        // An IPv6 address in its one canonical spelling (as entries keep it).
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_ascii_lowercase(),
        };
        self.scheme
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(scheme))
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Subdomains(suffix) => {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }
                HostPattern::Exact(h) => *h == host,
            }
    }
}

/// The host part of an entry: `*`, `*.domain`, a name or an IPv4 address.
fn host_pattern(host: &str, text: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(if host.contains('*') {
            format!(
                "`{host}` in `{text}` has a wildcard where only a leading `*.` (subdomains) or \
                 a whole `*` (any host) is accepted"
            )
        } else {
            format!("`{host}` in `{text}` is not a host name or IP address")
        });
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        HostPattern::Subdomains(format!(".{name}"))
    } else {
        HostPattern::Exact(name)
    })
}

impl std::fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scheme.as_deref().unwrap_or("*"))?;
        f.write_str("://")?;
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Subdomains(s) => write!(f, "*{s}")?,
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

/// Outbound HTTP: the hosts a component may send requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HttpGrant {
    /// The allowlist, in order.
    pub outbound: Vec<OutboundRule>,
}

/// `http outbound [https://api.example.com, http://localhost:8080]`.
impl std::fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<_> = self.outbound.iter().map(ToString::to_string).collect();
        write!(f, "http outbound [{}]", hosts.join(", "))
    }
}

impl HttpGrant {
    /// Whether any entry allows `scheme://host:port`.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.outbound.iter().any(|r| r.allows(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> OutboundRule {
        OutboundRule::parse(text).unwrap()
    }

    #[test]
    fn the_issues_examples() {
        let r = rule("https://api.example.com");
        assert!(r.allows("https", "api.example.com", 443));
        assert!(r.allows("HTTPS", "API.Example.com", 443));
        assert!(!r.allows("https", "api.example.com", 8443));
        assert!(!r.allows("http", "api.example.com", 443));
        assert!(!r.allows("https", "evil.api.example.com", 443));

        let r = rule("https://*.example.org");
        assert!(r.allows("https", "a.b.example.org", 443));
        assert!(!r.allows("https", "example.org", 443));
        assert!(!r.allows("https", "badexample.org", 443));

        let r = rule("http://127.0.0.1:8080");
        assert!(r.allows("http", "127.0.0.1", 8080));
        assert!(!r.allows("http", "127.0.0.1", 80));

        let r = rule("http://localhost:*");
        assert!(r.allows("http", "localhost", 1));
        assert!(r.allows("http", "localhost", 65535));

        let r = rule("*://*:*");
        assert!(r.allows("https", "anything.example", 1));
    }

    #[test]
    fn ipv6_and_trailing_dots() {
        let r = rule("http://[::1]:8080");
        assert!(r.allows("http", "[::1]", 8080));
        assert!(r.allows("http", "::1", 8080));
        assert_eq!(r.to_string(), "http://[::1]:8080");
        assert!(rule("https://example.com").allows("https", "example.com.", 443));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        for (bad, says) in [
            ("*", "*://*:*"),
            ("", "*://*:*"),
            ("example.com", "no scheme"),
            ("https://example.com/api", "has a path"),
            ("https://example.com?q", "has a path"),
            ("https://user@example.com", "user information"),
            ("https://ex*ample.com", "wildcard"),
            ("https://*example.com", "wildcard"),
            ("https://a.*.example.com", "wildcard"),
            ("https://example.com:99999", "not a port"),
            ("https://example.com:0", "not a port"),
            ("ftp://example.com", "no default"),
            ("*://example.com", "no default"),
            ("1http://example.com", "not a scheme"),
            ("https://exa mple.com", "not a host name"),
            ("http://[::1", "unclosed"),
            ("http://[zz]:1", "not an IPv6"),
        ] {
            let e = OutboundRule::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "https://api.example.com:443",
            "https://*.example.org:443",
            "http://127.0.0.1:8080",
            "http://localhost:*",
            "*://*:*",
        ] {
            let r = rule(text);
            assert_eq!(r.to_string(), text);
            assert_eq!(rule(&r.to_string()), r);
        }
    }
}
