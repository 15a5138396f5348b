//! A fast reader for the common shape of an event value: one flat JSON object whose values are
//! strings without escapes, non-negative integers, booleans or `null`.
//!
//! Anything else (an escape, a nested value, a float or a negative number, a known field twice,
//! a byte JSON does not allow, text after the object) makes it give up with `None`, and the
//! decoder then reads the value with serde as before. So this reader never decides differently
//! from serde, it only decides faster; a property test compares the two on generated values.

use std::borrow::Cow;

use super::ids::{parse_digits, IdToken, StrToken};
use super::WireEvent;

/// The wire form of `text`, when it has the common shape; `None`: use the full reader.
pub(super) fn flat(text: &str) -> Option<WireEvent<'_>> {
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
    };
    let mut w = WireEvent::default();
    s.skip_ws();
    s.eat(b'{')?;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            let key = s.string()?;
            s.skip_ws();
            s.eat(b':')?;
            s.skip_ws();
            let value = s.value()?;
            w.set(key, value)?;
            s.skip_ws();
            match s.next()? {
                b',' => s.skip_ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.skip_ws();
    (s.i == s.b.len()).then_some(w)
}

/// One JSON value of the common shape.
enum Value<'a> {
    Str(&'a str),
    /// The value and its digit count (known from the scan: no leading zeros).
    Int(u64, usize),
    Bool,
    Null,
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// JSON's whitespace: space, tab, line feed, carriage return (not form feed).
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters, borrowed from the text.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        // Eight bytes at a time while none of them can end the string or needs a look; the byte
        // loop below decides on the rest.
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            if needs_a_look(word) {
                break;
            }
            self.i += 8;
        }
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => {}
            }
        }
        // Both ends are ASCII quotes in text already checked as UTF-8: a char boundary.
        self.text.get(start..self.i - 1)
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'0'..=b'9' => self.integer(),
            b't' => self.literal(b"true", Value::Bool),
            b'f' => self.literal(b"false", Value::Bool),
            b'n' => self.literal(b"null", Value::Null),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Option<Value<'a>> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| {
            self.i = end;
            value
        })
    }

    /// `0` or `[1-9][0-9]*` fitting `u64`, not followed by a fraction or an exponent.
    fn integer(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        if (digits.len() > 1 && digits[0] == b'0') || digits.len() > 19 {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = digits.iter().try_fold(0u64, |v, &d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        Some(Value::Int(value, digits.len()))
    }
}

/// Whether any byte of `word` is a quote, a backslash or a control character (below 0x20), by
/// the classic "has a zero byte" bit trick: exact about whether one exists, which is all the
/// string scan asks.
fn needs_a_look(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')))
        | below_space
        != 0
}

impl<'a> Value<'a> {
    /// What serde's `Option<IdToken>` would hold (`null` is `None`, as serde reads options).
    fn id(self) -> Option<IdToken> {
        match self {
            Value::Str(s) => Some(parse_digits(s)),
            Value::Int(value, digits) => Some(IdToken::Digits {
                value: u128::from(value),
                digits,
            }),
            Value::Bool => Some(IdToken::Invalid),
            Value::Null => None,
        }
    }

    /// What serde's `Option<StrToken>` would hold.
    fn text(self) -> Option<StrToken<'a>> {
        match self {
            Value::Str(s) => Some(StrToken::Str(Cow::Borrowed(s))),
            Value::Int(..) | Value::Bool => Some(StrToken::NotString),
            Value::Null => None,
        }
    }
}

impl<'a> WireEvent<'a> {
    /// Sets a known field, ignores an unknown one. `None`: a known field seen twice, which
    /// serde refuses; let it.
    fn set(&mut self, key: &str, value: Value<'a>) -> Option<()> {
        fn once<T>(slot: &mut Option<T>, seen: &mut bool, v: Option<T>) -> Option<()> {
            if std::mem::replace(seen, true) {
                return None;
            }
            *slot = v;
            Some(())
        }
        let seen = &mut self.seen;
        match key {
            "v" => once(&mut self.v, &mut seen[0], value.id()),
            "type" => once(&mut self.kind, &mut seen[1], value.text()),
            "ccId" => once(&mut self.cc_id, &mut seen[2], value.id()),
            "vdn" => once(&mut self.vdn, &mut seen[3], value.id()),
            "taskId" => once(&mut self.task_id, &mut seen[4], value.id()),
            "ts" => once(&mut self.ts, &mut seen[5], value.id()),
            "eventId" => once(&mut self.event_id, &mut seen[6], value.text()),
            "callId" => once(&mut self.call_id, &mut seen[7], value.text()),
            "state" => once(&mut self.state, &mut seen[8], value.text()),
            "failCode" => once(&mut self.fail_code, &mut seen[9], value.text()),
            "plannedCount" => once(&mut self.planned_count, &mut seen[10], value.id()),
            _ => Some(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::events::Decoder;

    proptest! {
        /// The word-at-a-time test agrees with looking at each byte, on any eight bytes (mostly
        /// from the bytes that matter and their neighbours, so the edges are well covered).
        #[test]
        fn needs_a_look_is_exact(bytes in proptest::array::uniform8(prop_oneof![
            Just(b'"'), Just(b'\\'), Just(0x1f_u8), Just(0x20_u8), Just(0x21_u8), Just(0x00_u8),
            Just(0x7f_u8), Just(0x80_u8), Just(0xff_u8), Just(b'a'), any::<u8>(),
        ])) {
            let bytewise = bytes.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(needs_a_look(u64::from_le_bytes(bytes)), bytewise);
        }
    }

    const KEYS: [&str; 14] = [
        "v",
        "type",
        "ccId",
        "vdn",
        "taskId",
        "ts",
        "eventId",
        "callId",
        "state",
        "failCode",
        "plannedCount",
        "x",
        "\\u0076",
        "",
    ];

    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop_oneof![
                Just("CALL"),
                Just("TASK"),
                Just("QUEUED"),
                Just("FAILED"),
                Just("")
            ]
            .prop_map(|s| format!("\"{s}\"")),
            "[0-9]{1,25}",
            "[0-9]{0,32}".prop_map(|d| format!("\"{d}\"")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            "[ -~\u{e9}\u{4e2d}]{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
            prop_oneof![
                Just("-0"),
                Just("1.5"),
                Just("1e3"),
                Just("2E-1"),
                Just("true"),
                Just("false"),
                Just("null"),
                Just("nul"),
                Just("{}"),
                Just("[1,2]"),
                Just("{\"a\":[null]}"),
                Just("\"a\\\"b\""),
                Just("\"\\u0041\""),
                Just("\"\t\""),
                Just("\"\u{7f}\""),
            ]
            .prop_map(str::to_owned),
        ]
    }

    fn arb_ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            8 => Just(""),
            2 => Just(" "),
            1 => Just("\n\t\r"),
            1 => Just("\u{c}"),
        ]
    }

    /// Objects of the common shape and of many others: every path of the fast reader.
    fn arb_text() -> impl Strategy<Value = String> {
        let entry = (0..KEYS.len(), arb_value(), arb_ws(), arb_ws());
        (
            prop::collection::vec(entry, 0..9),
            arb_ws(),
            prop_oneof![
                Just(""),
                Just(""),
                Just(" "),
                Just("x"),
                Just("}"),
                Just(",")
            ],
        )
            .prop_map(|(entries, ws, tail)| {
                let body: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v, a, b)| format!("{a}\"{}\"{b}:{a}{v}{b}", KEYS[k]))
                    .collect();
                format!("{ws}{{{}}}{ws}{tail}", body.join(","))
            })
    }

    /// Events that are valid, or nearly: every field present, in any order, ids as numbers or
    /// strings, sometimes with a value or an extra field of another shape.
    fn arb_event_text() -> impl Strategy<Value = String> {
        let id = |n: u64| {
            prop_oneof![
                Just(n.to_string()),
                Just(format!("\"{n}\"")),
                Just(format!("\"00{n}\""))
            ]
        };
        (
            id(89),
            id(92),
            id(1_122_104_910),
            id(1_732_435_200_123),
            prop_oneof![
                Just("\"FAILED\""),
                Just("\"QUEUED\""),
                Just("\"DONE\""),
                Just("7")
            ],
            prop_oneof![
                Just(""),
                Just(r#","failCode":"00601""#),
                Just(r#","eventId":null"#),
                Just(r#","x":[1]"#)
            ],
            any::<u64>(),
            arb_ws(),
        )
            .prop_map(|(cc, vdn, task, ts, state, extra, seed, ws)| {
                let mut fields = [
                    r#""type":"CALL""#.to_owned(),
                    format!(r#""ccId":{cc}"#),
                    format!(r#""vdn":{ws}{vdn}"#),
                    format!(r#""taskId":{task}"#),
                    format!(r#""ts":{ts}"#),
                    format!(r#""callId":"c-{}""#, seed % 1000),
                    format!(r#""state":{state}"#),
                ];
                let n = fields.len();
                fields.rotate_left((seed % n as u64) as usize);
                format!("{{{}{extra}}}", fields.join(","))
            })
    }

    /// Generated texts through both readers: the same decision every time, and enough of them
    /// on the fast path for that to mean something.
    #[test]
    fn the_fast_reader_decides_exactly_as_serde() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = prop_oneof![arb_text(), arb_event_text()];
        let d = Decoder::new(7);
        let (mut fast, mut valid, n) = (0, 0, 20_000);
        for _ in 0..n {
            let text = strategy
                .new_tree(&mut runner)
                .expect("a generated text")
                .current();
            let got = d.decode(text.as_bytes());
            assert_eq!(got, d.decode_with_serde(text.as_bytes()), "{text:?}");
            fast += usize::from(flat(&text).is_some());
            valid += usize::from(got.is_ok());
        }
        assert!(fast > n / 20, "only {fast} of {n} on the fast path");
        assert!(valid > n / 10, "only {valid} of {n} valid events");
    }

    #[test]
    fn the_common_shape_takes_the_fast_path() {
        let task = crate::events::ids::TaskKey {
            cc_id: 89,
            vdn: 92,
            task_id: 1_122_104_910,
        };
        let texts = [
            crate::events::encode_call(&task, "c-1", crate::events::CallState::Failed, 5),
            crate::events::encode_task(&task, 8, 5),
            r#"{"v":1,"type":"CALL","ccId":"89","vdn":92,"taskId":"1122104910","callId":"c-000017","state":"FAILED","failCode":"00601","ts":1732435200123}"#.to_owned(),
        ];
        for t in texts {
            assert!(flat(&t).is_some(), "{t}");
        }
        // And an escape, a float or a nested value leaves it to serde.
        for t in [
            r#"{"callId":"a\"b"}"#,
            r#"{"ts":1.0}"#,
            r#"{"x":{}}"#,
            r#"{"v":1,"v":1}"#,
        ] {
            assert!(flat(t).is_none(), "{t}");
        }
    }
}
