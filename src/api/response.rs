//! The success bodies (error bodies: [`super::error`]).

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::fold::{Percent, TaskStats};
use crate::result_code::ResultCode;

/// The `Content-Type` of every answer of the signed routes but the stream.
pub(crate) const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// The success body of the single query. All eight values are JSON strings, as in the vendor's
/// example.
///
/// Written straight into the body rather than through serde: the shape is fixed, every value is
/// digits, a dot or `%` (nothing to escape), and at tens of thousands of answers a second the
/// nine small strings and the map serializer per row showed in the profile.
#[derive(Debug, Clone, Copy)]
pub struct Realstatistic(Values);

impl From<TaskStats> for Realstatistic {
    fn from(s: TaskStats) -> Self {
        Realstatistic(Values::from(s))
    }
}

impl Realstatistic {
    pub fn into_response(self) -> HttpResponse {
        ok_json(self.body())
    }

    /// The JSON text of the answer.
    pub fn body(&self) -> String {
        let mut body = success_opening(256, '{');
        self.0.write_members(&mut body);
        body.push_str("}}");
        body
    }
}

/// The eight values of a task as they are shown: equal `Values` render as equal text, so the
/// stream compares these to decide whether a row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Values {
    total: u64,
    succ: u64,
    fail: u64,
    succ_rate: Percent,
    comp: u64,
    comp_rate: Percent,
    wait: u64,
    exec: u64,
}

impl From<TaskStats> for Values {
    fn from(s: TaskStats) -> Self {
        Values {
            total: s.total,
            succ: s.succ,
            fail: s.fail,
            succ_rate: s.succ_rate(),
            comp: s.comp,
            comp_rate: s.comp_rate(),
            wait: s.wait,
            exec: s.exec,
        }
    }
}

impl Values {
    /// Appends the eight members in the vendor's order, without braces.
    fn write_members(&self, out: &mut String) {
        let mut buf = itoa::Buffer::new();
        let mut count = |out: &mut String, name: &str, v: u64| {
            out.push_str(name);
            out.push_str(buf.format(v));
        };
        count(out, r#""totalCount":""#, self.total);
        count(out, r#"","succCount":""#, self.succ);
        count(out, r#"","failCount":""#, self.fail);
        out.push_str(r#"","succRate":""#);
        self.succ_rate.push_to(out);
        count(out, r#"","compCount":""#, self.comp);
        out.push_str(r#"","compRate":""#);
        self.comp_rate.push_to(out);
        count(out, r#"","waitCount":""#, self.wait);
        count(out, r#"","execCount":""#, self.exec);
        out.push('"');
    }
}

/// One task's values with its canonical id: a row of the batch answer and the `data:` of a
/// stream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    task_id: u128,
    values: Values,
}

impl Row {
    pub fn new(task_id: u128, stats: TaskStats) -> Self {
        Row {
            task_id,
            values: Values::from(stats),
        }
    }

    /// The row as compact JSON.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(200);
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        let mut buf = itoa::Buffer::new();
        out.push_str(r#"{"taskId":""#);
        // Task ids are u128 (up to 30 digits); most fit u64, whose formatting is much cheaper.
        out.push_str(match u64::try_from(self.task_id) {
            Ok(id) => buf.format(id),
            Err(_) => buf.format(self.task_id),
        });
        out.push_str(r#"","#);
        self.values.write_members(out);
        out.push('}');
    }
}

/// The batch answer: `{"resultCode":"0100000","resultDesc":[row, ...]}`.
pub fn rows_response(rows: impl ExactSizeIterator<Item = Row>) -> HttpResponse {
    let mut body = success_opening(48 + 200 * rows.len(), '[');
    for (i, row) in rows.enumerate() {
        if i > 0 {
            body.push(',');
        }
        row.write_json(&mut body);
    }
    body.push_str("]}");
    ok_json(body)
}

/// `{"resultCode":"0100000","resultDesc":` and `desc_opens` (`{` or `[`), in a buffer of
/// `capacity` bytes for the rest.
fn success_opening(capacity: usize, desc_opens: char) -> String {
    let mut body = String::with_capacity(capacity);
    body.push_str(r#"{"resultCode":""#);
    body.push_str(ResultCode::Success.as_str());
    body.push_str(r#"","resultDesc":"#);
    body.push(desc_opens);
    body
}

fn ok_json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, JSON_UTF8))
        .body(body)
}

/// A success answer whose `resultDesc` is any serializable value (batch rows, a breakdown).
#[derive(Debug, Serialize)]
pub struct Success<T: Serialize> {
    #[serde(rename = "resultCode")]
    result_code: ResultCode,
    #[serde(rename = "resultDesc")]
    result_desc: T,
}

impl<T: Serialize> Success<T> {
    pub fn new(result_desc: T) -> Self {
        Success {
            result_code: ResultCode::Success,
            result_desc,
        }
    }

    pub fn into_response(self) -> HttpResponse {
        json_response(StatusCode::OK, &self)
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, JSON_UTF8))
            .body(bytes),
        // Serializing these plain structs cannot fail; answer as the table says if it ever does.
        Err(_) => HttpResponse::InternalServerError()
            .insert_header((CONTENT_TYPE, JSON_UTF8))
            .body(r#"{"resultCode":"0100999","resultDesc":"Unknown error"}"#),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;
    use crate::fold::testing::VENDOR_EXAMPLE;

    fn body_text(resp: HttpResponse) -> String {
        let bytes = resp.into_body().try_into_bytes().expect("a complete body");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    /// The bodies are written by hand: hold them to the documented bytes (docs/api.md), and to
    /// what serde_json makes of them.
    #[test]
    fn bodies_are_the_documented_bytes() {
        let single = body_text(Realstatistic::from(VENDOR_EXAMPLE).into_response());
        assert_eq!(
            single,
            r#"{"resultCode":"0100000","resultDesc":{"totalCount":"4","succCount":"2","failCount":"2","succRate":"50%","compCount":"4","compRate":"50%","waitCount":"0","execCount":"0"}}"#
        );
        let waiting = TaskStats {
            total: 1,
            wait: 1,
            ..TaskStats::default()
        };
        let rows = [
            Row::new(1_122_104_910, VENDOR_EXAMPLE),
            Row::new(77, TaskStats::default()),
            Row::new(42, waiting),
        ];
        let batch = body_text(rows_response(rows.into_iter()));
        assert_eq!(
            batch,
            r#"{"resultCode":"0100000","resultDesc":[{"taskId":"1122104910","totalCount":"4","succCount":"2","failCount":"2","succRate":"50%","compCount":"4","compRate":"50%","waitCount":"0","execCount":"0"},{"taskId":"77","totalCount":"0","succCount":"0","failCount":"0","succRate":"0%","compCount":"0","compRate":"0%","waitCount":"0","execCount":"0"},{"taskId":"42","totalCount":"1","succCount":"0","failCount":"0","succRate":"0%","compCount":"0","compRate":"0%","waitCount":"1","execCount":"0"}]}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&batch).expect("valid JSON");
        assert_eq!(parsed["resultDesc"][0]["succRate"], "50%");
        assert_eq!(
            rows[0].to_json(),
            r#"{"taskId":"1122104910","totalCount":"4","succCount":"2","failCount":"2","succRate":"50%","compCount":"4","compRate":"50%","waitCount":"0","execCount":"0"}"#
        );
        let max = Row::new(
            u128::MAX,
            TaskStats {
                total: u64::MAX,
                succ: u64::MAX,
                ..TaskStats::default()
            },
        );
        let v: serde_json::Value = serde_json::from_str(&max.to_json()).expect("valid JSON");
        assert_eq!(v["taskId"], u128::MAX.to_string());
        assert_eq!(v["succRate"], "100%");
    }
}
