//! `wasi:http`: outgoing requests under `[capabilities.http]` (denied unless granted,
//! checked on every request, private addresses refused on the operator's word, within
//! the call's time, bodies streamed), and incoming requests through [`HttpHandler`] —
//! with the testkit's real guests and a real HTTP server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

use airssys_wasm_core::http::{HttpGrant, OutboundRule};
use airssys_wasm_core::{CapabilitySet, ResourceLimits, WasmError};
use airssys_wasm_engine::{
    CompiledComponent, Handled, HttpHandler, HttpLimits, Pooling, Sandbox, WasmEngine,
};
use airssys_wasm_testkit::guests;
use airssys_wasm_testkit::http::Upstream;

fn component(engine: &WasmEngine, name: &str, wasm: &[u8]) -> CompiledComponent {
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), wasm).unwrap();
    CompiledComponent::new(engine, name, c).unwrap()
}

fn limits(timeout: Duration) -> ResourceLimits {
    ResourceLimits::new(64 << 20, 5_000_000_000, timeout).unwrap()
}

fn granted(rules: &[&str]) -> CapabilitySet {
    let mut caps = CapabilitySet::deny_all();
    caps.http = Some(HttpGrant {
        outbound: rules
            .iter()
            .map(|r| OutboundRule::parse(r).unwrap())
            .collect(),
    });
    caps
}

/// A handler serving the guest `name` on an engine of its own.
fn handler(name: &str, wasm: &[u8], sandbox: Sandbox, http: HttpLimits) -> HttpHandler {
    let engine = WasmEngine::new().unwrap();
    HttpHandler::new(&component(&engine, name, wasm), sandbox, http).unwrap()
}

fn fetcher(sandbox: Sandbox) -> HttpHandler {
    handler(
        "http-fetch",
        guests::HTTP_FETCH,
        sandbox,
        HttpLimits::default(),
    )
}

/// Sends `GET path` to the handler: the status, the body, and what handling came to.
async fn get(handler: &HttpHandler, path: &str) -> (u16, String, Handled) {
    let request = http::Request::get(format!("http://localhost{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let (response, handled) = handler.handle_observed(request).await;
    let status = response.status().as_u16();
    let body = match response.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(e) => format!("(body failed: {e})"),
    };
    (status, body, handled.await.unwrap())
}

fn fetch(url: &str) -> String {
    format!("/fetch?url={url}")
}

#[tokio::test]
async fn without_a_grant_every_request_is_denied_and_audited() {
    let upstream = Upstream::start().await;
    let handler = fetcher(Sandbox::new(limits(Duration::from_secs(5))));
    let (status, body, handled) = get(&handler, &fetch(&upstream.url("/hello"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "error HttpRequestDenied\n");
    assert_eq!(upstream.requests(), 0, "nothing may leave the host");
    assert_eq!(handled.denials.len(), 1, "{handled:?}");
    let d = &handled.denials[0];
    assert_eq!(d.capability, "http.outbound");
    assert_eq!(d.requested, format!("http://{}", upstream.addr()));
    assert!(d.reason.contains("no [capabilities.http]"), "{}", d.reason);
    assert_eq!(handled.report.unwrap().capability_denials, 1);
}

#[tokio::test]
async fn granted_hosts_are_reached_and_nothing_else() {
    let upstream = Upstream::start().await;
    let port = upstream.addr().port();
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(granted(&[&format!("http://127.0.0.1:{port}")])),
    );
    let (_, body, handled) = get(&handler, &fetch(&upstream.url("/hello"))).await;
    assert_eq!(body, "status 200\nhi");
    assert!(handled.denials.is_empty(), "{handled:?}");
    assert_eq!(upstream.requests(), 1);

    // The same server under another name, another port, another scheme: not granted.
    for url in [
        format!("http://localhost:{port}/hello"),
        format!("http://127.0.0.1:{}/hello", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}/hello"),
    ] {
        let (_, body, handled) = get(&handler, &fetch(&url)).await;
        assert_eq!(body, "error HttpRequestDenied\n", "{url}");
        assert_eq!(handled.denials.len(), 1, "{url}");
        assert!(
            handled.denials[0]
                .reason
                .contains("is not in [capabilities.http] outbound"),
            "{}",
            handled.denials[0].reason
        );
    }
    assert_eq!(
        upstream.requests(),
        1,
        "denied requests never reach the server"
    );
}

#[tokio::test]
async fn a_redirect_is_a_request_of_its_own_and_is_checked_as_one() {
    // wasi:http never follows redirects for the guest: following one is the guest's
    // own next request, which the grant checks like any other.
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5))).with_capabilities(granted(&[&format!(
            "http://127.0.0.1:{}",
            upstream.addr().port()
        )])),
    );
    let to = other.url("/hello");
    let (_, body, _) = get(
        &handler,
        &fetch(&upstream.url(&format!("/redirect?to={to}"))),
    )
    .await;
    assert_eq!(body, "status 302\n", "the 302 itself reaches the guest");
    let (_, body, handled) = get(&handler, &fetch(&to)).await;
    assert_eq!(body, "error HttpRequestDenied\n");
    assert_eq!(handled.denials.len(), 1);
    assert_eq!(other.requests(), 0);
}

#[tokio::test]
async fn private_addresses_are_refused_after_dns_when_the_operator_says_so() {
    let upstream = Upstream::start().await;
    let port = upstream.addr().port();
    let caps = granted(&["http://localhost:*", "http://127.0.0.1:*"]);
    let open =
        fetcher(Sandbox::new(limits(Duration::from_secs(5))).with_capabilities(caps.clone()));
    let (_, body, _) = get(&open, &fetch(&format!("http://localhost:{port}/hello"))).await;
    assert_eq!(
        body, "status 200\nhi",
        "granted, and the operator allows loopback"
    );

    let guarded = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(caps)
            .refuse_private_addresses(true),
    );
    let before = upstream.requests();
    for url in [
        format!("http://localhost:{port}/hello"),
        format!("http://127.0.0.1:{port}/hello"),
    ] {
        let (_, body, handled) = get(&guarded, &fetch(&url)).await;
        assert_eq!(body, "error DestinationIpProhibited\n", "{url}");
        assert_eq!(handled.denials.len(), 1, "{url}: {handled:?}");
        assert!(
            handled.denials[0]
                .reason
                .contains("not a globally routable address")
        );
    }
    assert_eq!(upstream.requests(), before, "refused before connecting");
}

/// A guest firing requests without waiting for them is bounded per instance: past
/// the bound (4 here), each fails at once with `connection-limit-reached`, and the
/// upstream never sees more than the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_requests_in_flight_are_bounded_per_instance() {
    let upstream = Upstream::start().await;
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(granted(&["http://127.0.0.1:*"]))
            .max_outgoing_requests(4),
    );
    let url = upstream.url("/stall-head");
    let (status, body, handled) = get(&handler, &format!("{}&flood=50", fetch(&url))).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "refused 46 of 50 (ConnectionLimitReached)\n"),
        "{handled:?}"
    );
    assert!(upstream.requests() <= 4, "{}", upstream.requests());
}

#[tokio::test]
async fn a_request_waiting_on_a_silent_server_ends_within_the_call() {
    let upstream = Upstream::start().await;
    let timeout = Duration::from_millis(800);
    let handler =
        fetcher(Sandbox::new(limits(timeout)).with_capabilities(granted(&["http://127.0.0.1:*"])));
    let started = Instant::now();
    let (status, body, handled) = get(&handler, &fetch(&upstream.url("/stall-head"))).await;
    // The first-byte timeout was cut to what was left of the call (less a tenth for
    // the guest to answer): the guest saw the timeout and answered in time.
    assert_eq!(
        (status, body.as_str()),
        (200, "error ConnectionReadTimeout\n"),
        "{handled:?}"
    );
    assert!(handled.error.is_none(), "{handled:?}");
    let took = started.elapsed();
    assert!(took < timeout, "took {took:?}");
}

#[tokio::test]
async fn a_stalled_response_body_ends_with_the_between_bytes_timeout() {
    let upstream = Upstream::start().await;
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(granted(&["http://127.0.0.1:*"])),
    );
    let url = format!(
        "{}&read=count&between_ms=200",
        fetch(&upstream.url("/stall-body"))
    );
    let started = Instant::now();
    let (_, body, _) = get(&handler, &url).await;
    assert_eq!(body, "read 5 bytes, then error connection read timeout\n");
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// The resident set of this process, from /proc (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn an_endless_response_body_is_streamed_not_kept() {
    let upstream = Upstream::start().await;
    let timeout = Duration::from_secs(1);
    let handler =
        fetcher(Sandbox::new(limits(timeout)).with_capabilities(granted(&["http://127.0.0.1:*"])));
    let before = rss_bytes();
    let (status, body, handled) = get(
        &handler,
        &format!("{}&read=count", fetch(&upstream.url("/endless"))),
    )
    .await;
    // The guest reads (and drops) the body until the call's deadline stops it.
    assert_eq!(status, 503, "{body}");
    assert!(
        matches!(handled.error, Some(WasmError::ComponentTimeout { .. })),
        "{handled:?}"
    );
    let sent = upstream.bytes_sent();
    assert!(sent > 64 << 20, "only {sent} bytes went through");
    // What went through is far more than what host (or guest) memory grew by.
    if let (Some(before), Some(after)) = (before, rss_bytes()) {
        let grew = after.saturating_sub(before);
        assert!(
            grew < sent / 4 && grew < 128 << 20,
            "RSS grew {grew} for {sent} bytes"
        );
    }
    assert!(handled.report.unwrap().peak_memory_bytes < 8 << 20);
}

#[tokio::test]
async fn https_requests_speak_tls() {
    // A plain-HTTP server addressed as https: the TLS handshake fails; nothing is sent
    // in the clear.
    let upstream = Upstream::start().await;
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(granted(&["https://127.0.0.1:*"])),
    );
    let url = format!("https://{}/hello", upstream.addr());
    let (_, body, _) = get(&handler, &fetch(&url)).await;
    assert_eq!(body, "error TlsProtocolError\n");
    assert_eq!(upstream.requests(), 0);
}

/// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost`, which a
/// client verifying against the Mozilla roots must refuse: it answers `200 hi` after a
/// handshake; the count of handshakes that succeeded.
async fn self_signed_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncWriteExt as _;

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    // ring, as the client side (rustls deprecates its provider for lacking
    // post-quantum key exchange; a test server does not need it).
    #[expect(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = std::sync::Arc::new(AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&handshakes);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = std::sync::Arc::clone(&counted);
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
                        .await;
                }
            });
        }
    });
    (addr, handshakes)
}

#[tokio::test]
async fn https_verifies_the_server_certificate() {
    // A real TLS server whose certificate no trusted root signed: the handshake is
    // refused client-side as a certificate error, and no request is sent.
    let (addr, handshakes) = self_signed_server().await;
    let handler = fetcher(
        Sandbox::new(limits(Duration::from_secs(5)))
            .with_capabilities(granted(&["https://localhost:*"])),
    );
    let url = format!("https://localhost:{}/hello", addr.port());
    let (_, body, _) = get(&handler, &fetch(&url)).await;
    assert_eq!(body, "error TlsCertificateError\n");
    assert_eq!(handshakes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_handler_mounts_in_a_hyper_server_as_a_tower_service() {
    // What an embedder does: its own hyper server, the handler as a tower Service.
    let handler = handler(
        "http-hello",
        guests::HTTP_HELLO,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(handler.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    let mut connection = airssys_wasm_testkit::http::Connection::open(addr)
        .await
        .unwrap();
    for _ in 0..3 {
        let reply = connection
            .send("GET", "/", b"", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "hello from a wasi:http component\n")
        );
    }
}

#[tokio::test]
async fn a_component_without_the_incoming_handler_is_refused_with_what_it_exports() {
    let engine = WasmEngine::new().unwrap();
    let c = component(&engine, "calc", guests::CALC);
    let e = HttpHandler::new(
        &c,
        Sandbox::new(limits(Duration::from_secs(1))),
        HttpLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, WasmError::ExportNotFound { .. }), "{e}");
    assert!(e.to_string().contains("incoming-handler"), "{e}");
}

#[tokio::test]
async fn handlers_with_only_the_proxy_world_and_with_all_of_wasi_both_run() {
    let engine = WasmEngine::new().unwrap();
    let hello = component(&engine, "http-hello", guests::HTTP_HELLO);
    assert!(
        hello
            .imports()
            .iter()
            .all(|i| i.name.starts_with("wasi:http/") || i.name.starts_with("wasi:io/")),
        "http-hello should import the proxy world's HTTP and I/O only"
    );
    let h = HttpHandler::new(
        &hello,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default(),
    )
    .unwrap();
    let (status, body, _) = get(&h, "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from a wasi:http component\n")
    );

    let std = component(&engine, "http-std", guests::HTTP_STD);
    assert!(
        std.imports()
            .iter()
            .any(|i| i.name.starts_with("wasi:cli/environment"))
    );
    let mut caps = CapabilitySet::deny_all();
    caps.env.push(airssys_wasm_core::EnvGrant {
        name: "GREETING".into(),
        value: Some("bonjour".into()),
    });
    let h = HttpHandler::new(
        &std,
        Sandbox::new(limits(Duration::from_secs(5))).with_capabilities(caps),
        HttpLimits::default(),
    )
    .unwrap();
    let (status, body, _) = get(&h, "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "bonjour from std; env vars: 1; clock ok: true\n")
    );
}

fn hostile(limits: ResourceLimits, http: HttpLimits) -> HttpHandler {
    // stderr is not granted: the guest's panic message goes nowhere.
    handler(
        "http-hostile",
        guests::HTTP_HOSTILE,
        Sandbox::new(limits),
        http,
    )
}

/// A fields hoarder — 1,000 headers values of 64 KiB kept alive, alone or inside
/// outgoing requests — is stopped at its host-memory budget (4 MiB here) with an error
/// naming it, not by the host growing by 64 MiB; fields it drops are given back, so
/// building many one after another stays within the budget.
#[tokio::test]
async fn a_fields_hoarder_is_held_to_its_host_memory_budget() {
    let limits = ResourceLimits::new(16 << 20, 5_000_000_000, Duration::from_secs(10))
        .unwrap()
        .with_host_memory_bytes(4 << 20)
        .unwrap();
    let handler = hostile(limits, HttpLimits::default());
    for path in [
        "/hoard-fields?n=1000&kb=64",
        "/hoard-fields?n=1000&kb=64&into=request",
    ] {
        let (status, body, handled) = get(&handler, path).await;
        assert_eq!(status, 500, "{path}: {body}");
        match &handled.error {
            Some(WasmError::ResourceLimitExceeded {
                resource, limit, ..
            }) => {
                assert!(resource.contains("wasi:http fields"), "{resource}");
                assert!(resource.contains("host_memory"), "{resource}");
                assert_eq!(*limit, 4 << 20);
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // Within the budget, and dropped as it goes: both answered.
    let (status, body, handled) = get(&handler, "/hoard-fields?n=40&kb=64").await;
    assert_eq!((status, body.as_str()), (200, "held 40\n"), "{handled:?}");
    let (status, body, handled) = get(&handler, "/hoard-fields?n=1000&kb=64&drop=1").await;
    assert_eq!((status, body.as_str()), (200, "held 0\n"), "{handled:?}");
}

/// A guest that opens outgoing bodies and fills their buffers without sending them is
/// stopped at its host-memory budget too: each body is charged what its buffer can
/// hold (128 KiB) while its request lives.
#[tokio::test]
async fn a_body_hoarder_is_held_to_its_host_memory_budget() {
    let limits = ResourceLimits::new(16 << 20, 5_000_000_000, Duration::from_secs(10))
        .unwrap()
        .with_host_memory_bytes(4 << 20)
        .unwrap();
    let handler = hostile(limits, HttpLimits::default());
    let (status, body, handled) = get(&handler, "/hoard-bodies?n=1000").await;
    assert_eq!(status, 500, "{body}");
    match &handled.error {
        Some(WasmError::ResourceLimitExceeded {
            resource, limit, ..
        }) => {
            assert!(resource.contains("wasi:http outgoing bodies"), "{resource}");
            assert_eq!(*limit, 4 << 20);
        }
        other => panic!("{other:?}"),
    }
    // Within the budget: each body took what its buffer holds, and no more.
    let (status, body, handled) = get(&handler, "/hoard-bodies?n=8").await;
    assert_eq!(status, 200, "{handled:?}");
    let bytes: u64 = body
        .trim_end()
        .strip_prefix("held 8 bodies, ")
        .and_then(|b| b.strip_suffix(" bytes"))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("{body}"));
    assert!(bytes > 0 && bytes <= 8 * 128 * 1024, "{bytes}");
}

/// Two handlers share one pooled engine of a single instance slot: while one request
/// holds it, the other handler's request finds the pool full — a transient state, so
/// `503` (not `500`) and `PoolExhausted`; once the slot is free, both answer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_shared_by_two_handlers_answers_503() {
    let limits = ResourceLimits::new(16 << 20, 5_000_000_000, Duration::from_secs(10)).unwrap();
    let engine = WasmEngine::builder()
        .pooling(Pooling::for_limits(&limits, 1))
        .build()
        .unwrap();
    let hostile = component(&engine, "http-hostile", guests::HTTP_HOSTILE);
    let hello = component(&engine, "http-hello", guests::HTTP_HELLO);
    let a = HttpHandler::new(
        &hostile,
        Sandbox::new(limits.clone()),
        HttpLimits::default(),
    )
    .unwrap();
    let b = HttpHandler::new(&hello, Sandbox::new(limits), HttpLimits::default()).unwrap();

    // The probe may take the slot just as the sleeper instantiates: then the sleeper
    // is the one refused, and the scenario starts again.
    for _ in 0..5 {
        let holder = tokio::spawn({
            let a = a.clone();
            async move { get(&a, "/sleep?ms=1000").await }
        });
        // Until the sleeping request holds the only slot.
        let mut full = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (status, _, handled) = get(&b, "/").await;
            if status != 200 {
                full = Some((status, handled));
                break;
            }
        }
        let (held, body, _) = holder.await.unwrap();
        if held != 200 {
            continue;
        }
        assert_eq!(body, "woke up\n");
        let (status, handled) = full.expect("the second handler never found the pool full");
        assert_eq!(status, 503, "{handled:?}");
        assert!(
            matches!(
                &handled.error,
                Some(WasmError::PoolExhausted { resource, limit: 1, .. }) if resource == "component instances"
            ),
            "{handled:?}"
        );
        assert_eq!(get(&b, "/").await.0, 200);
        return;
    }
    panic!("the sleeping request never held the slot");
}

#[tokio::test]
async fn hostile_requests_get_generic_errors_and_the_handler_carries_on() {
    let limits = ResourceLimits::new(16 << 20, 500_000_000, Duration::from_millis(500)).unwrap();
    let handler = hostile(limits, HttpLimits::default());
    let cases: &[(&str, u16, &str)] = &[
        ("/loop", 500, "fuel"),
        ("/panic", 500, "trap"),
        ("/alloc", 500, "memory"),
        ("/sleep", 503, "timeout"),
        ("/no-response", 500, "no response"),
        ("/error", 500, "error code"),
    ];
    for &(path, want, what) in cases {
        let (status, body, handled) = get(&handler, path).await;
        assert_eq!(status, want, "{path}: {handled:?}");
        assert!(
            body == "internal server error\n" || body == "service unavailable\n",
            "{path}: the client gets a generic body, got {body:?}"
        );
        assert!(!body.contains("secret-guest-detail"));
        match what {
            "fuel" => assert!(matches!(
                handled.error,
                Some(WasmError::FuelExhausted { .. })
            )),
            "trap" => assert!(matches!(
                handled.error,
                Some(WasmError::ComponentTrapped { .. })
            )),
            "memory" => assert!(
                matches!(handled.error, Some(WasmError::MemoryLimitExceeded { .. })),
                "{handled:?}"
            ),
            "timeout" => assert!(matches!(
                handled.error,
                Some(WasmError::ComponentTimeout { .. })
            )),
            "no response" => assert!(
                handled
                    .problem
                    .as_deref()
                    .unwrap_or("")
                    .contains("without setting a response")
            ),
            _ => assert!(
                handled
                    .problem
                    .as_deref()
                    .unwrap_or("")
                    .contains("secret-guest-detail"),
                "the log (not the client) has the guest's error: {handled:?}"
            ),
        }
        let (status, body, _) = get(&handler, "/ok").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"), "after {path}");
    }
}

#[tokio::test]
async fn an_endless_response_is_cut_at_the_call_timeout() {
    let limits = ResourceLimits::new(16 << 20, 50_000_000_000, Duration::from_millis(300)).unwrap();
    let handler = hostile(limits, HttpLimits::default());
    let request = http::Request::get("http://localhost/stream")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let (response, handled) = handler.handle_observed(request).await;
    assert_eq!(response.status(), 200, "the head went out before the body");
    // Read and dropped as it comes (collecting it would keep ~300 ms of an endless
    // body in this process, which the RSS checks of the tests beside it would see).
    let mut body = response.into_body();
    let end = loop {
        match body.frame().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    assert!(end.is_err(), "the body ends with an error, not a clean end");
    let handled = handled.await.unwrap();
    assert!(
        matches!(handled.error, Some(WasmError::ComponentTimeout { .. })),
        "{handled:?}"
    );
}

#[tokio::test]
async fn past_the_concurrency_bound_requests_queue_then_get_503() {
    let limits = ResourceLimits::new(16 << 20, 500_000_000, Duration::from_secs(5)).unwrap();
    let handler = hostile(
        limits,
        HttpLimits::default()
            .max_concurrency(1)
            .max_queue(1)
            .queue_timeout(Duration::from_millis(300)),
    );
    let slow = |h: HttpHandler| async move { get(&h, "/sleep?ms=1000").await };
    let first = tokio::spawn(slow(handler.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handler.in_flight(), 1);
    let second = tokio::spawn(slow(handler.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, handled) = slow(handler.clone()).await;
    assert_eq!(status, 503);
    assert!(handled.problem.unwrap().contains("queue is full"));
    assert!(handled.report.is_none(), "no instance was made for it");
    let (status, _, handled) = second.await.unwrap();
    assert_eq!(status, 503);
    assert!(handled.problem.unwrap().contains("queue timeout"));
    let (status, body, _) = first.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "woke up\n"));
    assert_eq!(handler.in_flight(), 0);
    assert_eq!(get(&handler, "/ok").await.0, 200);
}

/// A body of `n` bytes whose length is not announced (as a chunked upload).
struct Unsized(Option<Bytes>);

impl http_body::Body for Unsized {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// A body of 10,000 declared bytes that sends 2, then nothing ever again.
struct Stalling(bool);

impl http_body::Body for Stalling {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"ab")))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(10_000)
    }
}

/// A body of 10,000 declared bytes that sends a byte every 100 ms: never pausing long
/// enough for the body timeout, far too slow to ever finish.
struct Trickling(tokio::time::Interval);

impl http_body::Body for Trickling {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::ready!(self.0.poll_tick(cx));
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"a")))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(10_000)
    }
}

/// A client trickling its body a byte at a time is cut off too: what is read before an
/// instance is taken must arrive within three body timeouts, however it is paced.
#[tokio::test]
async fn a_trickling_client_is_cut_off_without_an_instance() {
    let handler = handler(
        "http-hello",
        guests::HTTP_HELLO,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default().body_timeout(Duration::from_millis(300)),
    );
    let request = http::Request::post("http://localhost/echo")
        .header(http::header::CONTENT_LENGTH, "10000")
        .body(Trickling(tokio::time::interval(Duration::from_millis(100))))
        .unwrap();
    let (response, handled) = handler.handle_observed(request).await;
    assert_eq!(response.status(), 408);
    assert!(
        handled.await.unwrap().report.is_none(),
        "an instance was taken"
    );
}

#[tokio::test]
async fn request_bodies_are_bounded() {
    let handler = handler(
        "http-hello",
        guests::HTTP_HELLO,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default().max_request_body(1024),
    );
    fn post<B>(body: B) -> http::Request<B> {
        http::Request::post("http://localhost/echo")
            .body(body)
            .unwrap()
    }
    // Within the bound: echoed.
    let (response, _) = handler
        .handle_observed(post(Unsized(Some(Bytes::from(vec![b'a'; 1024])))))
        .await;
    assert_eq!(response.status(), 200);
    // Announced too large: 413, and no instance.
    let big = http_body_util::Full::new(Bytes::from(vec![b'a'; 2048]));
    let (response, handled) = handler.handle_observed(post(big)).await;
    assert_eq!(response.status(), 413);
    assert!(handled.await.unwrap().report.is_none());
    // Streamed past the bound, within what is read before an instance is taken: 413,
    // and no instance.
    let (response, handled) = handler
        .handle_observed(post(Unsized(Some(Bytes::from(vec![b'a'; 2048])))))
        .await;
    assert_eq!(response.status(), 413);
    assert!(handled.await.unwrap().report.is_none());
    // Past the bound while streaming to the guest (nothing read ahead): the guest's
    // read fails, and it says so.
    let streaming = self::handler(
        "http-hello",
        guests::HTTP_HELLO,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default()
            .max_request_body(1024)
            .buffered_body(0),
    );
    let (response, _) = streaming
        .handle_observed(post(Unsized(Some(Bytes::from(vec![b'a'; 2048])))))
        .await;
    assert_eq!(response.status(), 400);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).starts_with("cannot read the body"));
}

/// A client that sends its headers and then stalls mid-body holds no instance: with
/// one instance slot, eight such clients do not stop a plain GET from being served,
/// and each stalled one is answered 408 once the body timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stalled_mid_body_hold_no_instance() {
    let handler = handler(
        "http-hello",
        guests::HTTP_HELLO,
        Sandbox::new(limits(Duration::from_secs(5))),
        HttpLimits::default()
            .max_concurrency(1)
            .max_queue(0)
            .body_timeout(Duration::from_millis(500)),
    );
    let mut stalled = Vec::new();
    for _ in 0..8 {
        // 10 KB declared, 2 bytes sent, then nothing.
        let request = http::Request::post("http://localhost/echo")
            .header(http::header::CONTENT_LENGTH, "10000")
            .body(Stalling(false))
            .unwrap();
        let h = handler.clone();
        stalled.push(tokio::spawn(
            async move { h.handle_observed(request).await },
        ));
    }
    // Meanwhile the one instance slot is free.
    let ok = handler
        .handle(
            http::Request::get("http://localhost/")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    for task in stalled {
        let (response, handled) = task.await.unwrap();
        assert_eq!(response.status(), 408);
        assert!(
            handled.await.unwrap().report.is_none(),
            "an instance was taken"
        );
    }
}
