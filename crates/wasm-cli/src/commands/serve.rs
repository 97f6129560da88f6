//! `airssys-wasm serve`: an HTTP/1.1 server (hyper, keep-alive) that hands each
//! request to a fresh instance of a `wasi:http/incoming-handler` component through the
//! engine's [`HttpHandler`], with the pooling allocator sized to the concurrency bound,
//! header and queue timeouts, and a graceful stop on SIGINT or SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use airssys_wasm_core::StdioMode;
use airssys_wasm_core::units::{format_duration, parse_duration, parse_memory_size};
use airssys_wasm_engine::{HttpHandler, HttpLimits, Pooling};

use crate::server::{ConnectionLimits, accept_until, connection_bound};
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

    let connection_limits = ConnectionLimits {
        header_timeout,
        max_connections,
    };
    let service = {
        let handler = handler.clone();
        hyper::service::service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(request).await) }
        })
    };
    let (signal, graceful) =
        accept_until(listener, connection_limits, service, shutdown_signal()).await;
    if let Some(signal) = signal {
        announce_stop(signal, grace, &handler);
    }
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
