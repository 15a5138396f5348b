//! The vendor's failure statistics, "Collecting Outbound Call Exception Statistics"
//! (api.md, "Failure statistics"):
//! `GET /rest/isales/v1/openapi/campaigns/{vdnId}/failcategorystatistics?campaignId=&startDate=&endDate=`
//! plus an optional `ccId`. Failed calls by cause, per day of the tenant's calendar, for a range
//! of at most 30 days that may reach back into the closed-day history.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::request::{cc_id_and_vdn, Field, InvalidRequest};
use super::response::JSON_UTF8;
use super::{today, Admitted, Params, Scope, Verb};
use crate::auth::c2::form_decode;
use crate::events::ids::{IdToken, TaskKey};
use crate::fold::{fail_days, Calendar, Day, Store};

pub const PATH: &str = "/rest/isales/v1/openapi/campaigns/{vdnId}/failcategorystatistics";

/// The vendor's success code of its iSales interfaces (not the CMS `0100000`).
pub const SUCCESS: &str = "0200000";
/// Most days between `startDate` and `endDate` (the vendor's "cannot exceed 30 days").
pub const MAX_SPAN_DAYS: i32 = 30;

/// What a failure statistics request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub task: TaskKey,
    /// `startDate..=endDate` as local days of the tenant, or `None`: today.
    pub dates: Option<(Day, Day)>,
}

/// Reads the path's `vdnId` and the query string. Unknown keys are ignored; a known key given
/// twice is refused, as on the stream route.
pub fn parse(
    vdn_id: Option<&str>,
    query: Option<&str>,
    default_cc_id: u16,
) -> Result<Query, InvalidRequest> {
    let token = |text: &str| {
        String::from_utf8(form_decode(text))
            .ok()
            .and_then(|t| IdToken::deserialize(&serde_json::Value::String(t)).ok())
            .unwrap_or(IdToken::Invalid)
    };
    let (mut cc_id, mut campaign) = (None, None);
    let (mut start, mut end): (Option<String>, Option<String>) = (None, None);
    for piece in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let text = || String::from_utf8(form_decode(v)).unwrap_or_default();
        match form_decode(k).as_slice() {
            b"ccId" if cc_id.is_some() => return Err(InvalidRequest::Repeated(Field::CcId)),
            b"ccId" => cc_id = Some(token(v)),
            b"campaignId" if campaign.is_some() => return Err(InvalidRequest::CampaignId),
            b"campaignId" => campaign = Some(token(v)),
            b"startDate" if start.is_some() => return Err(InvalidRequest::Date),
            b"startDate" => start = Some(text()),
            b"endDate" if end.is_some() => return Err(InvalidRequest::Date),
            b"endDate" => end = Some(text()),
            _ => {}
        }
    }
    let vdn = vdn_id.map(token);
    let (cc_id, vdn) = cc_id_and_vdn(cc_id, vdn, default_cc_id)?;
    let task_id = match campaign {
        None => return Err(InvalidRequest::CampaignIdMissing),
        Some(t) => t.task_id().ok_or(InvalidRequest::CampaignId)?,
    };
    Ok(Query {
        task: TaskKey {
            cc_id,
            vdn,
            task_id,
        },
        dates: dates(start.as_deref(), end.as_deref())?,
    })
}

/// Both dates or neither; each `yyyy-MM-dd`; the end not before the start and at most
/// [`MAX_SPAN_DAYS`] after it.
fn dates(start: Option<&str>, end: Option<&str>) -> Result<Option<(Day, Day)>, InvalidRequest> {
    let (start, end) = match (start, end) {
        (None, None) => return Ok(None),
        (Some(s), Some(e)) => (s, e),
        _ => return Err(InvalidRequest::DatesUnpaired),
    };
    let day = |t: &str| Calendar::parse_date(t).ok_or(InvalidRequest::Date);
    let (first, last) = (day(start)?, day(end)?);
    if last < first {
        return Err(InvalidRequest::DateOrder);
    }
    if last - first > MAX_SPAN_DAYS {
        return Err(InvalidRequest::DateRange);
    }
    Ok(Some((first, last)))
}

impl Params for Query {
    const VERB: Verb = Verb::Get;

    fn parse(req: &HttpRequest, _body: &[u8], default_cc_id: u16) -> Result<Self, InvalidRequest> {
        parse(
            req.match_info().get("vdnId"),
            req.uri().query(),
            default_cc_id,
        )
    }

    fn scope(&self) -> Scope {
        Scope {
            cc_id: self.task.cc_id,
            vdn: self.task.vdn,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    result_code: &'static str,
    result_desc: &'static str,
    return_code: &'static str,
    return_desc: &'static str,
    data: Vec<Row>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    stat_date: String,
    /// Cause → failed calls, ascending by cause (serde_json keeps insertion order only with a
    /// feature; a BTreeMap orders it).
    fail_data: std::collections::BTreeMap<String, u64>,
}

pub(crate) async fn handle(req: Admitted<Query>) -> HttpResponse {
    let (store, q) = (&req.state().store, &req.params);
    let today = today(store, q.task.cc_id, q.task.vdn);
    match answer(store, q, today) {
        Ok(body) => HttpResponse::Ok()
            .insert_header((actix_web::http::header::CONTENT_TYPE, JSON_UTF8))
            .body(body),
        Err(_) => actix_web::ResponseError::error_response(&super::ApiError::Internal),
    }
}

/// The answer's JSON text, `today` being the tenant's current local day.
fn answer(store: &Store, q: &Query, today: Day) -> Result<String, serde_json::Error> {
    let (first, last) = q.dates.unwrap_or((today, today));
    let data = fail_days(store, &q.task, first, last)
        .into_iter()
        .map(|d| Row {
            stat_date: Calendar::date_text(d.day),
            fail_data: d.causes.into_iter().collect(),
        })
        .collect();
    let answer = Answer {
        result_code: SUCCESS,
        result_desc: "success",
        return_code: SUCCESS,
        return_desc: "success",
        data,
    };
    serde_json::to_string(&answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(vdn: &str, q: &str) -> Result<Query, String> {
        parse(Some(vdn), Some(q), 1).map_err(|e| e.to_string())
    }

    /// The example of api.md ("Failure statistics"), computed here: three days of a task in
    /// Asia/Shanghai, one of them without failures.
    #[test]
    fn the_example_of_api_md() {
        use crate::events::{CallKey, CallState, Event, EventKind, FailCode};
        use crate::fold::testing::{store, TASK};
        let s = store();
        let at = |date: &str, hour: i64| {
            let day = i64::from(Calendar::parse_date(date).expect("date"));
            // Midnight in Shanghai is 16:00 UTC the day before.
            day * 86_400_000 - 8 * 3_600_000 + hour * 3_600_000
        };
        let calls = [
            ("a", "2026-11-20", 9, CallState::Failed, Some("00601")),
            ("b", "2026-11-20", 10, CallState::Failed, Some("00601")),
            ("c", "2026-11-20", 11, CallState::Failed, Some("00601")),
            ("d", "2026-11-20", 11, CallState::Failed, Some("00603")),
            ("e", "2026-11-20", 12, CallState::Finished, None),
            ("f", "2026-11-21", 9, CallState::Finished, None),
            ("g", "2026-11-22", 15, CallState::Failed, Some("00302")),
        ];
        for (id, date, hour, state, code) in calls {
            let kind = EventKind::Call {
                call: CallKey::of(id),
                state,
                fail_code: code.and_then(FailCode::new),
            };
            s.apply(
                &Event {
                    task: TASK,
                    ts: at(date, hour),
                    kind,
                },
                i64::MAX / 2,
            );
        }
        let query = format!(
            "campaignId={}&ccId=89&startDate=2026-11-20&endDate=2026-11-22",
            TASK.task_id
        );
        let q = parse(Some("92"), Some(&query), 1).expect("query");
        let body = answer(&s, &q, 0).expect("json");
        let want = r#"{"resultCode":"0200000","resultDesc":"success","returnCode":"0200000","returnDesc":"success","data":[{"statDate":"2026-11-20","failData":{"00601":3,"00603":1}},{"statDate":"2026-11-22","failData":{"00302":1}}]}"#;
        assert_eq!(body, want);
        let api_md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
            .expect("docs/api.md");
        assert!(api_md.contains(want), "docs/api.md shows this answer");
        assert!(api_md.contains(&query), "docs/api.md shows this query");
    }

    #[test]
    fn parameters_as_the_vendor_names_them() {
        let q = p("92", "campaignId=0042&ccId=89").expect("valid");
        assert_eq!(
            (q.task.cc_id, q.task.vdn, q.task.task_id, q.dates),
            (89, 92, 42, None)
        );
        let q = p("92", "campaignId=1&startDate=2026-11-01&endDate=2026-12-01").expect("30 days");
        let (a, b) = q.dates.expect("dates");
        assert_eq!(
            (Calendar::date_text(a), b - a),
            ("2026-11-01".to_owned(), 30)
        );
        for (vdn, query, want) in [
            ("92", "", "campaignId is required"),
            ("92", "campaignId=x", "campaignId must be"),
            ("0", "campaignId=1", "vdn must be"),
            ("92", "campaignId=1&startDate=2026-11-01", "together"),
            ("92", "campaignId=1&endDate=2026-11-01", "together"),
            (
                "92",
                "campaignId=1&startDate=2026-11-1&endDate=2026-11-02",
                "yyyy-MM-dd",
            ),
            (
                "92",
                "campaignId=1&startDate=2026-11-02&endDate=2026-11-01",
                "before",
            ),
            (
                "92",
                "campaignId=1&startDate=2026-11-01&endDate=2026-12-02",
                "30 days",
            ),
            ("92", "campaignId=1&ccId=0", "ccId must be"),
            ("92", "campaignId=1&ccId=2&ccId=2", "given once"),
        ] {
            let err = p(vdn, query).expect_err(query);
            assert!(err.contains(want), "{query}: {err}");
        }
    }
}
