//! `POST /isales/callresult/{token}`: the push, from the URL's token to the vendor's answer.
//!
//! Order of the checks, each cheaper than the next: the token (an unknown one is answered 404
//! exactly like a path that does not exist, before the body is read, and counts against the
//! address), the body's size and time, its shape, then the records one by one. Only a push whose
//! every event Kafka acknowledged is answered `retCode "0"`.
//!
//! Unlike the API's, the callback's lockout never refuses a valid token: iSales pushes every
//! tenant's results from the same few addresses, so one campaign still configured with a revoked
//! token (or a prober on that network) would otherwise stop every tenant's pushes. Guessing is
//! no threat to a token of at least 16 random URL-safe characters (about 2^96 values); the lock
//! marks an address that keeps missing (`outcome="locked"`, one warning) instead of logging
//! each miss.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_core::Stream;
use serde::Serialize;

use super::mapping::{map_record, Message, Refused};
use super::{body, CallbackState};
use crate::metrics::PushOutcome;

/// The route, with the token as its one variable segment.
pub const PATH: &str = "/isales/callresult/{token}";

/// The route as the log shows it: never the token.
const LOGGED_PATH: &str = "/isales/callresult/…";

/// The vendor's answer body (`retCode` is a string).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub ret_code: &'static str,
    pub ret_msg: &'static str,
}

/// `retCode` values: "0" is the vendor's success; the others are realstat's (docs/callback.md).
pub const RET_OK: &str = "0";
pub const RET_MALFORMED: &str = "1";
pub const RET_TOO_LARGE: &str = "2";
pub const RET_NOT_STORED: &str = "3";
pub const RET_BODY_TIMEOUT: &str = "4";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PATH).route(web::post().to(push)))
        .default_service(web::to(not_found));
}

/// What any unknown path, and any unknown token, gets: the same empty 404.
async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

fn answer(status: StatusCode, ret_code: &'static str, ret_msg: &'static str) -> HttpResponse {
    HttpResponse::build(status).json(Answer { ret_code, ret_msg })
}

async fn push(
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<CallbackState>,
) -> HttpResponse {
    let Some(grant) = state.tokens.lookup(&token) else {
        // The address alone is the subject: the token a prober sends is its own to vary.
        let ip = client_address(&req, &state.trusted_proxies);
        let outcome = match ip {
            Some(ip) if state.lockout.is_locked(ip, || None) => PushOutcome::Locked,
            Some(ip) => {
                if state.lockout.record_failure(ip, None) {
                    tracing::warn!(client = %ip, path = LOGGED_PATH, "callback: address locked after unknown tokens");
                }
                PushOutcome::UnknownToken
            }
            None => PushOutcome::UnknownToken,
        };
        state.metrics.callback_push(outcome);
        return not_found().await;
    };
    let bytes = match read_body(payload, state.max_body_bytes, state.body_timeout).await {
        Ok(b) => b,
        Err(outcome) => return refuse(&state, outcome),
    };
    let records = match body::parse(&bytes, state.max_records) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(token = grant.index, error = %e, path = LOGGED_PATH, "callback push refused");
            return refuse(&state, e.outcome());
        }
    };
    let (events, refused) = split(&records, &grant, &state);
    store(&state, grant.index, &events, &refused).await
}

/// A push refused whole, counted, with the answer its outcome has.
fn refuse(state: &CallbackState, outcome: PushOutcome) -> HttpResponse {
    state.metrics.callback_push(outcome);
    match outcome {
        PushOutcome::TooLarge => answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            RET_TOO_LARGE,
            "body or record count over the bound",
        ),
        PushOutcome::BodyTimeout => answer(
            StatusCode::REQUEST_TIMEOUT,
            RET_BODY_TIMEOUT,
            "the body did not arrive in time",
        ),
        _ => answer(
            StatusCode::BAD_REQUEST,
            RET_MALFORMED,
            "the body is not a JSON array",
        ),
    }
}

/// Maps every record; counts the refused ones by reason.
fn split(
    records: &[&serde_json::value::RawValue],
    grant: &super::tokens::TokenGrant,
    state: &CallbackState,
) -> (Vec<Message>, Vec<Refused>) {
    let mut events = Vec::with_capacity(records.len());
    let mut refused = Vec::new();
    for r in records {
        match map_record(r, grant, &state.zones) {
            Ok(e) => events.push(e),
            Err(r) => {
                state.metrics.callback_record_invalid(r.reason);
                refused.push(r);
            }
        }
    }
    (events, refused)
}

/// Writes and answers: success only once Kafka has acknowledged everything.
async fn store(
    state: &CallbackState,
    token: usize,
    events: &[Message],
    refused: &[Refused],
) -> HttpResponse {
    let started = Instant::now();
    let written = state.writer.write(events, refused).await;
    state
        .metrics
        .callback_produced(started.elapsed().as_secs_f64());
    state
        .metrics
        .callback_records(written.is_ok(), events.len());
    match written {
        Ok(()) => {
            state.metrics.callback_push(PushOutcome::Accepted);
            tracing::debug!(
                token,
                events = events.len(),
                refused = refused.len(),
                path = LOGGED_PATH,
                "callback push stored"
            );
            answer(StatusCode::OK, RET_OK, "success")
        }
        Err(e) => {
            state.metrics.callback_push(PushOutcome::NotStored);
            tracing::warn!(token, events = events.len(), error = %e, path = LOGGED_PATH, "callback push not stored; iSales will push it again");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                RET_NOT_STORED,
                "not stored, push again later",
            )
        }
    }
}

/// The body, at most `max` bytes, within `timeout`.
async fn read_body(
    mut payload: web::Payload,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, PushOutcome> {
    let read = async {
        let mut out = Vec::new();
        while let Some(chunk) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut payload).poll_next(cx)).await
        {
            let chunk = chunk.map_err(|_| PushOutcome::Malformed)?;
            if out.len() + chunk.len() > max {
                return Err(PushOutcome::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(PushOutcome::BodyTimeout))
}

/// The address the lockout counts: the peer, or what a trusted proxy says it is.
fn client_address(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let lines = req.headers().get_all("x-forwarded-for");
    crate::auth::client_ip_of(
        req.peer_addr().map(|a| a.ip()),
        lines.map(|v| v.to_str().unwrap_or("")),
        trusted,
    )
}
