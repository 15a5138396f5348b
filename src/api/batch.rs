//! The batch query: `POST /rest/cmsapp/v1/openapi/fromisales/realstatistics`, the eight values
//! of up to 100 tasks of one VDN in one answer (api.md, "Batch query").
//!
//! Same checks as the single query, in the same order; the body has `taskIds` (1 to 100 ids,
//! each with the rules of `taskId`) instead of `taskId`. The rows are read in one pass over the
//! store at one "today", in request order.

use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

pub use super::request::MAX_TASKS;
use super::request::{cc_id_and_vdn, object_text, Field, InvalidRequest};
use super::response::{rows_response, Row};
use super::{today, Admitted, Params, Scope, Verb};
use crate::events::ids::{IdToken, TaskKey};

pub const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistics";

#[derive(Deserialize)]
struct WireBatch {
    #[serde(rename = "ccId")]
    cc_id: Option<IdToken>,
    vdn: Option<IdToken>,
    /// `None`: absent or `null`.
    #[serde(rename = "taskIds")]
    task_ids: Option<WireIds>,
}

/// `taskIds` as written: a list of ids, each read without failing (a bad one is reported by its
/// position), or not a list at all. Read straight from the text: no intermediate JSON tree.
enum WireIds {
    List(Vec<IdToken>),
    NotList,
}

impl<'de> Deserialize<'de> for WireIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct IdsVisitor;

        impl<'de> Visitor<'de> for IdsVisitor {
            type Value = WireIds;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of task ids")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireIds, A::Error> {
                let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(MAX_TASKS + 1));
                while let Some(id) = seq.next_element::<IdToken>()? {
                    ids.push(id);
                }
                Ok(WireIds::List(ids))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireIds, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireIds::NotList)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<WireIds, E> {
                Ok(WireIds::NotList)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<WireIds, E> {
                Ok(WireIds::NotList)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<WireIds, E> {
                Ok(WireIds::NotList)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<WireIds, E> {
                Ok(WireIds::NotList)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<WireIds, E> {
                Ok(WireIds::NotList)
            }
        }

        deserializer.deserialize_any(IdsVisitor)
    }
}

/// What a batch names: one VDN of one call center, and its tasks in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub cc_id: u16,
    pub vdn: u16,
    pub task_ids: Vec<u128>,
}

impl Batch {
    pub fn keys(&self) -> Vec<TaskKey> {
        self.task_ids
            .iter()
            .map(|&task_id| TaskKey {
                cc_id: self.cc_id,
                vdn: self.vdn,
                task_id,
            })
            .collect()
    }
}

/// Parses a batch body; the error is the `resultDesc` of the 0100002 answer.
pub fn parse_body(body: &[u8], default_cc_id: u16) -> Result<Batch, InvalidRequest> {
    let text = object_text(body)?;
    let wire: WireBatch = serde_json::from_str(text).map_err(|_| InvalidRequest::NotJsonObject)?;
    let (cc_id, vdn) = cc_id_and_vdn(wire.cc_id, wire.vdn, default_cc_id)?;
    let items = match wire.task_ids {
        None => return Err(InvalidRequest::TaskIdsMissing),
        Some(WireIds::List(items)) => items,
        Some(WireIds::NotList) => return Err(InvalidRequest::TaskIdsNotList),
    };
    let task_ids = task_ids(items.iter().copied().map(Some), items.len(), Field::TaskIds)?;
    Ok(Batch {
        cc_id,
        vdn,
        task_ids,
    })
}

/// Checks a list of task ids (`list`: `taskIds` of a body, `taskId` of a query string): 1 to
/// [`MAX_TASKS`], each with the rules of `taskId`. The error names the first offending position
/// (counted from 0).
pub(crate) fn task_ids(
    tokens: impl Iterator<Item = Option<IdToken>>,
    len: usize,
    list: Field,
) -> Result<Vec<u128>, InvalidRequest> {
    if len == 0 {
        return Err(InvalidRequest::NoTaskIds(list));
    }
    if len > MAX_TASKS {
        return Err(InvalidRequest::TooManyTaskIds(list));
    }
    tokens
        .enumerate()
        .map(|(index, t)| {
            t.and_then(IdToken::task_id)
                .ok_or(InvalidRequest::TaskIdAt { list, index })
        })
        .collect()
}

/// The batch route reads `ccId`, `vdn` and `taskIds` from its body.
impl Params for Batch {
    const VERB: Verb = Verb::Post;

    fn parse(_: &HttpRequest, body: &[u8], default_cc_id: u16) -> Result<Self, InvalidRequest> {
        parse_body(body, default_cc_id)
    }

    fn scope(&self) -> Scope {
        Scope {
            cc_id: self.cc_id,
            vdn: self.vdn,
        }
    }
}

pub(crate) async fn handle(req: Admitted<Batch>) -> HttpResponse {
    let store = &req.state().store;
    let batch = &req.params;
    let stats = store.stats_of(&batch.keys(), today(store, batch.cc_id, batch.vdn));
    let rows = batch
        .task_ids
        .iter()
        .zip(stats)
        .map(|(&id, s)| Row::new(id, s));
    rows_response(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(body: &str) -> Result<Batch, String> {
        parse_body(body.as_bytes(), 7).map_err(|e| e.to_string())
    }

    #[test]
    fn ids_are_lenient_canonical_and_in_request_order() {
        let b = p(r#"{"ccId":1,"vdn":92,"taskIds":["1122104910",77,"0042","0"]}"#).expect("valid");
        assert_eq!((b.cc_id, b.vdn), (1, 92));
        assert_eq!(b.task_ids, vec![1_122_104_910, 77, 42, 0]);
        assert_eq!(p(r#"{"vdn":92,"taskIds":[5,5]}"#).map(|b| b.cc_id), Ok(7));
    }

    #[test]
    fn errors_name_the_field_and_the_position() {
        let hundred: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let ok = format!(r#"{{"vdn":92,"taskIds":[{}]}}"#, hundred.join(","));
        assert_eq!(p(&ok).map(|b| b.task_ids.len()), Ok(100));
        let over = format!(r#"{{"vdn":92,"taskIds":[{},100]}}"#, hundred.join(","));
        let cases: &[(&str, &str)] = &[
            (r#"{"vdn":92}"#, "taskIds is required"),
            (r#"{"vdn":92,"taskIds":null}"#, "taskIds is required"),
            (r#"{"vdn":92,"taskIds":"1"}"#, "must be an array"),
            (r#"{"vdn":92,"taskIds":[]}"#, "got none"),
            (&over, "taskIds[100] is one too many"),
            (r#"{"vdn":92,"taskIds":[1,"x",3]}"#, "taskIds[1] must be"),
            (r#"{"vdn":92,"taskIds":[1,2,null]}"#, "taskIds[2] must be"),
            (r#"{"vdn":92,"taskIds":[1.5]}"#, "taskIds[0] must be"),
            (
                r#"{"vdn":92,"taskIds":[1,[2],{"a":3}]}"#,
                "taskIds[1] must be",
            ),
            (r#"{"vdn":92,"taskIds":[-1]}"#, "taskIds[0] must be"),
            (r#"{"vdn":92,"taskIds":{"0":1}}"#, "must be an array"),
            (r#"{"vdn":92,"taskIds":true}"#, "must be an array"),
            (r#"{"vdn":92,"taskIds":7}"#, "must be an array"),
            (
                r#"{"vdn":92,"taskIds":["1234567890123456789012345678901"]}"#,
                "taskIds[0] must be",
            ),
            (r#"{"taskIds":[1]}"#, "vdn is required"),
            (r#"{"ccId":0,"vdn":92,"taskIds":[1]}"#, "ccId must be"),
            (r#"{"vdn":92,"taskIds":[1],"vdn":93}"#, "not a JSON object"),
            (r#"[92,[1]]"#, "not a JSON object"),
        ];
        for (body, want) in cases {
            let err = p(body).expect_err(body);
            assert!(err.starts_with("Invalid parameter: "), "{body}: {err}");
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
