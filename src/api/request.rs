//! The realstatistic request: Content-Type and body validation (api.md, "Request"), and the
//! typed parameter error every route answers 0100002 with.

use serde::Deserialize;

use crate::events::ids::{IdToken, TaskKey, CC_ID_MAX, VDN_MAX};

/// Most task ids one request (batch or stream) may name.
pub const MAX_TASKS: usize = 100;

/// Why a request's parameters are invalid; the text is the `resultDesc` sent back (`0100002`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("Content-Type must be application/json; charset=UTF-8")]
    ContentType,
    #[error("Invalid parameter: request body is not a JSON object")]
    NotJsonObject,
    #[error("Invalid parameter: ccId must be an integer 1..65535")]
    CcId,
    #[error("Invalid parameter: vdn is required")]
    VdnMissing,
    #[error("Invalid parameter: vdn must be an integer 1..5000")]
    Vdn,
    #[error("Invalid parameter: taskId is required")]
    TaskIdMissing,
    #[error("Invalid parameter: taskId must be 1..30 decimal digits")]
    TaskId,
    #[error("Invalid parameter: taskIds is required")]
    TaskIdsMissing,
    #[error("Invalid parameter: taskIds must be an array of 1..{max} task ids", max = MAX_TASKS)]
    TaskIdsNotList,
    /// A list of task ids (`taskIds` of a body, `taskId` of a query string) is empty.
    #[error("Invalid parameter: {0} must hold 1..{max} task ids, got none", max = MAX_TASKS)]
    NoTaskIds(Field),
    /// A list of task ids has more than [`MAX_TASKS`].
    #[error(
        "Invalid parameter: {0}[{max}] is one too many: at most {max} task ids",
        max = MAX_TASKS
    )]
    TooManyTaskIds(Field),
    /// The first invalid id of a list, by its position (counted from 0).
    #[error("Invalid parameter: {list}[{index}] must be 1..30 decimal digits")]
    TaskIdAt { list: Field, index: usize },
    #[error(r#"Invalid parameter: day must be "today", "yesterday" or a date yyyy-MM-dd"#)]
    Day,
    #[error(r#"Invalid parameter: timeGrain must be "15MIN", "30MIN" or "60MIN""#)]
    TimeGrain,
    /// A query-string key that may be given once was given again.
    #[error("Invalid parameter: {0} must be given once")]
    Repeated(Field),
    /// Failure statistics: `campaignId` absent.
    #[error("Invalid parameter: campaignId is required")]
    CampaignIdMissing,
    #[error("Invalid parameter: campaignId must be 1..30 decimal digits")]
    CampaignId,
    #[error("Invalid parameter: startDate and endDate must be given together")]
    DatesUnpaired,
    #[error("Invalid parameter: startDate and endDate must be dates yyyy-MM-dd")]
    Date,
    #[error("Invalid parameter: endDate must not be before startDate")]
    DateOrder,
    #[error("Invalid parameter: endDate may be at most 30 days after startDate")]
    DateRange,
}

/// A parameter named in an [`InvalidRequest`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CcId,
    Vdn,
    TaskId,
    TaskIds,
}

impl Field {
    pub const fn as_str(self) -> &'static str {
        match self {
            Field::CcId => "ccId",
            Field::Vdn => "vdn",
            Field::TaskId => "taskId",
            Field::TaskIds => "taskIds",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `application/json`, optionally with `charset=UTF-8`; case-insensitive, blanks around `;` and
/// `=` tolerated. Another charset is refused (the body would not be what we parse); other
/// parameters are ignored.
pub fn check_content_type(value: Option<&[u8]>) -> Result<(), InvalidRequest> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(InvalidRequest::ContentType)?;
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(InvalidRequest::ContentType);
    }
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, val) = param.split_once('=').ok_or(InvalidRequest::ContentType)?;
        if name.trim().eq_ignore_ascii_case("charset") {
            let val = val.trim().trim_matches('"');
            if !val.eq_ignore_ascii_case("utf-8") && !val.eq_ignore_ascii_case("utf8") {
                return Err(InvalidRequest::ContentType);
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct WireRequest {
    #[serde(rename = "ccId")]
    cc_id: Option<IdToken>,
    vdn: Option<IdToken>,
    #[serde(rename = "taskId")]
    task_id: Option<IdToken>,
}

/// Parses the body into the task asked for. `default_cc_id` stands in for an absent (or null)
/// `ccId`.
pub fn parse_body(body: &[u8], default_cc_id: u16) -> Result<TaskKey, InvalidRequest> {
    let text = object_text(body)?;
    let wire: WireRequest =
        serde_json::from_str(text).map_err(|_| InvalidRequest::NotJsonObject)?;
    let (cc_id, vdn) = cc_id_and_vdn(wire.cc_id, wire.vdn, default_cc_id)?;
    let task_id = match wire.task_id {
        None | Some(IdToken::Null) => return Err(InvalidRequest::TaskIdMissing),
        Some(t) => t.task_id().ok_or(InvalidRequest::TaskId)?,
    };
    Ok(TaskKey {
        cc_id,
        vdn,
        task_id,
    })
}

/// The body as text, when it can be one JSON object: it starts with `{` and is UTF-8.
pub(crate) fn object_text(body: &[u8]) -> Result<&str, InvalidRequest> {
    // serde would also accept a JSON array as a struct ([ccId, vdn, taskId] by position): the
    // contract says object, so check the first significant byte first.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(InvalidRequest::NotJsonObject);
    }
    // JSON is UTF-8 (RFC 8259): check all of it, including fields serde would skip unread.
    std::str::from_utf8(body).map_err(|_| InvalidRequest::NotJsonObject)
}

/// `ccId` (absent or null: `default_cc_id`) and `vdn`, checked in that order.
pub(crate) fn cc_id_and_vdn(
    cc_id: Option<IdToken>,
    vdn: Option<IdToken>,
    default_cc_id: u16,
) -> Result<(u16, u16), InvalidRequest> {
    let cc_id = match cc_id {
        None | Some(IdToken::Null) => default_cc_id,
        Some(t) => t.in_range(CC_ID_MAX).ok_or(InvalidRequest::CcId)? as u16,
    };
    let vdn = match vdn {
        None | Some(IdToken::Null) => return Err(InvalidRequest::VdnMissing),
        Some(t) => t.in_range(VDN_MAX).ok_or(InvalidRequest::Vdn)? as u16,
    };
    Ok((cc_id, vdn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json;charset=UTF-8",
            "application/json; charset=UTF-8",
            "Application/JSON ; Charset = utf-8",
            "application/json; charset=\"utf-8\"",
            "application/json;",
        ] {
            assert_eq!(check_content_type(Some(ok.as_bytes())), Ok(()), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=ISO-8859-1",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(check_content_type(Some(bad.as_bytes())).is_err(), "{bad}");
        }
        assert!(check_content_type(None).is_err());
        assert!(check_content_type(Some(b"application/json\xff")).is_err());
    }

    #[test]
    fn the_vendor_example_body() {
        let key =
            parse_body(br#"{ "ccId": "89", "vdn":92, "taskId":"1122104910" }"#, 1).expect("valid");
        assert_eq!(
            key,
            TaskKey {
                cc_id: 89,
                vdn: 92,
                task_id: 1_122_104_910
            }
        );
    }

    #[test]
    fn bodies() {
        use InvalidRequest::*;
        let p = |b: &str| parse_body(b.as_bytes(), 7);
        assert_eq!(
            p(r#"{"vdn":1,"taskId":"0012"}"#).map(|k| (k.cc_id, k.task_id)),
            Ok((7, 12))
        );
        assert_eq!(
            p(r#"{"ccId":null,"vdn":1,"taskId":12,"x":[]}"#).map(|k| k.cc_id),
            Ok(7)
        );
        let cases: &[(&str, InvalidRequest)] = &[
            ("", NotJsonObject),
            ("[1,2,3]", NotJsonObject),
            ("\"x\"", NotJsonObject),
            ("{", NotJsonObject),
            ("{\"vdn\":1,\"taskId\":1} x", NotJsonObject),
            (r#"{"taskId":1}"#, VdnMissing),
            (r#"{"vdn":null,"taskId":1}"#, VdnMissing),
            (r#"{"vdn":0,"taskId":1}"#, Vdn),
            (r#"{"vdn":5001,"taskId":1}"#, Vdn),
            (r#"{"vdn":"92 ","taskId":1}"#, Vdn),
            (r#"{"vdn":92.0,"taskId":1}"#, Vdn),
            (r#"{"vdn":-92,"taskId":1}"#, Vdn),
            (r#"{"vdn":92}"#, TaskIdMissing),
            (r#"{"vdn":92,"taskId":""}"#, TaskId),
            (r#"{"vdn":92,"taskId":"+1"}"#, TaskId),
            (
                r#"{"vdn":92,"taskId":"1234567890123456789012345678901"}"#,
                TaskId,
            ),
            (r#"{"ccId":0,"vdn":92,"taskId":1}"#, CcId),
            (r#"{"ccId":"65536","vdn":92,"taskId":1}"#, CcId),
            (r#"{"ccId":true,"vdn":92,"taskId":1}"#, CcId),
        ];
        assert_eq!(
            parse_body(b"{\"vdn\":92,\"taskId\":1,\"x\":\"\xff\"}", 7),
            Err(NotJsonObject),
            "not UTF-8, even in an ignored field"
        );
        for (body, want) in cases {
            assert_eq!(p(body), Err(*want), "{body}");
        }
    }
}
