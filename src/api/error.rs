//! Every refusal of the API listener, one variant per row of api.md's error table: its status,
//! its result code and its text. Returned by the [`Admitted`](super::Admitted) extractor and the
//! handlers, and turned into the vendor's error body by actix through [`ResponseError`].

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::request::InvalidRequest;
use super::response::JSON_UTF8;
use crate::auth::AuthError;
use crate::result_code::ResultCode;

/// The one method a route answers; any other gets a 405 naming it (text and `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// Why a request was not answered with values. The Display text is the `resultDesc` sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Method not allowed: use {}", .0.as_str())]
    MethodNotAllowed(Verb),
    /// Not in the vendor's table (its gateway answers this before CMS sees the request); the
    /// status says what happened and the code is the one for a bad request.
    #[error("Request headers too large")]
    HeadersTooLarge,
    #[error("IP address is locked")]
    Locked,
    #[error("Request body larger than 4 KiB")]
    TooLarge,
    #[error("Request body not received in time")]
    BodyTimeout,
    #[error("request body could not be read")]
    BodyUnreadable,
    /// The text names the category only (the verifier's texts say nothing of the key, and one
    /// text serves both an unknown key and a wrong signature).
    #[error(transparent)]
    Unauthorized(AuthError),
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    #[error("Insufficient permission")]
    Forbidden,
    #[error("Statistics not ready yet: the service is catching up with the event log")]
    NotReady,
    /// Too many open streams (per key or in total); the stream is not started.
    #[error("Too many open streams")]
    TooManyStreams,
    /// No known path leads here: the fallback when the service is not wired as it should be.
    #[error("Unknown error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Locked => StatusCode::FORBIDDEN,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            // Business errors travel in the body, as in CC-CMS.
            ApiError::BodyUnreadable | ApiError::Invalid(_) | ApiError::Forbidden => StatusCode::OK,
        }
    }

    pub fn code(&self) -> ResultCode {
        match self {
            ApiError::MethodNotAllowed(_) | ApiError::Locked | ApiError::Unauthorized(_) => {
                ResultCode::InvocationFailed
            }
            ApiError::HeadersTooLarge
            | ApiError::TooLarge
            | ApiError::BodyTimeout
            | ApiError::BodyUnreadable
            | ApiError::Invalid(_)
            | ApiError::TooManyStreams => ResultCode::InvalidParameter,
            ApiError::Forbidden => ResultCode::InsufficientPermission,
            ApiError::NotReady | ApiError::Internal => ResultCode::UnknownError,
        }
    }
}

/// `{"resultCode":"…","resultDesc":"<text>"}`; the text is escaped as it is written, without a
/// `String` of its own.
impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Desc<'a>(&'a ApiError);
        impl Serialize for Desc<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        let mut body = serializer.serialize_struct("ApiError", 2)?;
        body.serialize_field("resultCode", &self.code())?;
        body.serialize_field("resultDesc", &Desc(self))?;
        body.end()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        let mut resp = match serde_json::to_vec(self) {
            Ok(bytes) => HttpResponse::build(status).body(bytes),
            // Serializing these plain values cannot fail; answer as the table says if it does.
            Err(_) => HttpResponse::InternalServerError().body(format!(
                r#"{{"resultCode":"{}","resultDesc":"{}"}}"#,
                ApiError::Internal.code(),
                ApiError::Internal
            )),
        };
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        if let ApiError::MethodNotAllowed(allowed) = self {
            headers.insert(ALLOW, HeaderValue::from_static(allowed.as_str()));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    /// Every row of api.md's error table, as bytes.
    #[test]
    fn bodies_statuses_and_codes_are_the_table() {
        let cases: &[(ApiError, u16, &str)] = &[
            (
                ApiError::MethodNotAllowed(Verb::Post),
                405,
                r#"{"resultCode":"0100001","resultDesc":"Method not allowed: use POST"}"#,
            ),
            (
                ApiError::HeadersTooLarge,
                431,
                r#"{"resultCode":"0100002","resultDesc":"Request headers too large"}"#,
            ),
            (
                ApiError::Unauthorized(AuthError::UnknownKey),
                401,
                r#"{"resultCode":"0100001","resultDesc":"Authentication failed: signature mismatch or unknown access key"}"#,
            ),
            (
                ApiError::Invalid(InvalidRequest::Day),
                200,
                r#"{"resultCode":"0100002","resultDesc":"Invalid parameter: day must be \"today\", \"yesterday\" or a date yyyy-MM-dd"}"#,
            ),
            (
                ApiError::Forbidden,
                200,
                r#"{"resultCode":"0101003","resultDesc":"Insufficient permission"}"#,
            ),
            (
                ApiError::NotReady,
                503,
                r#"{"resultCode":"0100999","resultDesc":"Statistics not ready yet: the service is catching up with the event log"}"#,
            ),
        ];
        for (e, status, body) in cases {
            let resp = e.error_response();
            assert_eq!(resp.status().as_u16(), *status, "{e:?}");
            assert_eq!(
                resp.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
                Some(JSON_UTF8.as_bytes())
            );
            let allow = resp.headers().get(ALLOW).map(|v| v.as_bytes().to_vec());
            let bytes = resp.into_body().try_into_bytes().expect("a complete body");
            assert_eq!(std::str::from_utf8(&bytes), Ok(*body), "{e:?}");
            assert_eq!(allow.is_some(), *status == 405);
        }
        let get = ApiError::MethodNotAllowed(Verb::Get).error_response();
        assert_eq!(
            get.headers().get(ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET"[..])
        );
    }
}
