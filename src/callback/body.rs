//! The push body: a bare JSON array of call-result records (the vendor's page: "The entity
//! object does not exist"), read whole or refused whole.
//!
//! Only the outer shape is judged here. Each element is handed on as its raw JSON text, and
//! [`super::mapping`] decides record by record, so one bad record never costs the good ones of
//! its push. Nothing is built from a record here: its fields are read (or skipped) once, there.

use serde_json::value::RawValue;

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
pub fn parse(body: &[u8], max_records: usize) -> Result<Vec<&RawValue>, BodyError> {
    let whole: &RawValue = serde_json::from_slice(body).map_err(|_| BodyError::NotJson)?;
    if !whole.get().starts_with('[') {
        return Err(BodyError::NotArray);
    }
    let records: Vec<&RawValue> =
        serde_json::from_str(whole.get()).map_err(|_| BodyError::NotJson)?;
    if records.len() > max_records {
        return Err(BodyError::TooManyRecords { max: max_records });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_array_within_the_bound_is_a_push() {
        let texts = |body: &[u8], max| {
            parse(body, max).map(|r| r.iter().map(|v| v.get().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(texts(b"[]", 2), Ok(vec![]));
        assert_eq!(
            texts(b" [1, {\"a\" : 2}] ", 2),
            Ok(vec!["1".into(), "{\"a\" : 2}".into()])
        );
        assert_eq!(
            texts(b"[1,2,3]", 2),
            Err(BodyError::TooManyRecords { max: 2 })
        );
        assert_eq!(
            texts(b"{\"callResultList\":[]}", 2),
            Err(BodyError::NotArray)
        );
        assert_eq!(texts(b"null", 2), Err(BodyError::NotArray));
        for bad in [&b""[..], b"[", b"[1,]", b"[] []", b"\xff", b"[\"\xff\"]"] {
            assert_eq!(texts(bad, 2), Err(BodyError::NotJson), "{bad:?}");
        }
    }
}
