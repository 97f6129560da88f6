//! `airssys-wasm serve`: an HTTP/1.1 server (hyper, keep-alive) that hands each
//! request to a fresh instance of a `wasi:http/incoming-handler` component through the
//! engine's [`HttpHandler`], with the pooling allocator sized to the concurrency bound,
//! header and queue timeouts, and a graceful stop on SIGINT or SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use airssys_wasm_core::StdioMode;
use airssys_wasm_core::units::{format_duration, parse_duration, parse_memory_size};
use airssys_wasm_engine::{HttpHandler, HttpLimits, Pooling};

use crate::setup::{
    CacheArgs, EngineArgs, Failure, LimitArgs, Operator, Target, grants, limits_for, load_with,
    sandbox_for, usage,
};

/// The flags of `serve`.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// A component exporting `wasi:http/incoming-handler` (`.wasm` or `.wat`), a
    /// `Component.toml`, or a directory holding one.
    path: PathBuf,
    /// The address to listen on (`127.0.0.1:0` picks a free port; the address is
    /// printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    limits: LimitArgs,
    /// Requests handled at once (live instances, each with the memory limit); the
    /// pooling allocator is sized to it.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_concurrency: u32,
    /// Requests that may wait for an instance beyond --max-concurrency; past it, 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_queue: usize,
    /// How long a request may wait for an instance before 503.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    queue_timeout: String,
    /// The largest request body a handler can read (a larger Content-Length is 413).
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    max_request_body: String,
    /// Request bodies up to this size are read before an instance is taken (a client
    /// that sends slowly holds a connection, not an instance); of a larger one, this
    /// much is read first and the rest streams to the handler.
    #[arg(long, value_name = "SIZE", default_value = "64KiB")]
    max_buffered_body: String,
    /// The longest a client may pause while sending a request body: past it, 408
    /// Request Timeout. What is read before an instance is taken must also arrive
    /// within three times this, however slowly it trickles.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    body_timeout: String,
    /// How long a client may take to send a request's headers (slow clients are cut
    /// off), and how long an idle keep-alive connection stays open.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    header_timeout: String,
    /// Open client connections at most; past it, new connections wait to be accepted
    /// until one closes. (The process's open-file limit is raised to its hard limit
    /// at start, and this is capped to fit in it.)
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_connections: usize,
    /// On SIGINT or SIGTERM: stop accepting, and give requests in flight this long to
    /// finish.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    grace: String,
    #[command(flatten)]
    net: crate::setup::NetArgs,
    /// A configuration value (`wasi:config/store`), overriding the manifest's
    /// `[config]`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = crate::setup::parse_config)]
    config: Vec<(String, String)>,
    #[command(flatten)]
    state: crate::state::StateArgs,
}

/// The largest request head (request line and headers) accepted; past it, hyper
/// answers 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub(crate) async fn serve(
    engine_args: &EngineArgs,
    args: ServeArgs,
    cache: &CacheArgs,
) -> Result<u8, Failure> {
    let target = Target::resolve(&args.path)?;
    let limits = limits_for(&target, &args.limits)?;
    let queue_timeout = duration(&args.queue_timeout, "--queue-timeout")?;
    let header_timeout = duration(&args.header_timeout, "--header-timeout")?;
    let grace = duration(&args.grace, "--grace")?;
    let max_body = parse_memory_size(&args.max_request_body)
        .map_err(|e| usage(anyhow::anyhow!("--max-request-body: {e}")))?;
    let buffered_body = parse_memory_size(&args.max_buffered_body)
        .map_err(|e| usage(anyhow::anyhow!("--max-buffered-body: {e}")))?;
    let body_timeout = duration(&args.body_timeout, "--body-timeout")?;
    let max_connections = connection_bound(args.max_connections);
    let mut granted = grants(&target, &args.config)?;
    if target.manifest().is_none() {
        // A bare component under a server is granted no output: nothing that a client
        // can make it write reaches the operator's streams unless a manifest says so.
        granted.0.stdout = StdioMode::Null;
        granted.0.stderr = StdioMode::Null;
    }
    let runtime_config = args.state.runtime_config().map_err(usage)?;

    // Instances live one per request in flight: the pool holds that many.
    let engine = engine_args
        .builder(&target)?
        .pooling(Pooling::for_limits(&limits, args.max_concurrency))
        .build()?;
    let component = load_with(&engine, &target, cache, false).await?;
    let operator = Operator {
        state: &args.state,
        runtime_config: &runtime_config,
        net: &args.net,
    };
    let sandbox = sandbox_for(&component, &target, &limits, granted, operator)
        .await?
        .with_args([component.name().to_owned()])
        // Granted output goes to the log, line by line, marked, escaped and bounded:
        // never raw into the stream that carries the access log.
        .log_output(true);
    let http_limits = HttpLimits::default()
        .max_concurrency(usize::try_from(args.max_concurrency).unwrap_or(usize::MAX))
        .max_queue(args.max_queue)
        .queue_timeout(queue_timeout)
        .max_request_body(max_body)
        .buffered_body(buffered_body)
        .body_timeout(body_timeout);
    let handler = HttpHandler::new(&component, sandbox, http_limits)?;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))
        .map_err(usage)?;
    let local = listener
        .local_addr()
        .context("reading the listening address")
        .map_err(usage)?;
    eprintln!(
        "serving {} on http://{local}/ ({limits}; {} at once, {} waiting; Ctrl-C or SIGTERM \
         stops)",
        component.name(),
        args.max_concurrency,
        args.max_queue
    );

    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    let connections = Arc::new(Semaphore::new(max_connections));
    let mut warned: Option<std::time::Instant> = None;
    loop {
        // A connection slot first: at the bound, new connections wait in the
        // listener's backlog (said at most once a minute).
        let slot = match Arc::clone(&connections).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        "{max_connections} connections open (--max-connections): new ones \
                         wait until one closes"
                    );
                    warned = Some(std::time::Instant::now());
                }
                tokio::select! {
                    slot = Arc::clone(&connections).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    signal = &mut stop => {
                        announce_stop(signal, grace, &handler);
                        break;
                    }
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
                let handler = handler.clone();
                let service = hyper::service::service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(true)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::info!(%peer, %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            signal = &mut stop => {
                announce_stop(signal, grace, &handler);
                break;
            }
        }
    }
    drop(listener);
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => {
            eprintln!("stopped: every request in flight finished");
            Ok(0)
        }
        Err(_) => {
            eprintln!(
                "stopped: the grace period ({}) ran out with {} request(s) still in flight",
                format_duration(grace),
                handler.in_flight()
            );
            Ok(1)
        }
    }
}

fn announce_stop(signal: &str, grace: Duration, handler: &HttpHandler) {
    eprintln!(
        "{signal}: not accepting new connections; waiting up to {} for {} request(s) in \
         flight",
        format_duration(grace),
        handler.in_flight()
    );
}

/// Raises the open-file limit to its hard limit (each connection is a descriptor) and
/// caps `wanted` connections to what then fits, leaving room for the process's own
/// files and outgoing sockets.
fn connection_bound(wanted: usize) -> usize {
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
                    "--max-connections {wanted} is more than the open-file limit allows; \
                     serving at most {fits} connections"
                );
                return fits;
            }
        }
    }
    wanted.max(1)
}

fn duration(text: &str, flag: &str) -> Result<Duration, Failure> {
    parse_duration(text).map_err(|e| usage(anyhow::anyhow!("{flag}: {e}")))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
