//! The admin listener: `/metrics`, `/health/live`, `/health/ready`, and the OpenAPI document of
//! the whole service at `/openapi.yaml`. Kept off the API listener so the balancer (NSLB)
//! exposes only the realstatistic endpoint.

use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpResponse};

use crate::fold::Store;
use crate::metrics::Metrics;
use crate::progress::Readiness;

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.yaml", web::get().to(openapi));
}

/// The OpenAPI 3.0 description of the API and admin listeners, built into the binary so the
/// document served is always the one of the running version.
pub const OPENAPI_YAML: &str = include_str!("../docs/openapi.yaml");

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/yaml"))
        .body(OPENAPI_YAML)
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
        let age_ms = crate::clock::now_ms().saturating_sub(last).max(0);
        m.snapshot_age.set(age_ms as f64 / 1000.0);
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(m.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_is_embedded() {
        assert!(
            OPENAPI_YAML.starts_with("openapi: 3.0.3\n"),
            "first line: {:?}",
            OPENAPI_YAML.lines().next()
        );
        assert!(OPENAPI_YAML.contains(&format!("\n  {}:\n", crate::api::PATH)));
        for admin_path in ["/health/live", "/health/ready", "/metrics", "/openapi.yaml"] {
            assert!(
                OPENAPI_YAML.contains(&format!("\n  {admin_path}:\n")),
                "{admin_path} is not documented"
            );
        }
    }

    #[actix_web::test]
    async fn serves_the_openapi_document() {
        use actix_web::{test, App};
        let app =
            test::init_service(App::new().route("/openapi.yaml", web::get().to(openapi))).await;
        let resp = test::call_service(
            &app,
            test::TestRequest::get().uri("/openapi.yaml").to_request(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/yaml"[..])
        );
        let body = test::read_body(resp).await;
        assert_eq!(body, OPENAPI_YAML.as_bytes());
    }
}
