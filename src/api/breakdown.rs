//! The day's shape: `POST /rest/cmsapp/v1/openapi/fromisales/realstatistic/breakdown` (api.md,
//! "Breakdown"). The usual body plus `day` (`"today"` or `"yesterday"`) and `timeGrain`
//! (`"15MIN"`, `"30MIN"` or `"60MIN"`): the task's calls of that day bucketed by the local time
//! of their first event, and its failed calls counted by failure cause.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::request::{self, InvalidRequest};
use super::response::Success;
use super::{today, Admitted, Params, Scope, Verb};
use crate::events::ids::TaskKey;
use crate::fold::{breakdown, Breakdown, Calendar, Day, TimeGrain};

pub const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistic/breakdown";

/// What a breakdown request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub task: TaskKey,
    /// The day asked for.
    pub day: DayChoice,
    pub grain: TimeGrain,
}

/// `"today"`, `"yesterday"` (of the tenant's calendar), or a date `yyyy-MM-dd`: any day still
/// in memory, the retention window or the closed-day history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayChoice {
    DaysAgo(i32),
    Date(Day),
}

#[derive(Deserialize)]
struct WireShape {
    day: Option<serde_json::Value>,
    #[serde(rename = "timeGrain")]
    time_grain: Option<serde_json::Value>,
}

/// Parses a breakdown body: the task as the single query reads it, then `day` (default
/// `"today"`) and `timeGrain` (default `"60MIN"`). The error is the `resultDesc` of 0100002.
pub fn parse_body(body: &[u8], default_cc_id: u16) -> Result<Query, InvalidRequest> {
    let task = request::parse_body(body, default_cc_id)?;
    // parse_body checked that the body is one UTF-8 JSON object.
    let text = request::object_text(body)?;
    let wire: WireShape = serde_json::from_str(text).map_err(|_| InvalidRequest::NotJsonObject)?;
    let day = match wire.day {
        None | Some(serde_json::Value::Null) => DayChoice::DaysAgo(0),
        Some(v) => match v.as_str() {
            Some("today") => DayChoice::DaysAgo(0),
            Some("yesterday") => DayChoice::DaysAgo(1),
            Some(date) => DayChoice::Date(Calendar::parse_date(date).ok_or(InvalidRequest::Day)?),
            None => return Err(InvalidRequest::Day),
        },
    };
    let grain = match wire.time_grain {
        None | Some(serde_json::Value::Null) => TimeGrain::Min60,
        Some(v) => v
            .as_str()
            .and_then(TimeGrain::parse)
            .ok_or(InvalidRequest::TimeGrain)?,
    };
    Ok(Query { task, day, grain })
}

/// The breakdown route reads the single query's body, `day` and `timeGrain`.
impl Params for Query {
    const VERB: Verb = Verb::Post;

    fn parse(_: &HttpRequest, body: &[u8], default_cc_id: u16) -> Result<Self, InvalidRequest> {
        parse_body(body, default_cc_id)
    }

    fn scope(&self) -> Scope {
        Scope {
            cc_id: self.task.cc_id,
            vdn: self.task.vdn,
        }
    }
}

#[derive(Serialize)]
struct Shape {
    #[serde(rename = "taskId")]
    task_id: String,
    /// The local date, `2024-11-24`.
    day: String,
    #[serde(rename = "timeGrain")]
    time_grain: &'static str,
    buckets: Vec<BucketRow>,
    #[serde(rename = "failCodes")]
    fail_codes: Vec<FailCodeRow>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BucketRow {
    /// Local wall-clock time, `HH:mm`.
    start: String,
    total_count: String,
    succ_count: String,
    fail_count: String,
}

#[derive(Serialize)]
struct FailCodeRow {
    #[serde(rename = "failCode")]
    fail_code: String,
    count: String,
}

fn shape(q: &Query, day: crate::fold::Day, b: Breakdown) -> Shape {
    Shape {
        task_id: q.task.task_id.to_string(),
        day: Calendar::date_text(day),
        // A closed day keeps hourly buckets only.
        time_grain: if b.closed {
            TimeGrain::Min60.as_str()
        } else {
            q.grain.as_str()
        },
        buckets: b
            .buckets
            .into_iter()
            .map(|x| BucketRow {
                start: format!("{:02}:{:02}", x.start / 60, x.start % 60),
                total_count: x.total.to_string(),
                succ_count: x.succ.to_string(),
                fail_count: x.fail.to_string(),
            })
            .collect(),
        fail_codes: b
            .fail_codes
            .into_iter()
            .map(|(fail_code, n)| FailCodeRow {
                fail_code,
                count: n.to_string(),
            })
            .collect(),
    }
}

pub(crate) async fn handle(req: Admitted<Query>) -> HttpResponse {
    let (store, q) = (&req.state().store, &req.params);
    let day = match q.day {
        DayChoice::DaysAgo(n) => today(store, q.task.cc_id, q.task.vdn) - n,
        DayChoice::Date(day) => day,
    };
    let b = breakdown::breakdown(store, &q.task, day, q.grain);
    Success::new(shape(q, day, b)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(body: &str) -> Result<Query, String> {
        parse_body(body.as_bytes(), 1).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_values() {
        let q = p(r#"{"vdn":92,"taskId":"0042"}"#).expect("valid");
        assert_eq!(
            (q.task.task_id, q.day, q.grain),
            (42, DayChoice::DaysAgo(0), TimeGrain::Min60)
        );
        let q = p(r#"{"vdn":92,"taskId":1,"day":"yesterday","timeGrain":"15MIN"}"#).expect("ok");
        assert_eq!((q.day, q.grain), (DayChoice::DaysAgo(1), TimeGrain::Min15));
        let q = p(r#"{"vdn":92,"taskId":1,"day":"2026-11-20"}"#).expect("a date");
        assert_eq!(
            q.day,
            DayChoice::Date(Calendar::parse_date("2026-11-20").expect("date"))
        );
        let q = p(r#"{"vdn":92,"taskId":1,"day":null,"timeGrain":"30MIN"}"#).expect("ok");
        assert_eq!((q.day, q.grain), (DayChoice::DaysAgo(0), TimeGrain::Min30));
    }

    #[test]
    fn errors_in_field_order() {
        for (body, want) in [
            (r#"{"taskId":1,"day":"x"}"#, "vdn is required"),
            (r#"{"vdn":92,"day":"x"}"#, "taskId is required"),
            (r#"{"vdn":92,"taskId":1,"day":"Today"}"#, "day must be"),
            (
                r#"{"vdn":92,"taskId":1,"day":0,"timeGrain":"x"}"#,
                "day must be",
            ),
            (
                r#"{"vdn":92,"taskId":1,"timeGrain":"15min"}"#,
                "timeGrain must be",
            ),
            (
                r#"{"vdn":92,"taskId":1,"timeGrain":15}"#,
                "timeGrain must be",
            ),
            (
                r#"{"vdn":92,"taskId":1,"day":"today","day":"today"}"#,
                "not a JSON object",
            ),
        ] {
            let err = p(body).expect_err(body);
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
