//! The wallboard page and its assets on the API listener: served from the binary, GET only,
//! with a Content-Security-Policy that keeps it to this origin. (The page itself is tested in a
//! real browser by scripts/browser-test.)

use crate::support::*;

#[actix_web::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let app = spawn_app().await;

    let page = get(&app.api, "/wallboard").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"));
    let html = page.text();
    assert!(html.contains(r#"src="/wallboard/wallboard.js""#));
    assert!(html.contains(r#"href="/wallboard/wallboard.css""#));

    let js = get(&app.api, "/wallboard/wallboard.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // The page reads the routes this listener serves.
    for path in [realstat::api::stream::PATH, realstat::api::breakdown::PATH] {
        let tail = path.rsplit('/').next().unwrap_or_default();
        assert!(js.text().contains(tail), "{tail}");
    }
    let css = get(&app.api, "/wallboard/wallboard.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    let post = request_to(&app.api, "POST", "/wallboard", &[], "").await;
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
    let missing = get(&app.api, "/wallboard/other.js").await;
    assert_eq!(missing.status, 404);
    app.stop().await;
}
