//! The top layers of the configuration, as the caller read them: the settings the operator gave
//! in the environment or as flags, and nothing else, so that a default of the command line never
//! hides a value of the config file.

use serde_json::{Map, Value};

use super::Settings;

/// Values by dotted key (`snapshot.keep`), nested as the config file nests them.
#[derive(Debug, Clone, Default)]
pub struct Overrides(Map<String, Value>);

impl Overrides {
    /// The values of `settings` at `keys` (dotted paths of the schema). A key whose value is
    /// absent in `settings` (an unset option) is left out.
    pub fn pick<'a>(settings: &Settings, keys: impl IntoIterator<Item = &'a str>) -> Overrides {
        let all = serde_json::to_value(settings).unwrap_or_default();
        let mut picked = Map::new();
        for key in keys {
            if let Some(value) = key.split('.').try_fold(&all, |v, part| v.get(part)) {
                insert(&mut picked, key, value.clone());
            }
        }
        Overrides(picked)
    }

    pub(super) fn as_value(&self) -> &Map<String, Value> {
        &self.0
    }
}

fn insert(map: &mut Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            map.insert(dotted.to_owned(), value);
        }
        Some((table, rest)) => {
            let inner = map
                .entry(table.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                insert(inner, rest, value);
            }
        }
    }
}
