//! The failure causes (`failCode`) the fold has seen, interned: a call keeps a 16-bit id instead
//! of the text, which fits in the padding of [`super::store::Call`] and so costs no memory.
//!
//! Ids are assigned in arrival order, so they differ between replicas and runs; everything that
//! must agree (the join of two codes, snapshots, answers) goes through the text. At most
//! [`FailCodes::CAPACITY`] distinct codes are kept; any code after that is recorded as
//! [`FailCodes::OTHER`] (a bound on memory against a producer sending random codes; the vendor's
//! codes are a few dozen).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::events::{CallState, FailCode};

/// A call's interned failure cause; [`FailCodes::NONE`] when it has none.
pub type FailCodeId = u16;

#[derive(Debug, Default)]
pub struct FailCodes {
    inner: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    ids: HashMap<Box<str>, FailCodeId>,
    /// Text of id `i` at index `i - 1`.
    texts: Vec<Box<str>>,
}

impl FailCodes {
    pub const NONE: FailCodeId = 0;
    /// Distinct codes kept; later ones are counted under [`Self::OTHER_TEXT`].
    pub const CAPACITY: usize = 4096;
    pub const OTHER_TEXT: &'static str = "(other)";

    /// The id of `text`, assigning the next one for a new code.
    pub fn intern(&self, text: &str) -> FailCodeId {
        if let Some(&id) = self.read().ids.get(text) {
            return id;
        }
        let mut t = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = t.ids.get(text) {
            return id;
        }
        let text = if t.texts.len() + 1 >= Self::CAPACITY {
            match t.ids.get(Self::OTHER_TEXT) {
                Some(&id) => return id,
                None => Self::OTHER_TEXT,
            }
        } else {
            text
        };
        t.texts.push(text.into());
        let id = t.texts.len() as FailCodeId;
        t.ids.insert(text.into(), id);
        id
    }

    /// What a call event contributes: its cause when it is FAILED, else none.
    pub fn of_event(&self, state: CallState, code: Option<FailCode>) -> FailCodeId {
        match code {
            Some(c) if state == CallState::Failed => self.intern(c.as_str()),
            _ => Self::NONE,
        }
    }

    /// The text of an id; `None` for [`Self::NONE`] (or an id never assigned).
    pub fn text(&self, id: FailCodeId) -> Option<String> {
        let i = usize::from(id).checked_sub(1)?;
        self.read().texts.get(i).map(|t| t.to_string())
    }

    /// Every code known, by id (index 0 is id 1): for snapshots.
    pub fn texts(&self) -> Vec<String> {
        self.read().texts.iter().map(|t| t.to_string()).collect()
    }

    /// The join of two codes of one call: the greater text (byte order); no code is the least.
    /// A maximum, so the code a call ends up with depends neither on the order of its events nor
    /// on repeats (events.md, "How calls fold").
    pub fn join(&self, a: FailCodeId, b: FailCodeId) -> FailCodeId {
        if a == b || b == Self::NONE {
            return a;
        }
        if a == Self::NONE {
            return b;
        }
        let t = self.read();
        let text = |id: FailCodeId| t.texts.get(usize::from(id) - 1).map(|s| &**s);
        if text(b) > text(a) {
            b
        } else {
            a
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_and_the_join() {
        let c = FailCodes::default();
        let a = c.intern("00601");
        let b = c.intern("00302");
        assert_eq!(c.intern("00601"), a);
        assert_ne!(a, FailCodes::NONE);
        assert_eq!(c.text(a).as_deref(), Some("00601"));
        assert_eq!(c.text(FailCodes::NONE), None);
        assert_eq!(c.join(a, b), a, "the greater text wins");
        assert_eq!(c.join(b, a), a);
        assert_eq!(c.join(FailCodes::NONE, b), b);
        assert_eq!(c.join(b, FailCodes::NONE), b);
        assert_eq!(c.texts(), vec!["00601".to_owned(), "00302".to_owned()]);
    }

    #[test]
    fn codes_beyond_the_capacity_are_other() {
        let c = FailCodes::default();
        for i in 0..FailCodes::CAPACITY + 10 {
            c.intern(&format!("c{i}"));
        }
        let late = c.intern("late");
        assert_eq!(c.text(late).as_deref(), Some(FailCodes::OTHER_TEXT));
        assert_eq!(c.texts().len(), FailCodes::CAPACITY);
        assert_eq!(c.text(c.intern("c0")).as_deref(), Some("c0"));
    }
}
