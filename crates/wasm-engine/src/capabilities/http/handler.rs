//! [`HttpHandler`]: serving `wasi:http/incoming-handler` components, a fresh sandboxed
//! instance per request, as a `tower::Service` any hyper or axum server can mount.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::component::Resource;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{Error, WasiBody};

use airssys_wasm_core::text::escape;
use airssys_wasm_core::{WasmError, WasmResult};

use crate::capabilities::audit::Denial;
use crate::runtime::component::CompiledComponent;
use crate::runtime::instance::ComponentInstance;
use crate::runtime::sandbox::{ExecutionReport, Sandbox};

/// The `tracing` target of the access log: one line per request (`info`, or `warn` when
/// the request failed or hit a limit), with its method, path (without the query, which
/// may carry tokens), status, duration, fuel, peak memory and denials; for a failure,
/// the limit hit, the error and the guest's backtrace.
pub const ACCESS_LOG_TARGET: &str = "airssys_wasm::access";

/// The body of every response an [`HttpHandler`] makes.
pub type ResponseBody = WasiBody;

/// The export a handler calls.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

type HandleParams = (
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
);

/// How many requests an [`HttpHandler`] serves at once, and what happens to the rest.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_engine::HttpLimits;
///
/// let limits = HttpLimits::default()
///     .max_concurrency(32)
///     .max_queue(128)
///     .queue_timeout(Duration::from_secs(2))
///     .max_request_body(1 << 20);
/// assert_eq!(limits.concurrency(), 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    max_concurrency: usize,
    max_queue: usize,
    queue_timeout: Duration,
    max_request_body: u64,
    buffered_body: u64,
    body_timeout: Duration,
}

impl Default for HttpLimits {
    /// 64 live instances, 256 waiting requests for up to 5 s, 10 MiB request bodies,
    /// of which the first 64 KiB are read before an instance is taken, and 10 s at most
    /// between two pieces of a body.
    fn default() -> Self {
        Self {
            max_concurrency: 64,
            max_queue: 256,
            queue_timeout: Duration::from_secs(5),
            max_request_body: 10 << 20,
            buffered_body: 64 << 10,
            body_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpLimits {
    /// At most `n` (at least 1) instances live at once, one per request being handled.
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// At most `n` requests wait for an instance; beyond, `503 Service Unavailable`.
    #[must_use]
    pub fn max_queue(mut self, n: usize) -> Self {
        self.max_queue = n;
        self
    }

    /// How long a request waits for an instance before `503`.
    #[must_use]
    pub fn queue_timeout(mut self, t: Duration) -> Self {
        self.queue_timeout = t;
        self
    }

    /// The largest request body a guest can read; a larger declared length is
    /// answered `413 Content Too Large` before any instance is made, and a streamed
    /// body that grows past it ends with an error for the guest.
    #[must_use]
    pub fn max_request_body(mut self, bytes: u64) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Request bodies up to `bytes` are read whole **before** an instance is taken, so
    /// that a client sending slowly (or stopping halfway) holds a connection and a
    /// little memory, never an instance; a larger body's first `bytes` are read so, and
    /// the rest streams to the guest. Default 64 KiB.
    #[must_use]
    pub fn buffered_body(mut self, bytes: u64) -> Self {
        self.buffered_body = bytes;
        self
    }

    /// The longest a client may pause while sending its request body (between two
    /// pieces): past it, a body not yet handed to a guest is answered `408 Request
    /// Timeout` and the rest of one being streamed ends with an error for the guest
    /// (and `408` if the guest then fails). The part read before an instance is taken
    /// must also arrive within three times this, however it is paced. Default 10 s.
    #[must_use]
    pub fn body_timeout(mut self, t: Duration) -> Self {
        self.body_timeout = t;
        self
    }

    /// The bound on live instances.
    pub fn concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The bound on waiting requests.
    pub fn queue(&self) -> usize {
        self.max_queue
    }

    /// The bound on request bodies.
    pub fn request_body(&self) -> u64 {
        self.max_request_body
    }
}

/// Serves HTTP requests with a component exporting `wasi:http/incoming-handler`
/// (WASI 0.2): each request gets a fresh instance, under the sandbox's limits and
/// grants, from the component's pre-instantiated form. Cheap to clone.
///
/// A guest failure never reaches the client: a trap, or a handler that returns
/// without a response, is `500` with a generic body; a limit is `500` (fuel, memory)
/// or `503` (the timeout), and the log names it. Past
/// [`HttpLimits::max_concurrency`] requests wait in a bounded queue, then get `503`;
/// so does a request that finds the engine's instance pool full
/// ([`WasmError::PoolExhausted`]: the
/// pool may be shared with other handlers and instances).
///
/// It is a [`tower_service::Service`], so hyper (through `hyper-util`'s
/// `TowerToHyperService`) and axum can mount it; [`handle`](Self::handle) is the same
/// without the trait.
///
/// ```no_run
/// # use airssys_wasm_engine::{CompiledComponent, HttpHandler, HttpLimits, Sandbox};
/// # async fn f(component: CompiledComponent, sandbox: Sandbox) -> Result<(), airssys_wasm_core::WasmError> {
/// let handler = HttpHandler::new(&component, sandbox, HttpLimits::default())?;
/// let request = http::Request::get("http://localhost/hello")
///     .body(http_body_util::Empty::<bytes::Bytes>::new())
///     .unwrap();
/// let response = handler.handle(request).await;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpHandler {
    inner: Arc<Inner>,
}

struct Inner {
    component: CompiledComponent,
    sandbox: Sandbox,
    export: String,
    limits: HttpLimits,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl std::fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("component", &self.inner.component.name())
            .field("export", &self.inner.export)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Why a request got no instance.
enum Refused {
    QueueFull,
    Waited,
}

impl HttpHandler {
    /// A handler for `component` under `sandbox`, admitting requests within `limits`.
    /// The component is type-checked against the engine's linker here, once, so a
    /// component that cannot be instantiated fails now rather than on every request.
    ///
    /// # Errors
    ///
    /// [`WasmError::ExportNotFound`] when the component does not export
    /// `wasi:http/incoming-handler@0.2.x` (the message lists what it exports);
    /// [`WasmError::InterfacesDenied`] or
    /// [`WasmError::ComponentInstantiationFailed`] when its imports cannot be satisfied
    /// under `sandbox`.
    pub fn new(
        component: &CompiledComponent,
        sandbox: Sandbox,
        limits: HttpLimits,
    ) -> WasmResult<Self> {
        let export = component
            .exports()
            .iter()
            .map(|e| e.name.as_str())
            .find(|n| n.starts_with(INCOMING_HANDLER) && n.ends_with("#handle"))
            .map(str::to_owned)
            .ok_or_else(|| WasmError::ExportNotFound {
                component: component.name().to_owned(),
                export: "wasi:http/incoming-handler@0.2.x#handle".into(),
                available: component.export_signatures(),
            })?;
        component.prepare(&sandbox)?;
        Ok(Self {
            inner: Arc::new(Inner {
                component: component.clone(),
                sandbox,
                export,
                permits: Arc::new(Semaphore::new(limits.max_concurrency)),
                limits,
                waiting: AtomicUsize::new(0),
            }),
        })
    }

    /// The component it serves.
    pub fn component(&self) -> &CompiledComponent {
        &self.inner.component
    }

    /// The admission limits.
    pub fn limits(&self) -> &HttpLimits {
        &self.inner.limits
    }

    /// Requests being handled now (live instances).
    pub fn in_flight(&self) -> usize {
        self.inner.limits.max_concurrency - self.inner.permits.available_permits()
    }

    /// Handles one request: always a response (the guest's, or an error status), and
    /// one access-log line ([`ACCESS_LOG_TARGET`]) once the guest is done.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        self.respond(request, None).await
    }

    /// [`handle`](Self::handle), and what handling the request came to — the call's
    /// report, the capability uses it was refused, the failure — delivered when the
    /// guest is done (which may be after the response's head, as the guest streams its
    /// body): for an embedder's metrics, billing or tests.
    pub async fn handle_observed<B>(
        &self,
        request: Request<B>,
    ) -> (Response<ResponseBody>, oneshot::Receiver<Handled>)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let (tx, rx) = oneshot::channel();
        (self.respond(request, Some(tx)).await, rx)
    }

    async fn respond<B>(
        &self,
        request: Request<B>,
        observer: Option<oneshot::Sender<Handled>>,
    ) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let line = Line {
            component: Arc::clone(self.inner.component.shared_name()),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            start: Instant::now(),
            observer,
        };
        let inner = &self.inner;
        let max_body = inner.limits.max_request_body;
        if request.body().size_hint().lower() > max_body {
            return line.refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            );
        }
        if request.uri().authority().is_none()
            && !request.headers().contains_key(http::header::HOST)
        {
            return line.refuse(StatusCode::BAD_REQUEST, "the request has no Host header");
        }
        // The body first (up to the buffered bound), then an instance: a slow client
        // holds no instance while it sends.
        let stalled = Arc::new(AtomicBool::new(false));
        let (parts, body) = request.into_parts();
        let body = match Prefetched::read(
            body,
            (inner.limits.buffered_body.min(max_body), max_body),
            inner.limits.body_timeout,
            Arc::clone(&stalled),
        )
        .await
        {
            Ok(b) => b,
            Err(Unread::Stalled) => {
                return line.refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "the client paused sending its request body for longer than the body \
                     timeout",
                );
            }
            Err(Unread::TooLarge) => {
                return line.refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                );
            }
            Err(Unread::Failed(e)) => {
                return line.refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the request body failed: {}", escape(&e, 512)),
                );
            }
        };
        let request = Request::from_parts(parts, body);
        let permit = match self.admit().await {
            Ok(p) => p,
            Err(Refused::QueueFull) => {
                return line.refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded: every instance is busy and the queue is full",
                );
            }
            Err(Refused::Waited) => {
                return line.refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded: no instance came free within the queue timeout",
                );
            }
        };
        let mut instance = match inner.component.instantiate(&inner.sandbox).await {
            Ok(i) => i,
            Err(e) => return line.fail(status_for(&e), Some(e), None, Vec::new(), None),
        };
        let (response_tx, response_rx) = oneshot::channel();
        let request = request.map(|b| BoundedBody::new(b, max_body));
        let (request, outparam) = match incoming(&mut instance, request, response_tx) {
            Ok(r) => r,
            Err(e) => return line.fail(StatusCode::BAD_REQUEST, Some(e), None, Vec::new(), None),
        };
        let handle = match instance.typed_export::<HandleParams, ()>(&inner.export) {
            Ok(h) => h,
            Err(e) => {
                return line.fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some(e),
                    None,
                    Vec::new(),
                    None,
                );
            }
        };
        let (status_tx, status_rx) = oneshot::channel::<StatusCode>();
        let failed = Arc::new(AtomicBool::new(false));
        let failed_in_call = Arc::clone(&failed);
        // The call runs in a task of its own: it goes on streaming the body after the
        // response is returned, and finishes (within its timeout) even if the client
        // goes away. The instance, then the permit, are released when it ends.
        let call = tokio::spawn(async move {
            let outcome = instance.call_export(&handle, (request, outparam)).await;
            if outcome.is_err() {
                // Before the instance (and the body's sender in it) is dropped: a body
                // the guest did not finish must not end as if it had.
                failed_in_call.store(true, Ordering::Release);
            }
            let report = *instance.last_report();
            let denials = instance.last_denials();
            drop(instance);
            drop(permit);
            let error = outcome.err();
            match status_rx.await {
                // The guest answered: the record is complete now.
                Ok(status) => {
                    line.finish(status, error, Some(report), denials, None);
                    None
                }
                // It did not: the handler answers, from the outcome.
                Err(_) => Some((line, error, report, denials)),
            }
        });
        match response_rx.await {
            Ok(Ok(response)) => {
                let _ = status_tx.send(response.status());
                response.map(|body| Watched { body, failed }.boxed_unsync())
            }
            Ok(Err(code)) => {
                drop(status_tx);
                match call.await {
                    Ok(Some((line, error, report, denials))) => line.fail(
                        unless_stalled(&stalled, StatusCode::INTERNAL_SERVER_ERROR),
                        error,
                        Some(report),
                        denials,
                        Some(format!("the guest answered with the error {code:?}")),
                    ),
                    _ => plain(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
            Err(_) => {
                drop(status_tx);
                match call.await {
                    Ok(Some((line, error, report, denials))) => {
                        let status = unless_stalled(
                            &stalled,
                            error
                                .as_ref()
                                .map_or(StatusCode::INTERNAL_SERVER_ERROR, status_for),
                        );
                        let problem = error
                            .is_none()
                            .then(|| "the guest returned without setting a response".to_owned());
                        line.fail(status, error, Some(report), denials, problem)
                    }
                    // The task ended without handing the record back: it panicked.
                    _ => plain(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
        }
    }

    /// A permit for one live instance: at once, or after waiting in the bounded queue.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, Refused> {
        let inner = &self.inner;
        if let Ok(p) = Arc::clone(&inner.permits).try_acquire_owned() {
            return Ok(p);
        }
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.limits.max_queue {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::QueueFull);
        }
        let waited = tokio::time::timeout(
            inner.limits.queue_timeout,
            Arc::clone(&inner.permits).acquire_owned(),
        )
        .await;
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refused::Waited),
        }
    }
}

/// Puts an incoming request and the outparam its response goes to into `instance`'s
/// resource table.
fn incoming<B>(
    instance: &mut ComponentInstance,
    request: Request<B>,
    response: oneshot::Sender<Result<Response<WasiBody>, ErrorCode>>,
) -> WasmResult<(
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
)>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    let component = instance.component().name().to_owned();
    let internal = |reason: String| WasmError::Internal {
        component: component.clone(),
        reason,
        source: None,
    };
    let mut view = instance.http();
    let request = view
        .new_incoming_request(
            wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http,
            request,
        )
        .map_err(|e| internal(format!("the request cannot be passed to the guest: {e}")))?;
    let outparam = view
        .new_response_outparam(response)
        .map_err(|e| internal(format!("the response outparam cannot be made: {e}")))?;
    Ok((request, outparam))
}

impl<B> tower_service::Service<Request<B>> for HttpHandler
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Admission happens per request (a bounded queue, then 503), so that a full
        // server still answers.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move { Ok(handler.handle(request).await) })
    }
}

/// The status a failure is answered with: `503` for the timeout and for a pool with no
/// free slot, `500` for everything else.
fn status_for(e: &WasmError) -> StatusCode {
    match e {
        WasmError::ComponentTimeout { .. } | WasmError::PoolExhausted { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `status` for a failed request, unless its client stalled while the guest read its
/// body: then that is why, and `408 Request Timeout` says so.
fn unless_stalled(stalled: &AtomicBool, status: StatusCode) -> StatusCode {
    if stalled.load(Ordering::Acquire) {
        StatusCode::REQUEST_TIMEOUT
    } else {
        status
    }
}

/// A response for an error status, with a generic body: never the guest's message.
fn plain(status: StatusCode) -> Response<ResponseBody> {
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

/// What handling one request came to ([`HttpHandler::handle_observed`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Handled {
    /// The status the client got.
    pub status: StatusCode,
    /// From the request's arrival until the guest was done (or the request was
    /// refused).
    pub duration: Duration,
    /// What the guest's call used; `None` when no call ran (the request was refused
    /// before, or instantiation failed).
    pub report: Option<ExecutionReport>,
    /// The capability uses the call was refused (outgoing requests outside the grant…).
    pub denials: Vec<Denial>,
    /// The failure, if the guest (or its instantiation) failed.
    pub error: Option<WasmError>,
    /// What else went wrong, in words: a refusal (overload, a body too large), or a
    /// guest that answered with an error code or not at all.
    pub problem: Option<String>,
}

/// One request on its way to the access log (and to its observer, if any).
struct Line {
    component: Arc<str>,
    method: String,
    path: String,
    start: Instant,
    observer: Option<oneshot::Sender<Handled>>,
}

impl Line {
    /// A request answered without a guest: logged, observed, and its response.
    fn refuse(self, status: StatusCode, reason: &str) -> Response<ResponseBody> {
        self.finish(status, None, None, Vec::new(), Some(reason.to_owned()));
        plain(status)
    }

    /// A failed request: logged, observed, and the generic response for `status`.
    fn fail(
        self,
        status: StatusCode,
        error: Option<WasmError>,
        report: Option<ExecutionReport>,
        denials: Vec<Denial>,
        problem: Option<String>,
    ) -> Response<ResponseBody> {
        self.finish(status, error, report, denials, problem);
        plain(status)
    }

    /// Logs the request's line and hands its record to the observer.
    fn finish(
        self,
        status: StatusCode,
        error: Option<WasmError>,
        report: Option<ExecutionReport>,
        denials: Vec<Denial>,
        problem: Option<String>,
    ) {
        let handled = Handled {
            status,
            duration: self.start.elapsed(),
            report,
            denials,
            error,
            problem,
        };
        self.log(&handled);
        if let Some(observer) = self.observer {
            let _ = observer.send(handled);
        }
    }

    fn log(&self, h: &Handled) {
        let ms = h.duration.as_secs_f64() * 1000.0;
        let (fuel, peak) = h
            .report
            .map_or((0, 0), |r| (r.fuel_consumed, r.peak_memory_bytes));
        let status = h.status.as_u16();
        if h.error.is_none() && h.problem.is_none() {
            tracing::info!(
                target: ACCESS_LOG_TARGET,
                component = %self.component,
                status,
                ms = format_args!("{ms:.3}"),
                fuel,
                peak_memory = peak,
                denials = h.denials.len(),
                "{} {} {status}",
                self.method,
                self.path,
            );
            return;
        }
        let limit = h.error.as_ref().map_or("", limit_name);
        // One line per request: whatever the error says (a guest's words among it) is
        // escaped, newlines included.
        let why = match (&h.error, &h.problem) {
            (Some(e), _) => e.to_string(),
            (None, Some(p)) => p.clone(),
            (None, None) => String::new(),
        };
        let why = escape(&why, MAX_LOGGED_CHARS);
        let backtrace = h
            .error
            .as_ref()
            .and_then(WasmError::guest_backtrace)
            .unwrap_or_default();
        let backtrace = &*escape(backtrace, MAX_LOGGED_CHARS);
        tracing::warn!(
            target: ACCESS_LOG_TARGET,
            component = %self.component,
            status,
            ms = format_args!("{ms:.3}"),
            fuel,
            peak_memory = peak,
            denials = h.denials.len(),
            limit,
            backtrace,
            "{} {} {status}: {why}",
            self.method,
            self.path,
        );
    }
}

/// The longest error or backtrace an access-log line carries, in characters.
const MAX_LOGGED_CHARS: usize = 8_192;

/// Which limit an error is, for the log (empty for other failures).
fn limit_name(e: &WasmError) -> &'static str {
    match e {
        WasmError::ComponentTimeout { .. } => "timeout",
        WasmError::FuelExhausted { .. } => "fuel",
        WasmError::MemoryLimitExceeded { .. } => "memory",
        WasmError::ResourceLimitExceeded { .. } => "resources",
        _ => "",
    }
}

pin_project_lite::pin_project! {
    /// The guest's response body, which ends in an error (hyper then closes the
    /// connection without the body's proper end) when the guest failed while writing
    /// it: Wasmtime's body ends as if complete when its writer is dropped unfinished,
    /// and a client must not take a body cut off by a trap or a timeout for a whole one.
    struct Watched {
        #[pin]
        body: WasiBody,
        failed: Arc<AtomicBool>,
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
    struct BoundedBody<B> {
        #[pin]
        body: B,
        left: u64,
        max: u64,
    }
}

impl<B> BoundedBody<B> {
    fn new(body: B, max: u64) -> Self {
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
enum Unread {
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
struct Prefetched<B> {
    head: Option<Bytes>,
    rest: Option<Pin<Box<B>>>,
    trailers: Option<http::HeaderMap>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    stalled: Arc<AtomicBool>,
}

/// Why a streamed request body ended early.
#[derive(Debug)]
enum BodyError {
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
    async fn read(
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
