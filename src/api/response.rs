//! Response bodies and the vendor's result codes.

use std::borrow::Cow;

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use super::request::InvalidRequest;
use crate::auth::AuthError;
use crate::fold::TaskStats;

pub const SUCCESS: &str = "0100000";
pub const INVOCATION_FAILED: &str = "0100001";
pub const INVALID_PARAMETER: &str = "0100002";
pub const UNKNOWN_ERROR: &str = "0100999";
pub const INSUFFICIENT_PERMISSION: &str = "0101003";

const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// The success body. All eight values are JSON strings, as in the vendor's example.
#[derive(Debug, Serialize)]
pub struct Realstatistic {
    #[serde(rename = "resultCode")]
    result_code: &'static str,
    #[serde(rename = "resultDesc")]
    result_desc: Values,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Values {
    total_count: String,
    succ_count: String,
    fail_count: String,
    succ_rate: String,
    comp_count: String,
    comp_rate: String,
    wait_count: String,
    exec_count: String,
}

impl From<TaskStats> for Values {
    fn from(s: TaskStats) -> Self {
        Values {
            total_count: s.total.to_string(),
            succ_count: s.succ.to_string(),
            fail_count: s.fail.to_string(),
            succ_rate: s.succ_rate().to_string(),
            comp_count: s.comp.to_string(),
            comp_rate: s.comp_rate().to_string(),
            wait_count: s.wait.to_string(),
            exec_count: s.exec.to_string(),
        }
    }
}

impl From<TaskStats> for Realstatistic {
    fn from(s: TaskStats) -> Self {
        Realstatistic {
            result_code: SUCCESS,
            result_desc: Values::from(s),
        }
    }
}

/// One task's values with its canonical id: a row of the batch answer and the `data:` of a
/// stream event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    #[serde(rename = "taskId")]
    task_id: String,
    #[serde(flatten)]
    values: Values,
}

impl Row {
    pub fn new(task_id: u128, stats: TaskStats) -> Self {
        Row {
            task_id: task_id.to_string(),
            values: Values::from(stats),
        }
    }

    /// The row as compact JSON.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings cannot fail; an empty object is the safe fallback.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A success answer whose `resultDesc` is any serializable value (batch rows, a breakdown).
#[derive(Debug, Serialize)]
pub struct Success<T: Serialize> {
    #[serde(rename = "resultCode")]
    result_code: &'static str,
    #[serde(rename = "resultDesc")]
    result_desc: T,
}

impl<T: Serialize> Success<T> {
    pub fn new(result_desc: T) -> Self {
        Success {
            result_code: SUCCESS,
            result_desc,
        }
    }

    pub fn into_response(self) -> HttpResponse {
        json_response(StatusCode::OK, &self)
    }
}

impl Realstatistic {
    pub fn into_response(self) -> HttpResponse {
        json_response(StatusCode::OK, &self)
    }
}

/// An error answer: `{"resultCode": "...", "resultDesc": "<reason>"}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub desc: Cow<'static, str>,
    /// The `Allow` header of a 405.
    allow: &'static str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "resultCode")]
    result_code: &'a str,
    #[serde(rename = "resultDesc")]
    result_desc: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, desc: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            code,
            desc: desc.into(),
            allow: "POST",
        }
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            INVOCATION_FAILED,
            "Method not allowed: use POST",
        )
    }

    /// A 405 on the stream route, the one route read with GET.
    pub fn method_not_allowed_use_get() -> Self {
        ApiError {
            allow: "GET",
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                INVOCATION_FAILED,
                "Method not allowed: use GET",
            )
        }
    }

    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_PARAMETER,
            "Request body larger than 4 KiB",
        )
    }

    /// Not in the vendor's table (its gateway answers this before CMS sees the request); the
    /// status says what happened and the code is the one for a bad request.
    pub fn headers_too_large() -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            INVALID_PARAMETER,
            "Request headers too large",
        )
    }

    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            INVALID_PARAMETER,
            "Request body not received in time",
        )
    }

    pub fn invalid(reason: InvalidRequest) -> Self {
        Self::new(StatusCode::OK, INVALID_PARAMETER, reason.to_string())
    }

    pub fn invalid_body(desc: &'static str) -> Self {
        Self::new(StatusCode::OK, INVALID_PARAMETER, desc)
    }

    /// An invalid parameter whose reason names where it is (`taskIds[3]`).
    pub fn invalid_text(desc: String) -> Self {
        Self::new(StatusCode::OK, INVALID_PARAMETER, desc)
    }

    /// Too many open streams (per key or in total); the stream is not started.
    pub fn too_many_streams() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            INVALID_PARAMETER,
            "Too many open streams",
        )
    }

    /// The reason names the category only (the verifier's texts say nothing of the key, and
    /// one text serves both an unknown key and a wrong signature).
    pub fn unauthorized(e: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, INVOCATION_FAILED, e.to_string())
    }

    pub fn locked() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            INVOCATION_FAILED,
            "IP address is locked",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::OK,
            INSUFFICIENT_PERMISSION,
            "Insufficient permission",
        )
    }

    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            UNKNOWN_ERROR,
            "Statistics not ready yet: the service is catching up with the event log",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            UNKNOWN_ERROR,
            "Unknown error",
        )
    }

    pub fn into_response(self) -> HttpResponse {
        let mut resp = json_response(
            self.status,
            &ErrorBody {
                result_code: self.code,
                result_desc: &self.desc,
            },
        );
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(self.allow));
        }
        resp
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
