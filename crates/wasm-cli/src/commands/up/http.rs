//! `[http]` of `up`: HTTP routes into actors. A request on a route's path, with one of
//! its methods, goes to its actor as a request message (the body as the payload, the
//! `Content-Type` as its content type) and is answered with the actor's reply: 200 and
//! the reply, 204 when the actor returns none, 504 when none comes within the
//! section's `timeout`, 500 when the actor fails on it (the reason stays in the log),
//! 503 when the actor cannot take it (a full mailbox, stopping). What a client can make
//! the host hold is bounded: the body (413), the time to send it (408), requests at
//! once (503), connections, the head (`server.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use airssys_wasm_actor::{ActorAddress, ActorSystem, MessageEnvelope, RequestError};
use airssys_wasm_core::units::format_duration;
use airssys_wasm_manifest::HttpSection;

use crate::server::{ConnectionLimits, accept_until, connection_bound};

/// The routes' server, running.
pub(super) struct HttpRoutes {
    stop: oneshot::Sender<()>,
    task: JoinHandle<GracefulShutdown>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

/// One route.
struct Route {
    actor: ActorAddress,
    methods: Vec<Method>,
    allow: HeaderValue,
}

/// What each request needs.
struct Routes {
    system: ActorSystem,
    routes: HashMap<String, Route>,
    timeout: Duration,
    max_body: usize,
    body_timeout: Duration,
    in_flight: Arc<Semaphore>,
}

/// The media type of a body that names none.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The longest `Content-Type` passed on to an actor.
const MAX_CONTENT_TYPE: usize = 256;

impl HttpRoutes {
    /// Listens on the section's address and serves its routes into `system`; the
    /// address it listens on.
    ///
    /// # Errors
    ///
    /// A route's body bound larger than a message may be, or the address cannot be
    /// listened on: the words, with the section's origin.
    pub(super) async fn start(
        section: &HttpSection,
        system: &ActorSystem,
    ) -> Result<(Self, SocketAddr), String> {
        let max_message = system.limits().max_message_bytes;
        let max_body = usize::try_from(section.max_body).unwrap_or(usize::MAX);
        if max_body > max_message {
            return Err(format!(
                "{}: http.max_body is {max_body} bytes, but a message is at most {max_message}: \
                 lower it",
                section.origin
            ));
        }
        let mut routes = HashMap::new();
        for r in &section.routes {
            let actor = ActorAddress::named(&r.actor).map_err(|e| format!("{}: {e}", r.origin))?;
            let methods = r
                .methods
                .iter()
                .map(|m| Method::from_bytes(m.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", r.origin))?;
            let allow = HeaderValue::from_str(&r.methods.join(", "))
                .map_err(|e| format!("{}: {e}", r.origin))?;
            routes.insert(
                r.path.clone(),
                Route {
                    actor,
                    methods,
                    allow,
                },
            );
        }
        let listener = TcpListener::bind(section.listen).await.map_err(|e| {
            format!(
                "{}: cannot listen on {}: {e}",
                section.origin, section.listen
            )
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("{}: {e}", section.origin))?;
        let max_in_flight = usize::try_from(section.max_in_flight).unwrap_or(usize::MAX);
        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        let routes = Arc::new(Routes {
            system: system.clone(),
            routes,
            timeout: section.timeout,
            max_body,
            body_timeout: section.header_timeout,
            in_flight: Arc::clone(&in_flight),
        });
        let service = hyper::service::service_fn(move |request| {
            let routes = Arc::clone(&routes);
            async move { Ok::<_, Infallible>(routes.handle(request).await) }
        });
        let limits = ConnectionLimits {
            header_timeout: section.header_timeout,
            max_connections: connection_bound(
                usize::try_from(section.max_connections).unwrap_or(usize::MAX),
            ),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task =
            tokio::spawn(async move { accept_until(listener, limits, service, stopped).await.1 });
        Ok((
            Self {
                stop,
                task,
                in_flight,
                max_in_flight,
            },
            local,
        ))
    }

    /// Stops accepting and gives the requests in flight up to `grace` to be answered
    /// (the actors still run); whether they all were.
    pub(super) async fn stop(self, grace: Duration) -> bool {
        let _ = self.stop.send(());
        let Ok(graceful) = self.task.await else {
            return true;
        };
        let in_flight = self
            .max_in_flight
            .saturating_sub(self.in_flight.available_permits());
        if in_flight > 0 {
            eprintln!(
                "http: not accepting new connections; waiting up to {} for {in_flight} \
                 request(s) in flight",
                format_duration(grace)
            );
        }
        tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_ok()
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 503 with a hint to retry in a second.
fn unavailable(text: &str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, text);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

impl Routes {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(route) = self.routes.get(request.uri().path()) else {
            return plain(StatusCode::NOT_FOUND, "no route for this path");
        };
        if !route.methods.contains(request.method()) {
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            );
            response.headers_mut().insert(ALLOW, route.allow.clone());
            return response;
        }
        let Ok(_permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            return unavailable("too many requests at once; try again");
        };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {} bytes", self.max_body),
            );
        }
        let content_type: Arc<str> = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty() && t.len() <= MAX_CONTENT_TYPE)
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .into();
        let body = Limited::new(request.into_body(), self.max_body);
        let payload = match tokio::time::timeout(self.body_timeout, body.collect()).await {
            Err(_) => {
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                );
            }
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the body is larger than {} bytes", self.max_body),
                );
            }
            Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "the body could not be read"),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let envelope = MessageEnvelope::new(content_type, payload);
        match self
            .system
            .request(&route.actor, envelope, self.timeout)
            .await
        {
            Ok(reply) => {
                let mut response = Response::new(Full::new(reply.payload));
                let content_type = HeaderValue::from_str(&reply.content_type)
                    .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
                response.headers_mut().insert(CONTENT_TYPE, content_type);
                response
            }
            Err(RequestError::NoReply { .. }) => {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            Err(RequestError::Timeout { .. }) => plain(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "the actor did not answer within {}",
                    format_duration(self.timeout)
                ),
            ),
            // The reason is the actor's (a guest's words): in the supervisor's log, not
            // in the response.
            Err(RequestError::Failed { .. }) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the actor failed while handling the request",
            ),
            // Logged already, as a dead letter (rate-limited): no line per request
            // here, which a client could multiply.
            Err(RequestError::Undelivered { .. }) => {
                unavailable("the actor cannot take the request now; try again")
            }
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the request failed"),
        }
    }
}
