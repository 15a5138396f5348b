//! Per-tenant time zones over real sockets: two tenants whose zones are always on different
//! dates (Pacific/Kiritimati, UTC+14, and the default Pacific/Pago_Pago, UTC-11) are each
//! answered for their own "today".

use realstat::api::breakdown::PATH as BREAKDOWN;
use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, CallState};
use realstat::fold::{Calendar, TenantScope};

use crate::support::*;

fn date_in(zone: &str, ts: i64) -> String {
    Calendar::date_text(Calendar::named(zone).expect("zone").day_of(ts))
}

#[actix_web::test]
async fn each_tenant_is_answered_for_its_own_today() {
    let now = now_ms() - 2_000;
    let far_east = TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 5,
    };
    let default = task(5);
    let events = [
        encode_call(&far_east, "a", CallState::Finished, now),
        encode_call(&default, "a", CallState::Failed, now),
    ];
    let app = TestApp::builder()
        .events(&events)
        .settings(|s| {
            s.timezone = Calendar::named("Pacific/Pago_Pago").expect("zone");
            let kiritimati = Calendar::named("Pacific/Kiritimati").expect("zone");
            s.timezones = vec![(TenantScope::Center(89), kiritimati)];
        })
        .spawn()
        .await;
    let (east, west) = (
        date_in("Pacific/Kiritimati", now_ms()),
        date_in("Pacific/Pago_Pago", now_ms()),
    );
    assert_ne!(east, west, "25 hours apart: never the same date");
    for (cc, want_day, field) in [(89, &east, "succCount"), (1, &west, "failCount")] {
        let body = format!(r#"{{"ccId":{cc},"vdn":92,"taskId":5}}"#);
        let r = signed_post(&app.api, AK, SK, &body).await;
        let (code, desc) = result(&r);
        assert_eq!(code, "0100000", "{}", r.text());
        assert_eq!(
            (desc["totalCount"].as_str(), desc[field].as_str()),
            (Some("1"), Some("1"))
        );
        let r = signed_post_to(&app.api, BREAKDOWN, AK, SK, &body).await;
        let (_, desc) = result(&r);
        assert_eq!(
            desc["day"].as_str(),
            Some(want_day.as_str()),
            "call center {cc}"
        );
    }
    app.stop().await;
}
