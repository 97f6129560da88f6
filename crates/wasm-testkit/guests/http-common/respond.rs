// Shared by the HTTP handler guests (`include!`d): answering, and reading a body.

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

/// Sets the response `status` with a text/plain `body` and writes it.
#[allow(dead_code)]
fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let (body_handle, stream) = start(out, status);
    write_all(&stream, body);
    finish(body_handle, stream);
}

/// Sets the response and returns its body, open for writing.
fn start(out: ResponseOutparam, status: u16) -> (OutgoingBody, OutputStream) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().unwrap();
    (body, stream)
}

/// Writes all of `bytes` (4096 at most per write, as `blocking-write-and-flush` takes).
/// `false` if the client went away.
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let n = bytes.len().min(4096);
        if stream.blocking_write_and_flush(&bytes[..n]).is_err() {
            return false;
        }
        bytes = &bytes[n..];
    }
    true
}

fn finish(body: OutgoingBody, stream: OutputStream) {
    drop(stream);
    OutgoingBody::finish(body, None).unwrap();
}

/// Reads a whole body: `Err` with the error's text when the host ends it with one.
#[allow(dead_code)]
fn read_all(body: &IncomingBody) -> Result<Vec<u8>, String> {
    let stream = body.stream().unwrap();
    let mut all = Vec::new();
    let result = loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => all.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(all),
            Err(StreamError::LastOperationFailed(e)) => break Err(e.to_debug_string()),
        }
    };
    drop::<InputStream>(stream);
    result
}

/// The request's path and query.
#[allow(dead_code)]
fn path(request: &IncomingRequest) -> String {
    request.path_with_query().unwrap_or_else(|| "/".into())
}

/// The value of `name` in the query string.
#[allow(dead_code)]
fn query<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = path.split_once('?')?;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
