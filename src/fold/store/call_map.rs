//! The map of a task's calls, keyed by call-key hashes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::Call;
use crate::events::CallKey;

/// Call keys are already hashes: hashing them again would only cost time.
#[derive(Default)]
pub struct CallKeyHasher(u64);

impl Hasher for CallKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type CallMap = HashMap<CallKey, Call, BuildHasherDefault<CallKeyHasher>>;
