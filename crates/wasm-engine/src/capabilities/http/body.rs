//! The bodies [`HttpHandler`](super::HttpHandler) serves with: a request's read up to
//! the buffered bound before an instance is taken ([`Prefetched`]) and bounded after
//! ([`BoundedBody`]), the guest's response watched for a failure while it is written
//! ([`Watched`]), and the generic response for an error status ([`plain`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, WasiBody};

/// The body of every response an [`HttpHandler`] makes.
pub type ResponseBody = WasiBody;

/// A response for an error status, with a generic body: never the guest's message.
pub(super) fn plain(status: StatusCode) -> Response<ResponseBody> {
    let text: &'static str = match status {
        StatusCode::SERVICE_UNAVAILABLE => "service unavailable\n",
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large\n",
        StatusCode::REQUEST_TIMEOUT => "request body timed out\n",
        StatusCode::BAD_REQUEST => "bad request\n",
        _ => "internal server error\n",
    };
    let body = http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pin_project_lite::pin_project! {
    /// The guest's response body, which ends in an error (hyper then closes the
    /// connection without the body's proper end) when the guest failed while writing
    /// it: Wasmtime's body ends as if complete when its writer is dropped unfinished,
    /// and a client must not take a body cut off by a trap or a timeout for a whole one.
    pub(super) struct Watched {
        #[pin]
        pub(super) body: WasiBody,
        pub(super) failed: Arc<AtomicBool>,
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        match std::task::ready!(this.body.poll_frame(cx)) {
            None if this.failed.load(Ordering::Acquire) => {
                Poll::Ready(Some(Err(Error::HttpResponseIncomplete)))
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not known until the last frame is polled (it may be the error).
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body cut off at the bound: past it, the guest's read fails with
    /// `HTTP-request-body-size`.
    pub(super) struct BoundedBody<B> {
        #[pin]
        body: B,
        left: u64,
        max: u64,
    }
}

impl<B> BoundedBody<B> {
    pub(super) fn new(body: B, max: u64) -> Self {
        Self {
            body,
            left: max,
            max,
        }
    }
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        match std::task::ready!(this.body.poll_frame(cx)) {
            None => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(Error::InternalError(Some(format!(
                "reading the request body failed: {e}"
            )))))),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > *this.left {
                        *this.left = 0;
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(*this.max)))));
                    }
                    *this.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why a request body could not be read before an instance was taken.
pub(super) enum Unread {
    /// The client paused longer than the body timeout.
    Stalled,
    /// The body grew past the largest accepted.
    TooLarge,
    /// The connection failed (the text is the client's side of it).
    Failed(String),
}

/// A request body whose first part (all of it, when small) was read before an instance
/// was taken; the rest, if any, streams on, each piece within the body timeout (a pause
/// past it ends the body with an error, and marks `stalled`).
pub(super) struct Prefetched<B> {
    head: Option<Bytes>,
    rest: Option<Pin<Box<B>>>,
    trailers: Option<http::HeaderMap>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    stalled: Arc<AtomicBool>,
}

/// Why a streamed request body ended early.
#[derive(Debug)]
pub(super) enum BodyError {
    Stalled,
    Client(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stalled => {
                f.write_str("the client paused sending the body past the body timeout")
            }
            Self::Client(e) => f.write_str(e),
        }
    }
}

impl<B> Prefetched<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    /// Reads `body` until it ends or `buffered` bytes are in hand, each piece within
    /// `timeout` and all of them within three times that (a client trickling a byte now
    /// and then holds its connection no longer than that); more than `max` bytes is too
    /// large.
    pub(super) async fn read(
        body: B,
        (buffered, max): (u64, u64),
        timeout: Duration,
        stalled: Arc<AtomicBool>,
    ) -> Result<Self, Unread> {
        let mut body = Box::pin(body);
        let mut head = bytes::BytesMut::new();
        let mut trailers = None;
        let mut ended = body.is_end_stream();
        let all_by = tokio::time::Instant::now() + timeout.saturating_mul(3);
        while !ended && (head.len() as u64) < buffered {
            let piece_by = (tokio::time::Instant::now() + timeout).min(all_by);
            match tokio::time::timeout_at(piece_by, body.frame()).await {
                Err(_) => return Err(Unread::Stalled),
                Ok(None) => ended = true,
                Ok(Some(Err(e))) => return Err(Unread::Failed(e.to_string())),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        head.extend_from_slice(&data);
                        if head.len() as u64 > max {
                            return Err(Unread::TooLarge);
                        }
                        ended = body.is_end_stream();
                    }
                    // Trailers end a body.
                    Err(frame) => {
                        trailers = frame.into_trailers().ok();
                        ended = true;
                    }
                },
            }
        }
        Ok(Self {
            head: (!head.is_empty()).then(|| head.freeze()),
            rest: (!ended).then_some(body),
            trailers,
            pause: None,
            timeout,
            stalled,
        })
    }
}

impl<B> Body for Prefetched<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if let Some(rest) = this.rest.as_mut() {
            match rest.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(pause) = this.pause.as_mut() {
                        pause
                            .as_mut()
                            .reset(tokio::time::Instant::now() + this.timeout);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.rest = None;
                    return Poll::Ready(Some(Err(BodyError::Client(e.to_string()))));
                }
                Poll::Ready(None) => this.rest = None,
                Poll::Pending => {
                    let timeout = this.timeout;
                    let pause = this
                        .pause
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if pause.as_mut().poll(cx).is_ready() {
                        this.stalled.store(true, Ordering::Release);
                        this.rest = None;
                        return Poll::Ready(Some(Err(BodyError::Stalled)));
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.rest {
            None => SizeHint::with_exact(self.head.as_ref().map_or(0, |h| h.len() as u64)),
            Some(rest) => {
                let mut hint = rest.size_hint();
                let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
                hint.set_lower(hint.lower() + head);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + head);
                }
                hint
            }
        }
    }
}
