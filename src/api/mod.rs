//! The API listener's routes: the realstatistic endpoint
//! (`POST /rest/cmsapp/v1/openapi/fromisales/realstatistic`) and the wallboard routes beside it.
//!
//! Every route runs the same steps, each with its row of the error table in api.md: [`admit`]
//! (method 405, header size 431, lockout 403, body size 413, authentication 401), then its own
//! parameters (0100002), [`check_scope`] (0101003), [`check_ready`] (503), then the answer.
//! Authentication comes before parsing so an unauthenticated client learns nothing about the
//! parameters it sends; it needs the body, which is part of the signature, so the size limit
//! comes first.

pub mod batch;
pub mod breakdown;
pub mod request;
pub mod response;
pub mod stream;

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::c2::HeaderLookup;
use crate::auth::{self, AuthError, Clock, Keys, Lockout, SignedParts};
use crate::events::TenantFilter;
use crate::fold::Store;
use crate::metrics::{AuthRefusal, Metrics};
use crate::progress::Readiness;
use crate::result_code::ResultCode;
use response::{ApiError, Realstatistic};

/// An actix route for `handle` (an `async fn(&HttpRequest, web::Payload, &ApiState) ->
/// Result<HttpResponse, ApiError>`), behind what every route shares ([`answer`]). Any method
/// reaches it, so a wrong method gets its 405 with the vendor's error body.
macro_rules! route {
    ($handle:path) => {
        web::route().to(
            |req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>| {
                answer(req, payload, state, |req, payload, state| async move {
                    $handle(&req, payload, &state).await
                })
            },
        )
    };
}

pub const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistic";
/// api.md: "at most 4 KiB".
pub const MAX_BODY_BYTES: usize = 4096;

/// What request handlers share. Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub keys: Keys,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub default_cc_id: u16,
    pub allowed_skew_secs: i64,
    pub lockout: Arc<Lockout>,
    /// Peers whose `X-Forwarded-For` is believed (the NSLB).
    pub trusted_proxies: Arc<[IpAddr]>,
    pub limits: Limits,
    /// The tenants this deployment keeps: queries for others are refused like a key's scope.
    pub tenants: TenantFilter,
    /// Bumped by the consumer after each batch: live streams wake on it.
    pub changes: Arc<crate::progress::Changes>,
    /// The process's stop signal: live streams end on it.
    pub shutdown: crate::shutdown::Shutdown,
    /// Open live streams, per key and in total.
    pub streams: Arc<stream::StreamLimits>,
}

/// Protections of the API listener against oversized and slow clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sum of the request's header names and values; larger: 431.
    pub max_header_bytes: usize,
    /// Time allowed to receive a request's head (slow-header clients are cut off).
    pub request_head_timeout: Duration,
    /// Time allowed to receive the body once the head is in (slow-body clients: 408).
    pub body_timeout: Duration,
    /// Idle time before a keep-alive connection is closed.
    pub keep_alive: Duration,
    /// Concurrent connections per worker thread.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            request_head_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(75),
            max_connections: 25_000,
        }
    }
}

/// Mounts the endpoint. Any method reaches the handler, which answers 405 itself so the error
/// body has the vendor's shape.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PATH).route(route!(realstatistic)));
    cfg.service(web::resource(batch::PATH).route(route!(batch::handle)));
    cfg.service(web::resource(breakdown::PATH).route(route!(breakdown::handle)));
    cfg.service(web::resource(stream::PATH).route(route!(stream::handle)));
}

/// Numbers requests so every log line of one request carries the same id (also sent back as
/// `X-Request-Id`). A process-wide counter: unique per replica, cheap, and never a client value.
static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// The one-task endpoint: the checks every route shares, then one read of the store.
async fn realstatistic(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
) -> Result<HttpResponse, ApiError> {
    let task = admit_json(req, payload, state, |body, cc| {
        let task = request::parse_body(body, cc).map_err(ApiError::invalid)?;
        Ok(((task.cc_id, task.vdn), task))
    })
    .await?;
    let stats = state.store.stats(&task, today(&state.store));
    Ok(Realstatistic::from(stats).into_response())
}

/// What every route of the API listener shares around its own checks: the request id (a span
/// on its log lines and the `X-Request-Id` header), the request metrics, and the log line and
/// body of a refusal.
pub(crate) async fn answer<F, Fut>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
    route: F,
) -> HttpResponse
where
    F: FnOnce(HttpRequest, web::Payload, web::Data<ApiState>) -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, ApiError>>,
{
    use tracing::Instrument;
    let id = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("request", request_id = id);
    let started = Instant::now();
    let metrics = state.metrics.clone();
    let outcome = route(req, payload, state).instrument(span.clone()).await;
    let (status, code) = match &outcome {
        Ok(_) => (200, ResultCode::Success),
        Err(e) => (e.status.as_u16(), e.code),
    };
    metrics.request_answered(status, code, started.elapsed().as_secs_f64());
    let mut resp = match outcome {
        Ok(resp) => resp,
        Err(e) => {
            let _in_request = span.enter();
            if e.status.is_server_error() {
                tracing::warn!(status, code = code.as_str(), reason = %e.desc, "request failed");
            } else {
                tracing::debug!(status, code = code.as_str(), reason = %e.desc, "request refused");
            }
            e.into_response()
        }
    };
    resp.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-request-id"),
        actix_web::http::header::HeaderValue::from(id),
    );
    resp
}

/// A request that passed the checks every route shares: who signed it, and its body.
pub(crate) struct Admitted {
    pub key: Arc<auth::KeyEntry>,
    pub body: web::Bytes,
}

/// Every check of a signed JSON `POST` route, in the order of api.md: [`admit`], the
/// Content-Type, the body (`parse` gives the value and the call center and VDN it reads), the
/// key's scope and the tenant, readiness.
pub(crate) async fn admit_json<T>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
    parse: impl FnOnce(&[u8], u16) -> Result<((u16, u16), T), ApiError>,
) -> Result<T, ApiError> {
    let admitted = admit(req, payload, state, Method::POST).await?;
    check_json(req)?;
    let ((cc_id, vdn), value) = parse(&admitted.body, state.default_cc_id)?;
    check_scope(&admitted.key, cc_id, vdn, state)?;
    check_ready(state)?;
    Ok(value)
}

/// The first checks of every route, in the order of api.md: method (405), header size (431),
/// lockout of the client address (403), body size and read (413, 408, 0100002), authentication
/// (401, counted towards the lockout).
pub(crate) async fn admit(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
    method: Method,
) -> Result<Admitted, ApiError> {
    if req.method() != method {
        return Err(if method == Method::GET {
            ApiError::method_not_allowed_use_get()
        } else {
            ApiError::method_not_allowed()
        });
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > state.limits.max_header_bytes {
        return Err(ApiError::headers_too_large());
    }
    let client = client_address(req, state);
    if client.is_some_and(|ip| state.lockout.is_locked(ip)) {
        state.metrics.auth_refused(AuthRefusal::Locked);
        return Err(ApiError::locked());
    }
    // A declared length over the limit is refused without reading a byte.
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::too_large());
    }
    // A client that sends its body slowly holds a worker's attention: bound the wait. Almost
    // always the body came with the head and the first poll has it: the timer (armed, then
    // cancelled, per request) is only set up when it did not.
    let mut read = std::pin::pin!(payload.to_bytes_limited(MAX_BODY_BYTES));
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(body) => Ok(body),
        Poll::Pending => tokio::time::timeout(state.limits.body_timeout, read).await,
    };
    let body = match outcome {
        Ok(Ok(Ok(body))) => body,
        Ok(Ok(Err(_))) => return Err(ApiError::invalid_body("request body could not be read")),
        Ok(Err(_)) => return Err(ApiError::too_large()),
        Err(_) => return Err(ApiError::body_timeout()),
    };

    let key = authenticate(req, &body, state).map_err(|e| {
        state.metrics.auth_refused(e.category());
        if let Some(ip) = client {
            if state.lockout.record_failure(ip) {
                tracing::warn!(client = %ip, "address locked after repeated authentication failures");
            }
        }
        ApiError::unauthorized(e)
    })?;
    Ok(Admitted { key, body })
}

/// `Content-Type` of a JSON body (0100002).
pub(crate) fn check_json(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes());
    request::check_content_type(content_type).map_err(ApiError::invalid)
}

/// The key's scope (0101003): may it read this call center and VDN, and does this deployment
/// keep that tenant (`tenants.*`)?
pub(crate) fn check_scope(
    key: &auth::KeyEntry,
    cc_id: u16,
    vdn: u16,
    state: &ApiState,
) -> Result<(), ApiError> {
    if key.may_read(cc_id, vdn) && state.tenants.keeps(cc_id, vdn) {
        return Ok(());
    }
    state.metrics.auth_refused(AuthRefusal::Forbidden);
    Err(ApiError::forbidden())
}

/// Readiness (503): the replica has caught up with the log.
pub(crate) fn check_ready(state: &ApiState) -> Result<(), ApiError> {
    if state.readiness.is_ready() {
        Ok(())
    } else {
        Err(ApiError::not_ready())
    }
}

/// The local day of the wall clock: what "today" means for a request.
pub(crate) fn today(store: &Store) -> crate::fold::Day {
    store.calendar().day_of(crate::clock::now_ms())
}

/// The address the lockout counts for: the peer, or what a trusted proxy says it is.
fn client_address(req: &HttpRequest, state: &ApiState) -> Option<IpAddr> {
    // Every line, in order: together they are one list (see `client_ip`).
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    auth::client_ip(
        req.peer_addr().map(|a| a.ip()),
        &forwarded,
        &state.trusted_proxies,
    )
}

/// Adapts the request to the C2 verifier: header values as received, path and query as sent.
fn authenticate(
    req: &HttpRequest,
    body: &[u8],
    state: &ApiState,
) -> Result<Arc<auth::KeyEntry>, AuthError> {
    let headers = req.headers();
    let mut values = headers.get_all(actix_web::http::header::AUTHORIZATION);
    let value = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(AuthError::Malformed),
        (Some(v), None) => Some(v.to_str().map_err(|_| AuthError::Malformed)?),
    };
    let lookup = |name: &str| -> HeaderLookup<'_> {
        let mut all = headers.get_all(name);
        match (all.next(), all.next()) {
            (None, _) => HeaderLookup::Missing,
            (Some(v), None) => HeaderLookup::One(v.as_bytes()),
            (Some(_), Some(_)) => HeaderLookup::Many,
        }
    };
    auth::authenticate(
        &state.keys,
        value,
        &SignedParts {
            method: req.method().as_str(),
            path: req.uri().path(),
            raw_query: req.uri().query(),
            header: &lookup,
            body,
        },
        Clock {
            now_unix: crate::clock::now_unix(),
            allowed_skew_secs: state.allowed_skew_secs,
        },
    )
}
