//! The vendor's failure statistics over real sockets: a 20-day log of a tenant in its own zone
//! answered per local day, the parameter errors, and the signature over a query string checked
//! against a vector computed without realstat's signer (tests/vectors/c2-failstats.json).

use realstat::auth::client;
use realstat::events::{encode_call, encode_call_with_code, CallState};
use realstat::fold::{Calendar, TenantScope};
use serde_json::{json, Value};

use crate::support::*;

const DAY: i64 = 86_400_000;

fn path(vdn: &str) -> String {
    format!("/rest/isales/v1/openapi/campaigns/{vdn}/failcategorystatistics")
}

/// A signed GET of the route with `query`.
async fn get_stats(app: &TestApp, vdn: &str, query: &str) -> Response {
    let p = path(vdn);
    send_signed(
        &app.api,
        AK,
        SK,
        &client::Request::get(&app.api, &p, Some(query)),
    )
    .await
}

fn berlin_date(ts: i64) -> String {
    let cal = Calendar::named("Europe/Berlin").expect("zone");
    Calendar::date_text(cal.day_of(ts))
}

#[actix_web::test]
async fn twenty_days_of_a_tenant_in_its_own_zone_answer_by_local_day() {
    let now = now_ms() - 2_000;
    let task = realstat::events::ids::TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 77,
    };
    let mut events = Vec::new();
    // Per day back from today: one call failed with 00601; every other day one with 00603 and
    // one without a cause; and one answered call, which is not a failure.
    let mut want: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        Default::default();
    for k in (0..20).rev() {
        let ts = now - k * DAY;
        let mut fail = |id: String, code: Option<&str>| {
            events.push(encode_call_with_code(
                &task,
                &id,
                CallState::Failed,
                ts,
                code,
            ));
            let day = want.entry(berlin_date(ts)).or_default();
            let n = day
                .get(code.unwrap_or(""))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            day.insert(code.unwrap_or("").to_owned(), json!(n + 1));
        };
        fail(format!("a{k}"), Some("00601"));
        if k % 2 == 0 {
            fail(format!("b{k}"), Some("00603"));
            fail(format!("c{k}"), None);
        }
        events.push(encode_call(
            &task,
            &format!("d{k}"),
            CallState::Finished,
            ts,
        ));
    }
    let app = TestApp::builder()
        .events(&events)
        .settings(|s| {
            let berlin = Calendar::named("Europe/Berlin").expect("zone");
            s.timezones = vec![(TenantScope::Center(89), berlin)];
        })
        .spawn()
        .await;
    let (first, last) = (berlin_date(now - 19 * DAY), berlin_date(now));
    let query = format!("campaignId=77&ccId=89&startDate={first}&endDate={last}");
    let r = get_stats(&app, "92", &query).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = serde_json::from_str(&r.text()).expect("json");
    let data: Vec<Value> = want
        .into_iter()
        .map(|(d, causes)| json!({"statDate": d, "failData": causes}))
        .collect();
    assert_eq!(
        body,
        json!({"resultCode":"0200000","resultDesc":"success","returnCode":"0200000",
               "returnDesc":"success","data":data})
    );
    // The breakdown answers any day in memory by its date (closed or not yet swept).
    let body = format!(r#"{{"ccId":89,"vdn":92,"taskId":77,"day":"{first}","timeGrain":"60MIN"}}"#);
    let r = signed_post_to(&app.api, realstat::api::breakdown::PATH, AK, SK, &body).await;
    let (code, desc) = result(&r);
    assert_eq!(code, "0100000", "{}", r.text());
    assert_eq!(
        (desc["day"].as_str(), desc["timeGrain"].as_str()),
        (Some(first.as_str()), Some("60MIN"))
    );
    let failed: u64 = desc["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            b["failCount"]
                .as_str()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        (desc["buckets"].as_array().map(Vec::len), failed),
        (Some(24), 1)
    );
    // Neither date: today only, in the tenant's zone.
    let r = get_stats(&app, "92", "campaignId=77&ccId=89").await;
    let body: Value = serde_json::from_str(&r.text()).expect("json");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["data"][0]["statDate"], berlin_date(now).as_str());
    app.stop().await;
}

#[actix_web::test]
async fn bad_parameters_are_refused_and_the_route_is_signed() {
    let app = spawn_app().await;
    // Through the whole pipeline (the full list is the unit test's, src/api/failstats.rs).
    for (vdn, query, want) in [
        ("x", "campaignId=1", "vdn must be"),
        ("92", "campaignId=1&endDate=2026-11-01", "together"),
        (
            "92",
            "campaignId=1&startDate=2026-02-30&endDate=2026-03-01",
            "yyyy-MM-dd",
        ),
    ] {
        let r = get_stats(&app, vdn, query).await;
        let reason = assert_code(&r, 200, "0100002");
        assert!(reason.contains(want), "{query}: {reason}");
    }
    // Unsigned, and signed over another query string than the one sent: 401.
    let p = path("92");
    let r = request_to(&app.api, "GET", &format!("{p}?campaignId=1"), &[], b"").await;
    assert_code(&r, 401, "0100001");
    let auth = sign(
        AK,
        SK,
        &client::Request::get(&app.api, &p, Some("campaignId=1")),
    );
    let headers = [("Host", app.api.as_str()), ("Authorization", auth.as_str())];
    let r = request_to(&app.api, "GET", &format!("{p}?campaignId=2"), &headers, b"").await;
    assert_code(&r, 401, "0100001");
    let r = request_to(&app.api, "POST", &format!("{p}?campaignId=1"), &[], b"").await;
    assert_code(&r, 405, "0100001");
    app.stop().await;
}

/// The service's signer agrees with a vector computed by Python's hmac/hashlib alone.
#[test]
fn the_signature_over_a_query_string_matches_the_independent_vector() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/c2-failstats.json"
    ))
    .expect("vector file");
    let doc: Value = serde_json::from_str(&text).expect("json");
    for v in doc["vectors"].as_array().expect("vectors") {
        let s = |k: &str| v[k].as_str().expect(k).to_owned();
        let host = v["signedHeaders"]["host"].as_str().expect("host");
        let (uri, query) = (s("uri"), s("rawQuery"));
        let request = client::Request::get(host, &uri, Some(&query));
        let auth = client::authorization(&s("ak"), s("sk").as_bytes(), &s("timestamp"), &request);
        assert_eq!(auth, s("authorization"), "{}", s("name"));
    }
}
