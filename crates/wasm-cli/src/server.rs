//! The HTTP/1.1 connection loop `serve` and `up` share (hyper, keep-alive): a bound on
//! open connections (past it, new ones wait in the listener's backlog), a bound on a
//! request's head and on the time to send it (slow clients are cut off, idle
//! connections closed), and a graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) accepted; past it, hyper
/// answers 431.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What the loop bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// How long a client may take to send a request's head; also how long an idle
    /// keep-alive connection stays open.
    pub(crate) header_timeout: Duration,
    /// Open client connections at most.
    pub(crate) max_connections: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Accepts connections on `listener`, each served by a clone of `service`, until
/// `stop` resolves; then closes the listener and hands back what `stop` resolved to
/// and the connections still open, to be shut down gracefully
/// (`GracefulShutdown::shutdown`: requests in flight finish, idle connections close).
pub(crate) async fn accept_until<S, B, T>(
    listener: TcpListener,
    limits: ConnectionLimits,
    service: S,
    stop: impl Future<Output = T>,
) -> (Option<T>, GracefulShutdown)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    let max = limits.max_connections;
    let connections = Arc::new(Semaphore::new(max));
    let mut warned: Option<std::time::Instant> = None;
    loop {
        // A connection slot first: at the bound, new connections wait in the
        // listener's backlog (said at most once a minute).
        let slot = match Arc::clone(&connections).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        "{max} connections open (serve --max-connections, [http] \
                         max_connections): new ones wait until one closes"
                    );
                    warned = Some(std::time::Instant::now());
                }
                tokio::select! {
                    slot = Arc::clone(&connections).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    t = &mut stop => return (Some(t), graceful),
                }
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(%e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .keep_alive(true)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service.clone());
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::info!(%peer, %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            t = &mut stop => return (Some(t), graceful),
        }
    }
    (None, graceful)
}

/// Raises the open-file limit to its hard limit (each connection is a descriptor) and
/// caps `wanted` connections to what then fits, leaving room for the process's own
/// files and outgoing sockets.
pub(crate) fn connection_bound(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        // SAFETY: a zeroed rlimit is a valid value for getrlimit to fill in.
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: `limit` is a valid, writable rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                // SAFETY: `raised` is a valid rlimit within the hard limit.
                if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
            let fits = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            let fits = fits.saturating_sub(fits / 4).max(16);
            if wanted > fits {
                tracing::warn!(
                    "{wanted} connections (serve --max-connections, [http] max_connections) are \
                     more than the open-file limit allows; serving at most {fits} connections"
                );
                return fits;
            }
        }
    }
    wanted.max(1)
}
