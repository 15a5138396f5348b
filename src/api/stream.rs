//! The live stream: `GET /rest/cmsapp/v1/openapi/fromisales/realstatistic/stream?ccId=1&vdn=92&
//! taskId=…` (api.md, "Live stream"), C2-signed like every route (the query string is part of
//! the signature; the body is empty).
//!
//! Answers `text/event-stream`: an event per task at once with its current values, then an event
//! whenever a task's values change, at most one per task per 250 ms, and a comment every 15 s.
//! The parameters, scope and readiness are checked before the stream starts, like every route,
//! and then the open-stream bounds (per key and in total; beyond them 429). Once open, a stream
//! ends when the client leaves, reads too slowly, its key is removed or changed, or the process
//! stops ([`feed`]). The signature's clock skew is checked at the start only: an open stream
//! outlives its signature's validity.

pub mod feed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tracing::Instrument;

use super::batch::Batch;
use super::request::{cc_id_and_vdn, Field, InvalidRequest};
use super::{Admitted, ApiError, Params, Scope, Verb};
use crate::auth::c2::form_decode;
use crate::events::ids::IdToken;
use crate::metrics::Metrics;
use feed::Feed;

pub const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistic/stream";

/// Parses the query string: `ccId` (optional, once), `vdn` (once), `taskId` (1 to 100 times),
/// each a string of decimal digits with the rules of the JSON fields; other parameters are
/// ignored. The error is the `resultDesc` of 0100002.
pub fn parse_query(raw: Option<&str>, default_cc_id: u16) -> Result<Batch, InvalidRequest> {
    let mut cc_id = None;
    let mut vdn = None;
    let mut tasks: Vec<Option<IdToken>> = Vec::new();
    for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let token = String::from_utf8(form_decode(v))
            .ok()
            .and_then(|text| IdToken::deserialize(&serde_json::Value::String(text)).ok());
        let (field, slot) = match form_decode(k).as_slice() {
            b"ccId" => (Field::CcId, &mut cc_id),
            b"vdn" => (Field::Vdn, &mut vdn),
            b"taskId" => {
                tasks.push(token);
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(InvalidRequest::Repeated(field));
        }
        *slot = Some(token.unwrap_or(IdToken::Invalid));
    }
    let (cc_id, vdn) = cc_id_and_vdn(cc_id, vdn, default_cc_id)?;
    if tasks.is_empty() {
        return Err(InvalidRequest::TaskIdMissing);
    }
    let len = tasks.len();
    let task_ids = super::batch::task_ids(tasks.into_iter(), len, Field::TaskId)?;
    Ok(Batch {
        cc_id,
        vdn,
        task_ids,
    })
}

/// What a stream asks for: the tasks of a batch, named in the query string.
pub struct Subscription(pub Batch);

impl Params for Subscription {
    const VERB: Verb = Verb::Get;

    fn parse(req: &HttpRequest, _body: &[u8], default_cc_id: u16) -> Result<Self, InvalidRequest> {
        parse_query(req.uri().query(), default_cc_id).map(Subscription)
    }

    fn scope(&self) -> Scope {
        Scope {
            cc_id: self.0.cc_id,
            vdn: self.0.vdn,
        }
    }
}

/// Open streams, per access key and in total. A [`Slot`] holds one place until dropped.
pub struct StreamLimits {
    max_open: usize,
    max_per_key: usize,
    open: Mutex<(usize, HashMap<String, usize>)>,
    metrics: Arc<Metrics>,
}

impl StreamLimits {
    pub fn new(max_open: usize, max_per_key: usize, metrics: Arc<Metrics>) -> Self {
        StreamLimits {
            max_open,
            max_per_key,
            open: Mutex::default(),
            metrics,
        }
    }

    /// A place for one more stream of `ak`, unless a bound is reached.
    pub fn try_open(self: &Arc<Self>, ak: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_key) = &mut *open;
        let mine = per_key.get(ak).copied().unwrap_or(0);
        if *total >= self.max_open || mine >= self.max_per_key {
            return None;
        }
        *total += 1;
        per_key.insert(ak.to_owned(), mine + 1);
        self.metrics.stream_opened();
        Some(Slot {
            limits: self.clone(),
            ak: ak.to_owned(),
        })
    }

    /// Streams open now, in total.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

/// One open stream's place in the [`StreamLimits`]; given back on drop.
pub struct Slot {
    limits: Arc<StreamLimits>,
    ak: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, per_key) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_key.get_mut(&self.ak) {
            *n -= 1;
            if *n == 0 {
                per_key.remove(&self.ak);
            }
        }
        self.limits.metrics.stream_closed();
    }
}

/// Opens the stream once the shared checks passed and a place is free (else 429).
pub(crate) async fn handle(req: Admitted<Subscription>) -> Result<HttpResponse, ApiError> {
    let state = req.state();
    let slot = state
        .streams
        .try_open(&req.key.ak)
        .ok_or(ApiError::TooManyStreams)?;
    let (tx, rx) = tokio::sync::mpsc::channel(feed::OUTBOX);
    let feed = Feed::new(state, req.key.clone(), &req.params.0, tx);
    let metrics = state.metrics.clone();
    // In the request's span, so the stream's lines carry its request id; watched, so a feed that
    // panics stops the replica (a stream that ends is normal: its client left, or its key).
    let feed = actix_web::rt::spawn(
        async move {
            let end = feed.run().await;
            tracing::debug!(reason = end.label(), "stream ended");
            metrics.stream_ended(end);
            drop(slot);
        }
        .instrument(tracing::Span::current()),
    );
    state.shutdown.watch_panics("live stream", feed);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(Events(rx)))
}

/// The response body: what the feed sends, as it sends it.
struct Events(tokio::sync::mpsc::Receiver<web::Bytes>);

impl futures_core::Stream for Events {
    type Item = Result<web::Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|m| m.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Result<Batch, String> {
        parse_query(Some(q), 7).map_err(|e| e.to_string())
    }

    #[test]
    fn query_strings() {
        let b = p("vdn=92&taskId=0012&taskId=1122104910&x=y&&ccId=%38%39").expect("valid");
        assert_eq!((b.cc_id, b.vdn), (89, 92));
        assert_eq!(b.task_ids, vec![12, 1_122_104_910]);
        assert_eq!(p("vdn=92&taskId=1").map(|b| b.cc_id), Ok(7));
        let many: String = (0..100).map(|i| format!("&taskId={i}")).collect();
        assert_eq!(
            p(&format!("vdn=1{many}")).map(|b| b.task_ids.len()),
            Ok(100)
        );
        for (q, want) in [
            ("taskId=1", "vdn is required"),
            ("vdn=92", "taskId is required"),
            ("vdn=92&vdn=92&taskId=1", "vdn must be given once"),
            ("ccId=1&ccId=1&vdn=92&taskId=1", "ccId must be given once"),
            ("vdn=92&%76dn=92&taskId=1", "vdn must be given once"),
            ("vdn=92&taskId=1&taskId=x", "taskId[1] must be"),
            ("vdn=92&taskId=+1", "taskId[0] must be"),
            ("vdn=92&taskId=", "taskId[0] must be"),
            ("vdn=0&taskId=1", "vdn must be"),
            ("ccId=&vdn=92&taskId=1", "ccId must be"),
            (
                &format!("vdn=1{many}&taskId=5"),
                "taskId[100] is one too many",
            ),
        ] {
            let err = p(q).expect_err(q);
            assert!(err.contains(want), "{q}: {err}");
        }
        assert_eq!(
            parse_query(None, 7)
                .map_err(|e| e.to_string())
                .err()
                .as_deref(),
            Some("Invalid parameter: vdn is required")
        );
    }

    #[test]
    fn limits_per_key_and_in_total_and_slots_give_back() {
        let limits = Arc::new(StreamLimits::new(3, 2, Arc::new(Metrics::new())));
        let a1 = limits.try_open("a").expect("first");
        let a2 = limits.try_open("a").expect("second");
        assert!(limits.try_open("a").is_none(), "per key");
        let b1 = limits.try_open("b").expect("another key");
        assert!(limits.try_open("c").is_none(), "in total");
        assert_eq!(limits.open(), 3);
        drop(a1);
        let a3 = limits.try_open("a").expect("a place was given back");
        drop((a2, a3, b1));
        assert_eq!(limits.open(), 0);
        assert_eq!(limits.metrics.streams_open(), 0);
    }
}
