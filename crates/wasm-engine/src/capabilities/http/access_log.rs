//! The access log of [`HttpHandler`](super::HttpHandler): one line per request (its
//! method, path without the query, status, duration, fuel, peak memory, denials; for a
//! failure the limit hit, the error and the guest's backtrace, escaped), and the
//! [`Handled`] record an observer gets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use tokio::sync::oneshot;

use airssys_wasm_core::WasmError;
use airssys_wasm_core::text::escape;

use super::body::{ResponseBody, plain};
use crate::capabilities::audit::Denial;
use crate::runtime::sandbox::ExecutionReport;

/// The `tracing` target of the access log: one line per request (`info`, or `warn` when
/// the request failed or hit a limit), with its method, path (without the query, which
/// may carry tokens), status, duration, fuel, peak memory and denials; for a failure,
/// the limit hit, the error and the guest's backtrace.
pub const ACCESS_LOG_TARGET: &str = "airssys_wasm::access";

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
pub(super) struct Line {
    pub(super) component: Arc<str>,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) start: Instant,
    pub(super) observer: Option<oneshot::Sender<Handled>>,
}

impl Line {
    /// A request answered without a guest: logged, observed, and its response.
    pub(super) fn refuse(self, status: StatusCode, reason: &str) -> Response<ResponseBody> {
        self.finish(status, None, None, Vec::new(), Some(reason.to_owned()));
        plain(status)
    }

    /// A failed request: logged, observed, and the generic response for `status`.
    pub(super) fn fail(
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
    pub(super) fn finish(
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
