//! `[http]` of a `System.toml`: HTTP routes into actors. Each route sends a request's
//! body to an actor as a request message and answers with its reply; the bounds on
//! what a client may make the host hold (body, requests in flight, connections, time)
//! are the section's, with defaults.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use airssys_wasm_core::actor::check_name;

use crate::doc::{Doc, PResult, duration, tables};

const HTTP_KEYS: &[&str] = &[
    "listen",
    "timeout",
    "max_body",
    "max_in_flight",
    "max_connections",
    "header_timeout",
    "route",
];
const ROUTE_KEYS: &[&str] = &["path", "actor", "methods"];

/// `[http]`: HTTP routes into actors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSection {
    /// `listen`: the address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `timeout`: how long a request waits for the actor's reply (default 5 s; past
    /// it, 504).
    pub timeout: Duration,
    /// `max_body`: the largest request body (default 1 MiB; past it, 413).
    pub max_body: u64,
    /// `max_in_flight`: requests handled at once (default 256; past it, 503).
    pub max_in_flight: u32,
    /// `max_connections`: open client connections at most (default 1,024; past it,
    /// new ones wait to be accepted).
    pub max_connections: u32,
    /// `header_timeout`: how long a client may take to send a request's head, and to
    /// send its body (default 10 s); also how long an idle connection stays open.
    pub header_timeout: Duration,
    /// `[[http.route]]`, in file order.
    pub routes: Vec<HttpRoute>,
    /// `FILE:LINE:COLUMN` of the section.
    pub origin: String,
}

/// One `[[http.route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRoute {
    /// `path`: the request path it takes, exactly (the query aside).
    pub path: String,
    /// `actor`: the actor (or pool) the request goes to.
    pub actor: String,
    /// `methods`: the methods it takes, upper case (default `POST`).
    pub methods: Vec<String>,
    /// `FILE:LINE:COLUMN` of the route.
    pub origin: String,
}

/// Reads `[http]`; `actors` are the file's actor names, which routes must name unless
/// the system joins a cluster (`remote`), where another host may serve the name.
pub(super) fn http(
    doc: &Doc<'_>,
    span: Range<usize>,
    t: &DeTable<'_>,
    actors: &[&str],
    remote: bool,
) -> PResult<HttpSection> {
    const T: &str = "http";
    doc.check_keys(t, HTTP_KEYS, Some(T))?;
    let v = Doc::get(t, "listen").ok_or_else(|| {
        doc.missing(
            span.clone(),
            T,
            "listen",
            "; routes are served on an address",
            "listen = \"127.0.0.1:8080\"",
        )
    })?;
    let text = doc.string(v, "http.listen")?;
    let listen: SocketAddr = text.parse().map_err(|_| {
        doc.invalid(
            v.span(),
            "http.listen",
            format!("`{text}` is not an address to listen on"),
            Some("write IP:PORT, e.g. \"127.0.0.1:8080\" (port 0: a free one)".into()),
        )
    })?;
    let timeout = duration(doc, t, "timeout", "http.timeout")?.unwrap_or(Duration::from_secs(5));
    let header_timeout = duration(doc, t, "header_timeout", "http.header_timeout")?
        .unwrap_or(Duration::from_secs(10));
    for (key, d) in [("timeout", timeout), ("header_timeout", header_timeout)] {
        if d.is_zero() {
            let at = Doc::get(t, key).map_or(span.clone(), |v| v.span());
            return Err(doc.invalid(
                at,
                &format!("http.{key}"),
                "a zero timeout would refuse every request".into(),
                Some("e.g. \"5s\"".into()),
            ));
        }
    }
    let max_body = match Doc::get(t, "max_body") {
        None => 1 << 20,
        Some(v) => doc.size(v, "http.max_body", "1MiB")?,
    };
    let count = |key: &str, default: u32| -> PResult<u32> {
        let dotted = format!("http.{key}");
        let Some(v) = Doc::get(t, key) else {
            return Ok(default);
        };
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(doc.wrong_type(v.span(), &dotted, "a whole number", v.get_ref()));
        };
        let n = doc.unsigned(v.span(), &dotted, i.as_str(), i.radix())?;
        match u32::try_from(n) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(doc.invalid(
                v.span(),
                &dotted,
                format!("`{key}` must be 1 to {}", u32::MAX),
                None,
            )),
        }
    };
    let max_in_flight = count("max_in_flight", 256)?;
    let max_connections = count("max_connections", 1024)?;

    let mut routes: Vec<HttpRoute> = Vec::new();
    for (span, r) in tables(doc, t, "route")? {
        let route = route(doc, span, r, actors, remote)?;
        if let Some(first) = routes.iter().find(|x| x.path == route.path) {
            let at = Doc::get(r, "path").map_or(0..0, |v| v.span());
            return Err(doc.invalid(
                at,
                "http.route.path",
                format!(
                    "`{}` is routed twice (first at {})",
                    route.path, first.origin
                ),
                Some("one route per path".into()),
            ));
        }
        routes.push(route);
    }
    if routes.is_empty() {
        return Err(doc.missing(
            span.clone(),
            T,
            "route",
            "; [http] serves its routes",
            "[[http.route]] path = \"/orders\", actor = \"router\"",
        ));
    }
    Ok(HttpSection {
        listen,
        timeout,
        max_body,
        max_in_flight,
        max_connections,
        header_timeout,
        routes,
        origin: doc.origin(&span),
    })
}

fn route(
    doc: &Doc<'_>,
    span: Range<usize>,
    t: &DeTable<'_>,
    actors: &[&str],
    remote: bool,
) -> PResult<HttpRoute> {
    const T: &str = "http.route";
    doc.check_keys(t, ROUTE_KEYS, Some(T))?;
    let v = Doc::get(t, "path")
        .ok_or_else(|| doc.missing(span.clone(), T, "path", "", "path = \"/orders\""))?;
    let path = doc.string(v, "http.route.path")?;
    let path_ok = path.starts_with('/')
        && path.len() <= 1024
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%'));
    if !path_ok {
        return Err(doc.invalid(
            v.span(),
            "http.route.path",
            format!("`{path}` is not a route path"),
            Some(
                "a path starting with `/`, of visible ASCII without `?`, `#` or `%`, e.g. \
                 \"/orders\""
                    .into(),
            ),
        ));
    }
    let a = Doc::get(t, "actor")
        .ok_or_else(|| doc.missing(span.clone(), T, "actor", "", "actor = \"router\""))?;
    let actor = doc.string(a, "http.route.actor")?;
    check_name(actor).map_err(|e| doc.invalid(a.span(), "http.route.actor", e, None))?;
    if !remote && !actors.contains(&actor) {
        return Err(doc.invalid(
            a.span(),
            "http.route.actor",
            format!("no [[actor]] here is named `{actor}`"),
            Some(if actors.is_empty() {
                "declare the actor in an [[actor]] table".into()
            } else {
                format!("actors here: {}", actors.join(", "))
            }),
        ));
    }
    let methods = doc.strings(
        t,
        "methods",
        "http.route.methods",
        |m, _| {
            let ok = !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase());
            if ok {
                Ok(m.to_owned())
            } else {
                Err((
                    format!("`{m}` is not an HTTP method"),
                    Some("upper case, e.g. \"POST\" or \"GET\"".into()),
                ))
            }
        },
        |before, m| {
            before.contains(m).then(|| {
                (
                    format!("`{m}` is listed twice"),
                    "list each method once".to_owned(),
                )
            })
        },
    )?;
    let methods = if methods.is_empty() {
        vec!["POST".to_owned()]
    } else {
        methods
    };
    Ok(HttpRoute {
        path: path.to_owned(),
        actor: actor.to_owned(),
        methods,
        origin: doc.origin(&span),
    })
}
