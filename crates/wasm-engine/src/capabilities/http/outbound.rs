//! Outgoing requests (`wasi:http/outgoing-handler`): every request is checked against
//! the component's `[capabilities.http] outbound` grant before anything leaves the
//! host, its connect, first-byte and between-bytes timeouts are cut to what is left of
//! the call, and — when the operator asks — it is refused if its host resolves to a
//! private or loopback address.
//!
//! The sender is ours rather than `wasmtime-wasi-http`'s `default_send_request` (whose
//! shape it follows: hyper's HTTP/1 client, rustls with the webpki roots): that one
//! resolves and connects by itself, so an address check after DNS could be raced by a
//! second resolution; here the addresses checked are the addresses connected to.

use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types as p2;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use airssys_wasm_core::CapabilitySet;
use airssys_wasm_core::address::is_globally_routable;

use crate::capabilities::audit::{Trail, lock};

/// What the audit trail calls an outgoing request.
const CAPABILITY: &str = "http.outbound";

/// The outgoing side of an instance's `wasi:http`: its grant, the operator's policy,
/// and where the current call started (for the time left of it).
pub(crate) struct Outbound {
    component: Arc<str>,
    capabilities: Arc<CapabilitySet>,
    timeout: Duration,
    refuse_private: bool,
    /// When the current call started (copied from the store each time the guest enters
    /// `wasi:http`); `None` if unknown, when the instance has no grant to use it.
    pub(crate) started: Option<Instant>,
    /// Refused requests and socket uses of the current call (shared with the checks
    /// that run outside the store: the WASI socket check, the address check after DNS);
    /// made on first use.
    pub(crate) trail: Option<Arc<Mutex<Trail>>>,
    /// Requests of this instance in flight (from the send until its connection is
    /// done; made on the first request, so that an instance that sends none allocates
    /// nothing for it), and the bound.
    in_flight: Option<Arc<AtomicUsize>>,
    max_in_flight: usize,
}

/// One request in flight; counted down when dropped (its connection done, or the
/// instance gone).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Outbound {
    pub(crate) fn new(
        component: Arc<str>,
        capabilities: Arc<CapabilitySet>,
        timeout: Duration,
        refuse_private: bool,
        trail: Option<Arc<Mutex<Trail>>>,
        max_in_flight: usize,
    ) -> Self {
        Self {
            component,
            capabilities,
            timeout,
            refuse_private,
            started: None,
            trail,
            in_flight: None,
            max_in_flight,
        }
    }

    /// What is left of the current call's timeout.
    fn remaining(&self) -> Duration {
        self.started
            .map_or(self.timeout, |t| self.timeout.saturating_sub(t.elapsed()))
    }

    fn trail(&mut self) -> Arc<Mutex<Trail>> {
        Arc::clone(self.trail.get_or_insert_with(Default::default))
    }

    /// Counts, keeps and logs a refused request.
    #[cold]
    fn deny(&mut self, requested: &str, reason: String) {
        let trail = self.trail();
        lock(&trail).deny(&self.component, CAPABILITY, requested, reason);
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
struct Target {
    https: bool,
    /// Without an IPv6 address's brackets.
    host: String,
    port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The time bounds of one request, each within what is left of the call.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    /// The guest's timeouts (or none), cut to nine tenths of `left`, what is left of
    /// the call: a request that times out leaves the guest the last tenth to handle the
    /// error (answer 504, say) before the call's own deadline stops it.
    fn within(options: Option<RequestOptions>, left: Duration) -> Self {
        let left = left.saturating_sub(left / 10);
        let cut = |t: Option<Duration>| t.map_or(left, |t| t.min(left));
        let o = options.unwrap_or_default();
        Self {
            connect: cut(o.connect_timeout),
            first_byte: cut(o.first_byte_timeout),
            // Tokio's interval refuses zero.
            between_bytes: cut(o.between_bytes_timeout).max(Duration::from_nanos(1)),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::OUTGOING_BODY_CHUNK
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let Some(host) = uri.host() else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = Target { https, host, port };
        let scheme = if https { "https" } else { "http" };
        let allowed = match &self.capabilities.http {
            Some(grant) => grant.allows(scheme, &target.host, port),
            None => false,
        };
        if !allowed {
            let reason = match &self.capabilities.http {
                Some(_) => format!(
                    "{target} is not in [capabilities.http] outbound; add \"{target}\" \
                     (or a pattern that covers it) to allow it"
                ),
                None => format!(
                    "the component has no [capabilities.http] grant, so every request is \
                     refused; add `outbound = [\"{target}\"]` under [capabilities.http]"
                ),
            };
            self.deny(&target.to_string(), reason);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let in_flight = Arc::clone(self.in_flight.get_or_insert_with(Arc::default));
        if in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                component = &*self.component,
                "an outgoing request was refused: {} are in flight, the most one instance may \
                 have (Sandbox::max_outgoing_requests, --max-outgoing-requests)",
                self.max_in_flight
            );
            return Box::new(async { Err(Error::ConnectionLimitReached) });
        }
        let counted = InFlight(in_flight);
        let timeouts = Timeouts::within(options, self.remaining());
        let guard = self.refuse_private.then(|| Guard {
            component: Arc::clone(&self.component),
            trail: self.trail(),
        });
        Box::new(async move {
            let (response, io) = send(request, target, timeouts, guard).await?;
            // Counted until the connection is done.
            let io = async move {
                let _counted = counted;
                io.await
            };
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }

    /// What a TLS failure is to the guest. Upstream tells certificate errors and
    /// alerts apart only with its own sender (`default-send-request`); with ours, a
    /// certificate no trusted root signed would otherwise be a mere protocol error.
    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> p2::ErrorCode {
        tls_error_code(err)
    }
}

/// The `wasi:http` error code of a TLS failure: a certificate the client refused is
/// `TLS-certificate-error`, an alert from the server `TLS-alert-received` (with its
/// id), a connection cut mid-handshake `connection-terminated`, anything else
/// `TLS-protocol-error`.
fn tls_error_code(err: &std::io::Error) -> p2::ErrorCode {
    if let Some(e) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match e {
            rustls::Error::InvalidCertificate(_) => p2::ErrorCode::TlsCertificateError,
            rustls::Error::AlertReceived(alert) => {
                p2::ErrorCode::TlsAlertReceived(p2::TlsAlertReceivedPayload {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: None,
                })
            }
            _ => p2::ErrorCode::TlsProtocolError,
        };
    }
    match err.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => p2::ErrorCode::ConnectionTerminated,
        _ => p2::ErrorCode::TlsProtocolError,
    }
}

/// The address check after DNS (the operator's `refuse private addresses`).
struct Guard {
    component: Arc<str>,
    trail: Arc<Mutex<Trail>>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// rustls with the webpki roots, made once. The crypto is `ring`, as in
/// `wasmtime-wasi-http` (rustls 0.23.48 deprecates its provider for lacking
/// post-quantum key exchange; `aws-lc-rs`, which has it, is a C build we do not add
/// for now — noted in the log).
#[expect(
    deprecated,
    reason = "ring's provider, as wasmtime-wasi-http uses; see above"
)]
static TLS: LazyLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
});

/// The system's resolver configuration (`/etc/resolv.conf`), read once; `None` where
/// there is none to read.
static SYSTEM_DNS: LazyLock<
    Option<(
        hickory_resolver::config::ResolverConfig,
        hickory_resolver::config::ResolverOpts,
    )>,
> = LazyLock::new(|| hickory_resolver::system_conf::read_system_conf().ok());

/// The addresses of `host` (an IP address is its own): resolved asynchronously with
/// `hickory-resolver` on the system's configuration (and `/etc/hosts`), so that a
/// lookup ends with its call — the system's `getaddrinfo` runs on a blocking thread
/// that stays busy until it returns. A resolver is made per lookup (its configuration
/// read once), so that none outlives the runtime it was made on. Without a system
/// configuration, the system's resolver after all.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    resolve_with(SYSTEM_DNS.as_ref(), host, port).await
}

/// [`resolve`] with the resolver configuration `system` (the tests' own name server).
async fn resolve_with(
    system: Option<&(
        hickory_resolver::config::ResolverConfig,
        hickory_resolver::config::ResolverOpts,
    )>,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let dns_error = |e: &dyn std::fmt::Display| Error::DnsError {
        rcode: Some(e.to_string()),
        info_code: None,
    };
    let Some((config, options)) = system else {
        return tokio::net::lookup_host((host, port))
            .await
            .map(Iterator::collect)
            .map_err(|e| dns_error(&e));
    };
    let mut builder = hickory_resolver::Resolver::builder_with_config(
        config.clone(),
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    );
    *builder.options_mut() = options.clone();
    let resolver = builder.build().map_err(|e| dns_error(&e))?;
    let found = resolver.lookup_ip(host).await.map_err(|e| {
        if e.is_no_records_found() || e.is_nx_domain() {
            Error::DestinationNotFound
        } else {
            dns_error(&e)
        }
    })?;
    Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

/// Resolves, checks, connects (within the connect timeout, across the addresses),
/// speaks TLS for `https`, and sends `request`; the response's body is read frame by
/// frame as the guest reads it, each frame within the between-bytes timeout.
async fn send(
    mut request: http::Request<WasiBody>,
    target: Target,
    timeouts: Timeouts,
    guard: Option<Guard>,
) -> Result<
    (
        http::Response<ResponseBody>,
        impl Future<Output = Result<(), Error>> + Send,
    ),
    Error,
> {
    let deadline = tokio::time::Instant::now() + timeouts.connect;
    let addrs = match tokio::time::timeout_at(deadline, resolve(&target.host, target.port)).await {
        Err(_) => return Err(Error::DnsTimeout),
        Ok(r) => r?,
    };
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    if let Some(guard) = guard
        && let Some(private) = addrs.iter().find(|a| !is_globally_routable(a.ip()))
    {
        lock(&guard.trail).deny(
            &guard.component,
            CAPABILITY,
            &format!("{target} ({})", private.ip()),
            format!(
                "{} resolves to {}, not a globally routable address, which this host \
                 refuses to reach (the operator's setting)",
                target.host,
                private.ip()
            ),
        );
        return Err(Error::DestinationIpProhibited);
    }
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(last.map_or(Error::DestinationUnavailable, Error::Connect));
    };
    let stream: Box<dyn Stream> = if target.https {
        let config = match &*TLS {
            Ok(config) => Arc::clone(config),
            Err(e) => {
                return Err(Error::Tls(std::io::Error::other(format!(
                    "TLS cannot be set up: {e}"
                ))));
            }
        };
        let name = match target.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Err(e)) => return Err(Error::Tls(e)),
            Ok(Ok(s)) => Box::new(s),
        }
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        deadline,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries the path only (scheme and authority are for proxies).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let between_bytes = timeouts.between_bytes;
    let send = async move {
        let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let mut timer = tokio::time::interval(between_bytes);
        timer.reset();
        Ok::<_, Error>(response.map(|incoming| ResponseBody { incoming, timer }))
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Wait for the response while driving the connection.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    Ok((response, async move {
        match conn {
            None => Ok(()),
            Some(conn) => conn.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    e.into()
                }
            }),
        }
    }))
}

/// A response body read frame by frame (never buffered here: the guest pulls each),
/// each within the between-bytes timeout.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    timer: tokio::time::Interval,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                e.into()
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timer.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolve_asynchronously_hosts_file_included() {
        let addrs = resolve("localhost", 8080).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
        assert_eq!(
            resolve("192.0.2.7", 1).await.unwrap(),
            [SocketAddr::from(([192, 0, 2, 7], 1))]
        );
    }

    /// A lookup waiting on a name server that never answers stops when its call
    /// does: no query reaches the server after the lookup was dropped, though the
    /// resolver was told to retry every 50 ms (a lookup on a blocking thread would go
    /// on until the system resolver gave up).
    #[tokio::test]
    async fn a_lookup_ends_when_its_call_does() {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
        use std::sync::atomic::{AtomicU32, Ordering};

        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        let queries = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&queries);
        let listener = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while server.recv_from(&mut buf).await.is_ok() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut ns = NameServerConfig::udp(at.ip());
        for c in &mut ns.connections {
            c.port = at.port();
        }
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_millis(50);
        opts.attempts = 100;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let config = (ResolverConfig::from_name_servers(vec![ns]), opts);

        // The call's bound, as `send` puts it around the lookup.
        let lookup = resolve_with(Some(&config), "never-answered.test", 80);
        let r = tokio::time::timeout(Duration::from_millis(300), lookup).await;
        assert!(r.is_err(), "the lookup was still waiting: {r:?}");
        // What was on its way when the lookup was dropped has arrived by now.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let during = queries.load(Ordering::SeqCst);
        assert!(during >= 1, "the lookup asked the test's name server");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            queries.load(Ordering::SeqCst),
            during,
            "no query after the lookup ended"
        );
        listener.abort();
    }

    #[test]
    fn timeouts_never_exceed_what_is_left() {
        let t = Timeouts::within(None, Duration::from_millis(1000));
        let left = Duration::from_millis(900);
        assert_eq!(
            (t.connect, t.first_byte, t.between_bytes),
            (left, left, left)
        );
        let t = Timeouts::within(
            Some(RequestOptions {
                connect_timeout: Some(Duration::from_millis(100)),
                first_byte_timeout: Some(Duration::from_secs(60)),
                between_bytes_timeout: Some(Duration::ZERO),
            }),
            Duration::from_millis(1000),
        );
        assert_eq!(t.connect, Duration::from_millis(100));
        assert_eq!(t.first_byte, left);
        assert_eq!(t.between_bytes, Duration::from_nanos(1));
    }
}
