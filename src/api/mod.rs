//! The API listener's routes: the realstatistic endpoint
//! (`POST /rest/cmsapp/v1/openapi/fromisales/realstatistic`) and the wallboard routes beside it.
//!
//! Every route is a handler taking an [`Admitted`] request: actix runs the checks every route
//! shares, each with its row of the error table in api.md, before the handler is called
//! ([`admit`]: method 405, header size 431, lockout 403, host 401, body size 413, authentication 401, the
//! route's parameters 0100002, the key's scope 0101003, readiness 503). A refusal is an
//! [`ApiError`], which actix turns into the vendor's error body ([`ResponseError`]). Around both,
//! [`observe`] gives each request its id, its log span, its metrics and its `X-Request-Id`.
//! Authentication comes before parsing so an unauthenticated client learns nothing about the
//! parameters it sends; it needs the body, which is part of the signature, so the size limit
//! comes first.
//!
//! [`ResponseError`]: actix_web::ResponseError

pub mod admit;
pub mod batch;
pub mod breakdown;
pub mod error;
pub mod failstats;
pub mod request;
pub mod response;
pub mod stream;

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, FromRequest, Handler, HttpResponse, Responder};
use tracing::Instrument;

use crate::auth::{Keys, Lockout};
use crate::events::ids::TaskKey;
use crate::events::TenantFilter;
use crate::fold::Store;
use crate::metrics::Metrics;
use crate::progress::Readiness;
use crate::result_code::ResultCode;
pub(crate) use admit::{Admitted, Params, Scope};
pub use error::{ApiError, Verb};
use response::Realstatistic;

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
    /// The names the service answers to (`auth.allowed_hosts`; empty: any).
    pub allowed_hosts: Arc<crate::auth::AllowedHosts>,
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

/// Mounts the signed routes. Any method reaches a route's handler, whose extractor answers a
/// wrong one with its 405, so the error body has the vendor's shape.
pub fn configure(cfg: &mut web::ServiceConfig) {
    mount(cfg, PATH, realstatistic, RequestSpan::No);
    mount(cfg, batch::PATH, batch::handle, RequestSpan::No);
    mount(cfg, breakdown::PATH, breakdown::handle, RequestSpan::No);
    mount(cfg, stream::PATH, stream::handle, RequestSpan::Yes);
    mount(cfg, failstats::PATH, failstats::handle, RequestSpan::No);
}

fn mount<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F, span: RequestSpan)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .wrap_fn(move |req, srv| observe(req, srv, span))
            .route(web::route().to(handler)),
    );
}

/// Whether a route's handler runs in a `request` span, so that what it logs while it runs
/// carries the request id. Only the live stream logs from inside its handler (for as long as it
/// lasts); a one-shot answer logs only its refusal, which names the id itself. Creating a span
/// costs an allocation and the formatting of its fields on every request, a measurable part of
/// the single query's CPU time (docs/BENCHMARKS.md, scripts/bench-http).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestSpan {
    Yes,
    No,
}

/// Numbers requests so every log line of one request carries the same id (also sent back as
/// `X-Request-Id`). A process-wide counter: unique per replica, cheap, and never a client value.
static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// The age of the replica's view of the log, on every answer of the API routes.
pub const VIEW_AGE_HEADER: &str = "x-realstat-view-age";

/// What every signed route shares around its checks and its answer: the request id (on its log
/// lines, through a span where the route has one, and the `X-Request-Id` header), the request
/// metrics, and the log line of a
/// refusal. The code of an answer is its [`ApiError`]'s (which actix keeps with the response it
/// made of it), or success.
fn observe<S>(
    req: ServiceRequest,
    srv: &S,
    span: RequestSpan,
) -> impl Future<Output = Result<ServiceResponse, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let id = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let span = match span {
        RequestSpan::Yes => tracing::info_span!("request", request_id = id),
        RequestSpan::No => tracing::Span::none(),
    };
    let started = Instant::now();
    // Calling the service only builds the handler's future; the checks run when it is polled,
    // inside the span.
    let answer = srv.call(req);
    async move {
        let mut res = answer.instrument(span).await?;
        let status = res.status();
        let refusal = res.response().error().map(|e| {
            e.as_error::<ApiError>()
                .copied()
                .unwrap_or(ApiError::Internal)
        });
        let code = refusal.map_or(ResultCode::Success, |e| e.code());
        if let Some(e) = refusal {
            let (status, code) = (status.as_u16(), code.as_str());
            if e.status().is_server_error() {
                tracing::warn!(request_id = id, status, code, reason = %e, "request failed");
            } else {
                tracing::debug!(request_id = id, status, code, reason = %e, "request refused");
            }
        }
        let mut view_age = None;
        if let Some(state) = res.request().app_data::<web::Data<ApiState>>() {
            let seconds = started.elapsed().as_secs_f64();
            state
                .metrics
                .request_answered(status.as_u16(), code, seconds);
            view_age = Some(state.readiness.view_age_ms(crate::clock::now_ms()) / 1000);
        }
        // How old the numbers may be, in whole seconds, beside the vendor body (which stays as
        // the contract has it): 0-2 while the broker answers, growing through an outage.
        if let Some(age) = view_age {
            res.headers_mut().insert(
                HeaderName::from_static(VIEW_AGE_HEADER),
                HeaderValue::from(age),
            );
        }
        res.headers_mut().insert(
            HeaderName::from_static("x-request-id"),
            HeaderValue::from(id),
        );
        Ok(res)
    }
}

/// The one-task endpoint: the checks every route shares, then one read of the store.
async fn realstatistic(req: Admitted<TaskKey>) -> HttpResponse {
    let store = &req.state().store;
    let stats = store.stats(&req.params, today(store, req.params.cc_id, req.params.vdn));
    Realstatistic::from(stats).into_response()
}

/// The single query reads the vendor's body: `ccId`, `vdn`, `taskId`.
impl Params for TaskKey {
    const VERB: Verb = Verb::Post;

    fn parse(
        _: &actix_web::HttpRequest,
        body: &[u8],
        default_cc_id: u16,
    ) -> Result<Self, request::InvalidRequest> {
        request::parse_body(body, default_cc_id)
    }

    fn scope(&self) -> Scope {
        Scope {
            cc_id: self.cc_id,
            vdn: self.vdn,
        }
    }
}

/// The local day of the wall clock in a tenant's zone: what "today" means for a request.
pub(crate) fn today(store: &Store, cc_id: u16, vdn: u16) -> crate::fold::Day {
    store.today_in(cc_id, vdn, crate::clock::now_ms())
}
