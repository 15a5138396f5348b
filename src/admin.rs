//! The admin listener: `/metrics`, `/health/live`, `/health/ready`, and the OpenAPI document of
//! the whole service at `/openapi.yaml`. Kept off the API listener so the balancer (NSLB)
//! exposes only the realstatistic endpoint.

use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpResponse};

use crate::fold::Store;
use crate::metrics::{Metrics, ScrapeFacts};
use crate::progress::Readiness;

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

const LIVE: &str = "/health/live";
const READY: &str = "/health/ready";
const METRICS: &str = "/metrics";
const OPENAPI: &str = "/openapi.yaml";

/// Every path the admin listener serves (all GET). The router is built from this list, so what
/// `realstat metrics list` and the deploy checks are told cannot drift from what is served.
pub const ROUTES: &[&str] = &[LIVE, READY, METRICS, OPENAPI];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for &path in ROUTES {
        if let Some(route) = route(path) {
            cfg.route(path, route);
        }
    }
}

/// The handler of one of the [`ROUTES`]; a test holds every route to having one.
fn route(path: &str) -> Option<actix_web::Route> {
    let get = web::get();
    Some(match path {
        LIVE => get.to(live),
        READY => get.to(ready),
        METRICS => get.to(metrics),
        OPENAPI => get.to(openapi),
        _ => return None,
    })
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
    let now_ms = crate::clock::now_ms();
    let text = state.metrics.scrape(ScrapeFacts {
        tasks_tracked: state.store.tasks_tracked(),
        calls_tracked: state.store.calls_tracked(),
        ready: state.readiness.is_ready(),
        now_ms,
        view_age_ms: state.readiness.view_age_ms(now_ms),
    });
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(text)
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
        for admin_path in ROUTES {
            assert!(
                OPENAPI_YAML.contains(&format!("\n  {admin_path}:\n")),
                "{admin_path} is not documented"
            );
        }
    }

    #[actix_web::test]
    async fn serves_the_openapi_document() {
        use actix_web::{test, App};
        let app = test::init_service(App::new().configure(configure)).await;
        let resp =
            test::call_service(&app, test::TestRequest::get().uri(OPENAPI).to_request()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/yaml"[..])
        );
        let body = test::read_body(resp).await;
        assert_eq!(body, OPENAPI_YAML.as_bytes());
    }

    #[test]
    fn every_route_has_its_handler() {
        for path in ROUTES {
            assert!(route(path).is_some(), "{path} has no handler");
        }
        assert!(route("/other").is_none());
    }
}
