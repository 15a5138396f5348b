//! The admin listener: `/metrics`, `/health/live`, `/health/ready`. Kept off the API listener so
//! the balancer (NSLB) exposes only the realstatistic endpoint.

use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpResponse};

use crate::fold::Store;
use crate::ingest::Readiness;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

/// The process answers: that is all liveness means. A replica catching up is alive.
async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"live"}"#)
}

/// 200 once the replica has caught up with the log it saw at start; 503 before, so the balancer
/// never routes a query to a replica that would answer with stale zeros.
async fn ready(state: web::Data<AdminState>) -> HttpResponse {
    if state.readiness.is_ready() {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ready"}"#)
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"catching up"}"#)
    }
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    // Gauges that are facts about the store are read at scrape time rather than kept in step.
    let m = &state.metrics;
    m.tasks_tracked.set(state.store.tasks_tracked() as i64);
    m.calls_tracked.set(state.store.calls_tracked() as i64);
    m.ready.set(i64::from(state.readiness.is_ready()));
    let last = m
        .snapshot_last_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    if last > 0 {
        let age_ms = crate::fold::calendar::now_ms().saturating_sub(last).max(0);
        m.snapshot_age.set(age_ms as f64 / 1000.0);
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(m.render())
}
