//! A real HTTP/1.1 server and client (hyper) on 127.0.0.1 for the tests of outgoing
//! requests and of `serve`.
//!
//! [`Upstream`] serves, on a port of its own:
//! - `/hello`: `200 hi`;
//! - `/redirect`: `302` to the `Location` in its `to` query parameter;
//! - `/endless`: `200` and a body that never ends (counted in
//!   [`Upstream::bytes_sent`]);
//! - `/stall-head`: accepts the request and never answers;
//! - `/stall-body`: answers `200`, sends `first`, then never more;
//! - anything else: `404`.
//!
//! Every request is counted ([`Upstream::requests`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// A body of any of the test server's kinds.
type AnyBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// An HTTP server on 127.0.0.1 answering the fixed routes of the module docs; stops
/// when dropped.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    bytes_sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Starts a server on a free port of 127.0.0.1 (within a tokio runtime).
    ///
    /// # Panics
    ///
    /// When no port can be bound (a test machine without loopback).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local address: {e}"));
        let requests = Arc::new(AtomicU64::new(0));
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let (r, b) = (Arc::clone(&requests), Arc::clone(&bytes_sent));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, b) = (Arc::clone(&r), Arc::clone(&b));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        r.fetch_add(1, Ordering::Relaxed);
                        let b = Arc::clone(&b);
                        async move { Ok::<_, Infallible>(route(req, b).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            bytes_sent,
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests it has received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes of `/endless` bodies it has handed to connections.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
}

fn full(status: StatusCode, text: &'static str) -> Response<AnyBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *r.status_mut() = status;
    r
}

async fn route(req: Request<Incoming>, sent: Arc<AtomicU64>) -> Response<AnyBody> {
    match req.uri().path() {
        "/hello" => full(StatusCode::OK, "hi"),
        "/redirect" => {
            let to = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/hello")
                .to_owned();
            let mut r = full(StatusCode::FOUND, "");
            if let Ok(v) = hyper::header::HeaderValue::from_str(&to) {
                r.headers_mut().insert(hyper::header::LOCATION, v);
            }
            r
        }
        "/endless" => Response::new(Endless { sent }.boxed()),
        "/stall-head" => {
            std::future::pending::<()>().await;
            full(StatusCode::OK, "never")
        }
        "/stall-body" => Response::new(StallBody { sent_first: false }.boxed()),
        _ => full(StatusCode::NOT_FOUND, "not found"),
    }
}

/// A body that never ends: 64 KiB frames, as fast as they are taken.
struct Endless {
    sent: Arc<AtomicU64>,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        self.sent.fetch_add(CHUNK.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// A body that sends `first`, then nothing, forever.
struct StallBody {
    sent_first: bool,
}

impl Body for StallBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent_first {
            return Poll::Pending;
        }
        self.sent_first = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first")))))
    }
}

/// A response as a test reads it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body, as text (lossy).
    pub body: String,
}

/// A keep-alive HTTP/1.1 connection to `addr` (hyper's client).
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Connection {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// When the connection or the HTTP handshake fails.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Self { sender, addr })
    }

    /// Sends `method path` with `body` on this connection and reads the whole reply,
    /// within `timeout`.
    ///
    /// # Errors
    ///
    /// When the request fails, the connection is closed, or `timeout` passes.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> std::io::Result<Reply> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(std::io::Error::other)?;
        let exchange = async {
            self.sender.ready().await.map_err(std::io::Error::other)?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(std::io::Error::other)?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            Ok(Reply {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in time"))?
    }
}

/// One `GET path` to `addr` on a new connection, within `timeout`.
///
/// # Errors
///
/// As [`Connection::send`].
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Reply> {
    Connection::open(addr)
        .await?
        .send("GET", path, b"", timeout)
        .await
}
