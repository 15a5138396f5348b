//! The age of the view (issue 17.3): `realstat_view_age_seconds` and the `X-Realstat-View-Age`
//! header grow through a broker outage and fall back once the replica has read up to the end
//! again; the vendor body is unchanged. Also prints how long an event produced right after the
//! broker's return takes to be visible (recorded in docs/BENCHMARKS.md; not asserted).

use std::time::{Duration, Instant};

use realstat::events::{encode_call, CallState};

use crate::support::*;

const QUERY: &str = r#"{"vdn":92,"taskId":9}"#;

fn call(id: &str) -> String {
    encode_call(&task(9), id, CallState::Finished, now_ms() - 1_000)
}

async fn view_age(app: &TestApp) -> (i64, String) {
    let r = app.query(QUERY).await;
    let age = r
        .header("x-realstat-view-age")
        .expect("every API answer carries the view's age")
        .parse()
        .expect("whole seconds");
    let (code, desc) = result(&r);
    assert_eq!(code, "0100000", "the vendor body is as before");
    (
        age,
        desc["totalCount"].as_str().unwrap_or_default().to_owned(),
    )
}

#[actix_web::test]
async fn the_view_age_grows_through_an_outage_and_falls_back_after() {
    let app = TestApp::builder().events(&[call("a")]).spawn().await;
    app.wait_metric("realstat_view_age_seconds", |age| age < 3.0)
        .await;
    let (age, total) = view_age(&app).await;
    assert!(
        age < 10,
        "a replica that keeps up answers from a fresh view: {age}"
    );
    assert_eq!(total, "1");
    let refused = signed_post(&app.api, AK, "not-the-secret", QUERY).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.header("x-realstat-view-age").is_some(),
        "refusals say how old the view is too"
    );

    app.kafka.kafka.brokers_down().expect("down");
    app.wait_metric("realstat_view_age_seconds", |age| age >= 4.0)
        .await;
    let (age, total) = view_age(&app).await;
    assert!(age >= 4, "the outage shows in the header: {age}");
    assert_eq!(total, "1", "still answering from memory");
    assert_eq!(get(&app.admin, "/health/ready").await.status, 200);

    app.kafka.kafka.brokers_up().expect("up");
    app.kafka.produce_values(&[call("b")]);
    let acknowledged = Instant::now();
    let deadline = acknowledged + Duration::from_secs(30);
    while view_age(&app).await.1 != "2" {
        assert!(Instant::now() < deadline, "did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "event acknowledged after the broker's return visible after {} ms",
        acknowledged.elapsed().as_millis()
    );
    app.wait_metric("realstat_view_age_seconds", |age| age < 3.0)
        .await;
    app.stop().await;
}
