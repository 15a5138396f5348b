//! The three identifiers of a task, parsed leniently from JSON the way the vendor's clients send
//! them: a JSON number or a string of decimal digits (`"ccId": "89"` is in the vendor's own
//! example). Anything else (floats, signs, blanks, empty strings) is invalid.
//!
//! Parsing happens in two steps so that every rejection can name its field: a JSON value is first
//! read into an [`IdToken`], which never fails to deserialize, then checked against the field's
//! range.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Call-center id, 1..=65535.
pub const CC_ID_MAX: u128 = 65_535;
/// VDN (virtual call center) id, 1..=5000.
pub const VDN_MAX: u128 = 5_000;
/// A task id has at most 30 decimal digits; 10^30 < 2^100, so it fits a `u128` exactly.
pub const TASK_ID_MAX_DIGITS: usize = 30;

/// Identifies one outbound task: the unit the statistics are kept and served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    pub cc_id: u16,
    pub vdn: u16,
    /// Canonical task id: the numeric value, so `"0012"`, `"12"` and `12` are one task.
    pub task_id: u128,
}

impl fmt::Display for TaskKey {
    /// The Kafka message key format of events.md: `{ccId}:{vdn}:{taskId}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.cc_id, self.vdn, self.task_id)
    }
}

/// What a JSON value looked like, read without failing so the caller can say which field was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdToken {
    /// A non-negative integer (from a number or a digit string) and, for strings, its digit count.
    Digits { value: u128, digits: usize },
    /// `null`
    Null,
    /// Anything else: float, negative, sign, blank, empty or non-digit string, bool, array, object,
    /// or a number too large to be exact.
    Invalid,
}

impl IdToken {
    /// The value when it lies in `1..=max`.
    pub fn in_range(self, max: u128) -> Option<u128> {
        match self {
            IdToken::Digits { value, .. } if (1..=max).contains(&value) => Some(value),
            _ => None,
        }
    }

    /// A task id: 1..=30 digits, any value (leading zeros are dropped by taking the value).
    pub fn task_id(self) -> Option<u128> {
        match self {
            IdToken::Digits { value, digits } if digits <= TASK_ID_MAX_DIGITS => Some(value),
            _ => None,
        }
    }

    /// A non-negative integer that fits `i64` (timestamps, counts).
    pub fn non_negative_i64(self) -> Option<i64> {
        match self {
            IdToken::Digits { value, .. } => i64::try_from(value).ok(),
            _ => None,
        }
    }
}

/// Parses a string of 1..=39 ASCII digits (no sign, no blanks). Longer strings are invalid even
/// when they would fit: no field here allows them.
pub(crate) fn parse_digits(s: &str) -> IdToken {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 39 || !bytes.iter().all(u8::is_ascii_digit) {
        return IdToken::Invalid;
    }
    // Up to 19 digits cannot overflow u64, whose arithmetic is cheaper than u128's.
    if bytes.len() <= 19 {
        let value = bytes
            .iter()
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
        return IdToken::Digits {
            value: u128::from(value),
            digits: bytes.len(),
        };
    }
    let mut value: u128 = 0;
    for &b in bytes {
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
        {
            Some(v) => v,
            None => return IdToken::Invalid,
        };
    }
    IdToken::Digits {
        value,
        digits: bytes.len(),
    }
}

pub(crate) fn digit_count(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

impl<'de> Deserialize<'de> for IdToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokenVisitor;

        impl<'de> Visitor<'de> for TokenVisitor {
            type Value = IdToken;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string of decimal digits")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdToken, E> {
                Ok(IdToken::Digits {
                    value: u128::from(v),
                    digits: digit_count(v),
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdToken, E> {
                Ok(match u64::try_from(v) {
                    Ok(v) => IdToken::Digits {
                        value: u128::from(v),
                        digits: digit_count(v),
                    },
                    Err(_) => IdToken::Invalid,
                })
            }
            // serde_json hands over floats, and integers beyond u64, as f64: never exact, so never
            // an id. A 20..30-digit task id must come as a string.
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IdToken, E> {
                Ok(IdToken::Invalid)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdToken, E> {
                Ok(parse_digits(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<IdToken, E> {
                Ok(IdToken::Invalid)
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdToken, E> {
                Ok(IdToken::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<IdToken, E> {
                Ok(IdToken::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<IdToken, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdToken, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdToken::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdToken, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdToken::Invalid)
            }
        }

        deserializer.deserialize_any(TokenVisitor)
    }
}

/// A JSON value expected to be a string, read without failing. Borrowed when the JSON text has
/// no escapes, which is the common case, so decoding an event allocates nothing for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrToken<'a> {
    Str(std::borrow::Cow<'a, str>),
    Null,
    NotString,
}

impl<'de: 'a, 'a> Deserialize<'de> for StrToken<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = StrToken<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrToken::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrToken::Str(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrToken::Str(std::borrow::Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrToken::NotString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrToken::NotString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrToken::NotString)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrToken::NotString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrToken::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrToken::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrToken::NotString)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrToken::NotString)
            }
        }

        deserializer.deserialize_any(StrVisitor(std::marker::PhantomData))
    }
}

impl StrToken<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            StrToken::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(json: &str) -> IdToken {
        serde_json::from_str(json).expect("IdToken never fails on valid JSON")
    }

    #[test]
    fn numbers_and_digit_strings_are_ids() {
        assert_eq!(token("89").in_range(CC_ID_MAX), Some(89));
        assert_eq!(token("\"89\"").in_range(CC_ID_MAX), Some(89));
        assert_eq!(token("\"0089\"").in_range(CC_ID_MAX), Some(89));
        assert_eq!(token("5000").in_range(VDN_MAX), Some(5000));
        assert_eq!(token("\"0012\"").task_id(), Some(12));
        assert_eq!(
            token("\"123456789012345678901234567890\"").task_id(),
            Some(123_456_789_012_345_678_901_234_567_890)
        );
    }

    #[test]
    fn everything_else_is_invalid() {
        for bad in [
            "92.0",
            "-1",
            "\"-1\"",
            "\"+1\"",
            "\" 1\"",
            "\"1 \"",
            "\"\"",
            "true",
            "[1]",
            "{\"a\":1}",
            "1e3",
            "\"1e3\"",
            "\"١\"",
        ] {
            assert_eq!(token(bad).in_range(VDN_MAX), None, "{bad}");
            assert_eq!(token(bad).task_id(), None, "{bad}");
        }
        assert_eq!(token("null"), IdToken::Null);
        assert_eq!(token("0").in_range(VDN_MAX), None);
        assert_eq!(token("5001").in_range(VDN_MAX), None);
        assert_eq!(token("65536").in_range(CC_ID_MAX), None);
        assert_eq!(
            token("\"1234567890123456789012345678901\"").task_id(),
            None,
            "31 digits"
        );
        // Beyond u64 a JSON number is not exact: it must come as a string.
        assert_eq!(token("123456789012345678901234").task_id(), None);
    }

    #[test]
    fn task_key_displays_as_the_message_key() {
        let key = TaskKey {
            cc_id: 89,
            vdn: 92,
            task_id: 1_122_104_910,
        };
        assert_eq!(key.to_string(), "89:92:1122104910");
    }
}
