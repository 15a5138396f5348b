//! The supervisor wallboard: `GET /wallboard` on the API listener, a static page (HTML, CSS,
//! JavaScript) built into the binary. No build step and no library: the page asks for an AK/SK
//! (kept in the tab's sessionStorage), signs its requests in the browser with WebCrypto, reads
//! the live stream with `fetch`, and draws the hourly chart from the breakdown route.
//!
//! The page itself is public (it holds no data); everything it shows comes from the signed
//! routes, with their checks. A strict Content-Security-Policy allows only this origin.

use actix_web::http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{web, HttpResponse};

pub const PATH: &str = "/wallboard";

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("wallboard.js");
const STYLE: &str = include_str!("wallboard.css");

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Mounts the page and its two assets: GET only, other methods 405 with `Allow: GET`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        (PATH, index as fn() -> HttpResponse),
        ("/wallboard/wallboard.js", script),
        ("/wallboard/wallboard.css", style),
    ] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(move || std::future::ready(handler())))
                .default_service(web::to(|| async {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((ALLOW, "GET"))
                        .finish()
                })),
        );
    }
}

fn index() -> HttpResponse {
    asset(INDEX, "text/html; charset=utf-8")
}

fn script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

fn style() -> HttpResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::Ok().body(body);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    resp
}
