//! A `wasi:http/incoming-handler` that misbehaves on request, for the server's crash
//! isolation: `/loop` spins forever, `/panic` panics (a trap), `/alloc` allocates
//! without end, `/stream` answers 200 and streams an endless body, `/sleep` waits in
//! the host (a monotonic-clock sleep) for an hour — or `?ms=N` milliseconds, then
//! answers `woke up` —, `/no-response` returns without
//! answering, `/error` answers with a `wasi:http` error code, `/hoard-fields?n=N&kb=K`
//! builds N fields (headers) values of K KiB each and keeps them all — `&into=request`
//! inside outgoing requests, `&drop=1` dropping each at once — then answers `held N`;
//! `/hoard-bodies?n=N` opens N outgoing requests' bodies, writes into each what it
//! takes without blocking, keeps them all and answers `held N bodies, B bytes`;
//! anything else is a normal `200 ok`.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{ErrorCode, OutgoingRequest};

include!("../../http-common/respond.rs");

struct Hostile;

impl Guest for Hostile {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = path(&request);
        let route = full.split('?').next().unwrap_or("/");
        match route {
            "/loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "/panic" => panic!("the guest panicked on purpose: secret-guest-detail"),
            "/alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/stream" => {
                let (body, stream) = start(out, 200);
                let chunk = [b'x'; 4096];
                while write_all(&stream, &chunk) {}
                finish(body, stream);
            }
            "/sleep" => {
                let ms = query(&full, "ms").and_then(|v| v.parse::<u64>().ok());
                let nanos = ms.map_or(3_600_000_000_000, |ms| ms * 1_000_000);
                wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
                respond(out, 200, b"woke up\n");
            }
            "/hoard-fields" => {
                let number = |name| query(&full, name).and_then(|v| v.parse::<usize>().ok());
                let (n, kb) = (number("n").unwrap_or(1), number("kb").unwrap_or(1));
                let into_requests = query(&full, "into") == Some("request");
                let drop_each = query(&full, "drop") == Some("1");
                let mut fields = Vec::new();
                let mut requests = Vec::new();
                for _ in 0..n {
                    let f = Fields::new();
                    // 1 KiB values under distinct names, each fields value K KiB.
                    let value = [b'v'; 1024];
                    for k in 0..kb {
                        if f.append(&format!("x-hoard-{k}"), &value).is_err() {
                            return respond(out, 500, b"append refused\n");
                        }
                    }
                    if drop_each {
                        drop(f);
                    } else if into_requests {
                        requests.push(OutgoingRequest::new(f));
                    } else {
                        fields.push(f);
                    }
                }
                let held = fields.len() + requests.len();
                respond(out, 200, format!("held {held}\n").as_bytes());
            }
            "/hoard-bodies" => {
                let n = query(&full, "n").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
                let mut kept = Vec::new();
                let mut bytes = 0u64;
                for _ in 0..n {
                    let request = OutgoingRequest::new(Fields::new());
                    let Ok(body) = request.body() else {
                        return respond(out, 500, b"no body\n");
                    };
                    let Ok(stream) = body.write() else {
                        return respond(out, 500, b"no stream\n");
                    };
                    // What the host takes without waiting: a few writes.
                    for _ in 0..4 {
                        match stream.check_write() {
                            Ok(0) | Err(_) => break,
                            Ok(permit) => {
                                let len = permit.min(1 << 20) as usize;
                                if stream.write(&vec![b'b'; len]).is_err() {
                                    break;
                                }
                                bytes += len as u64;
                            }
                        }
                    }
                    kept.push((stream, body, request)); // dropped children first
                }
                let text = format!("held {} bodies, {bytes} bytes\n", kept.len());
                respond(out, 200, text.as_bytes());
            }
            "/no-response" => drop(out),
            "/error" => ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some("secret-guest-detail".into())))),
            _ => respond(out, 200, b"ok\n"),
        }
    }
}

wasip2::http::proxy::export!(Hostile);
