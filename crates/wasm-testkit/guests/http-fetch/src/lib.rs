//! A `wasi:http/incoming-handler` that makes outgoing requests
//! (`wasi:http/outgoing-handler`): `GET /fetch?url=URL` sends `GET URL` and answers
//! `status N` and the response body, or `error CODE` (the `wasi:http` error code) when
//! the request failed. `&read=count` reads the response body without keeping it and
//! answers `read N bytes` or `read N bytes, then error CODE`; `&connect_ms=N` and
//! `&between_ms=N` set the request options' timeouts. `&flood=N` (hostile) sends N
//! requests at once without waiting for any, waits 300 ms, and answers `refused R of N
//! (CODE)`: how many had failed by then, and the first failure's code.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, OutgoingRequest, RequestOptions, Scheme};

include!("../../http-common/respond.rs");

struct Fetch;

/// An error code as `HttpRequestDenied` (its debug form, without the type's name).
fn name(code: &ErrorCode) -> String {
    let text = format!("{code:?}");
    text.strip_prefix("ErrorCode::").unwrap_or(&text).to_owned()
}

fn fetch(url: &str, options: RequestOptions, count_only: bool) -> Result<String, ErrorCode> {
    let (scheme, rest) = url.split_once("://").ok_or(ErrorCode::HttpRequestUriInvalid)?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.into()),
        }))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    request
        .set_authority(Some(authority))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    let pending = outgoing_handler::handle(request, Some(options))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or(ErrorCode::InternalError(Some("not ready".into())))?
        .map_err(|()| ErrorCode::InternalError(Some("taken twice".into())))??;
    let status = response.status();
    let body = response.consume().map_err(|()| ErrorCode::InternalError(None))?;
    if count_only {
        let stream = body.stream().map_err(|()| ErrorCode::InternalError(None))?;
        let mut n = 0usize;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => n += chunk.len(),
                Err(StreamError::Closed) => return Ok(format!("read {n} bytes\n")),
                Err(StreamError::LastOperationFailed(e)) => {
                    let what = match wasip2::http::types::http_error_code(&e) {
                        Some(code) => name(&code),
                        // Wasmtime 50 reports a response body's failure as a plain
                        // error, not an error code: its first line names it.
                        None => e.to_debug_string().lines().next().unwrap_or("").to_owned(),
                    };
                    return Ok(format!("read {n} bytes, then error {what}\n"));
                }
            }
        }
    }
    let text = match read_all(&body) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(body failed: {e})"),
    };
    Ok(format!("status {status}\n{text}"))
}

/// Sends `n` requests for `url` at once, keeps them all, and after 300 ms counts those
/// that had failed.
fn flood(url: &str, n: u32) -> Result<String, ErrorCode> {
    let (scheme, rest) = url.split_once("://").ok_or(ErrorCode::HttpRequestUriInvalid)?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let mut pending = Vec::new();
    let mut refused = 0;
    let mut first = None;
    for _ in 0..n {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        match outgoing_handler::handle(request, None) {
            Ok(f) => pending.push(f),
            Err(code) => {
                refused += 1;
                first.get_or_insert_with(|| name(&code));
            }
        }
    }
    wasip2::clocks::monotonic_clock::subscribe_duration(300_000_000).block();
    for f in &pending {
        // Polled through its pollable: a future's outcome is only taken in there.
        if !f.subscribe().ready() {
            continue;
        }
        if let Some(Ok(Err(code))) = f.get() {
            refused += 1;
            first.get_or_insert_with(|| name(&code));
        }
    }
    Ok(format!(
        "refused {refused} of {n} ({})\n",
        first.unwrap_or_else(|| "none".into())
    ))
}

impl Guest for Fetch {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let p = path(&request);
        let Some(url) = query(&p, "url") else {
            return respond(out, 400, b"usage: /fetch?url=URL\n");
        };
        if let Some(n) = query(&p, "flood").and_then(|v| v.parse::<u32>().ok()) {
            return match flood(url, n) {
                Ok(text) => respond(out, 200, text.as_bytes()),
                Err(code) => respond(out, 200, format!("error {}\n", name(&code)).as_bytes()),
            };
        }
        let options = RequestOptions::new();
        if let Some(ms) = query(&p, "connect_ms").and_then(|v| v.parse::<u64>().ok()) {
            let _ = options.set_connect_timeout(Some(ms * 1_000_000));
        }
        if let Some(ms) = query(&p, "between_ms").and_then(|v| v.parse::<u64>().ok()) {
            let _ = options.set_between_bytes_timeout(Some(ms * 1_000_000));
        }
        let count_only = query(&p, "read") == Some("count");
        match fetch(url, options, count_only) {
            Ok(text) => respond(out, 200, text.as_bytes()),
            Err(code) => respond(out, 200, format!("error {}\n", name(&code)).as_bytes()),
        }
    }
}

wasip2::http::proxy::export!(Fetch);
