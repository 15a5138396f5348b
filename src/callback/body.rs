//! The push body: a bare JSON array of call-result records (the vendor's page: "The entity
//! object does not exist"), read whole or refused whole.
//!
//! Only the outer shape is judged here. Each element is handed on as it is, and [`super::mapping`]
//! decides record by record, so one bad record never costs the good ones of its push.

use serde_json::Value;

use crate::metrics::PushOutcome;

/// Why a whole push is refused. Nothing in it quotes the body: a record holds the customer's
/// phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("the body is not a JSON array of records")]
    NotArray,
    #[error("more than {max} records in one push")]
    TooManyRecords { max: usize },
}

impl BodyError {
    /// How the push is counted.
    pub fn outcome(self) -> PushOutcome {
        match self {
            BodyError::NotJson | BodyError::NotArray => PushOutcome::Malformed,
            BodyError::TooManyRecords { .. } => PushOutcome::TooLarge,
        }
    }
}

/// The records of a push of at most `max_records` elements. An empty array is a valid push of
/// nothing. serde_json bounds the nesting depth (128), so a hostile body cannot exhaust the stack.
pub fn parse(body: &[u8], max_records: usize) -> Result<Vec<Value>, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| BodyError::NotJson)?;
    match value {
        Value::Array(records) if records.len() > max_records => {
            Err(BodyError::TooManyRecords { max: max_records })
        }
        Value::Array(records) => Ok(records),
        _ => Err(BodyError::NotArray),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_array_within_the_bound_is_a_push() {
        assert_eq!(parse(b"[]", 2).map(|r| r.len()), Ok(0));
        assert_eq!(parse(b" [1, {}] ", 2).map(|r| r.len()), Ok(2));
        assert_eq!(
            parse(b"[1,2,3]", 2),
            Err(BodyError::TooManyRecords { max: 2 })
        );
        assert_eq!(
            parse(b"{\"callResultList\":[]}", 2),
            Err(BodyError::NotArray)
        );
        assert_eq!(parse(b"null", 2), Err(BodyError::NotArray));
        for bad in [&b""[..], b"[", b"[1,]", b"[] []", b"\xff"] {
            assert_eq!(parse(bad, 2), Err(BodyError::NotJson), "{bad:?}");
        }
    }
}
