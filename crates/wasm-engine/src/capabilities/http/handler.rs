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
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::component::Resource;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{Error, WasiBody};

use airssys_wasm_core::text::escape;
use airssys_wasm_core::{WasmError, WasmResult};

use super::access_log::{Handled, Line};
use super::body::{BoundedBody, Prefetched, ResponseBody, Unread, Watched, plain};
use crate::runtime::component::CompiledComponent;
use crate::runtime::instance::ComponentInstance;
use crate::runtime::sandbox::Sandbox;

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
