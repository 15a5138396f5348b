use super::*;
use crate::auth::Scope;
use crate::events::{CallState, Decoder, EventKind};
use crate::fold::{Calendar, TenantScope};

fn grant() -> TokenGrant {
    TokenGrant {
        index: 1,
        cc_id: 89,
        vdns: Scope::only([92, 93]),
    }
}

fn shanghai() -> TimeZones {
    TimeZones::single(Calendar::named("Asia/Shanghai").expect("zone"))
}

fn record(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("json")
}

const VENDOR: &str = r#"{"campaignId":"1122104910","sessionId":"s1","called":"13800000000",
  "callTimeStr":"2024-11-24 16:00:01","callStatus":5,"failCode":"00601","vdnId":92,
  "callId":"1644464743-1388","customField":"x","recordPath":"https://obs/rec.wav"}"#;

#[test]
fn a_vendor_record_is_a_call_event_of_the_schema() {
    let m = map_record(&record(VENDOR), &grant(), &shanghai()).expect("valid");
    assert_eq!(m.key.as_deref(), Some("89:92:1122104910"));
    let event = Decoder::new(1).decode(&m.payload).expect("decodes");
    assert_eq!((event.task.cc_id, event.task.vdn), (89, 92));
    assert_eq!(event.task.task_id, 1122104910);
    // 2024-11-24 16:00:01 in Shanghai (UTC+8) is 08:00:01 UTC.
    assert_eq!(event.ts, 1_732_435_201_000);
    match event.kind {
        EventKind::Call { state, .. } => assert_eq!(state, CallState::Failed),
        other => panic!("{other:?}"),
    }
    let text = String::from_utf8(m.payload).expect("utf8");
    assert!(text.contains(r#""failCode":"00601""#), "{text}");
    for private in ["13800000000", "obs/rec", "customField", "\"s1\""] {
        assert!(!text.contains(private), "{text}");
    }
}

#[test]
fn the_same_record_gives_the_same_bytes_and_another_record_another_event_id() {
    let a = map_record(&record(VENDOR), &grant(), &shanghai()).expect("valid");
    let b = map_record(&record(VENDOR), &grant(), &shanghai()).expect("valid");
    assert_eq!(a, b);
    let ok = VENDOR.replace(r#""callStatus":5"#, r#""callStatus":"6""#);
    let c = map_record(&record(&ok), &grant(), &shanghai()).expect("valid");
    assert_ne!(a.payload, c.payload);
    let c = String::from_utf8(c.payload).expect("utf8");
    assert!(c.contains("FINISHED") && !c.contains("failCode"), "{c}");
}

#[test]
fn liberal_numbers_nulls_and_a_call_id_from_the_session() {
    let r = r#"{"campaignId":1122104910,"vdnId":"093","callStatus":"6","callTimeStr":"2024-11-24 00:00:00",
      "callId":"","sessionId":"sub-1","failCode":null,"unknown":[1]}"#;
    let m = map_record(&record(r), &grant(), &shanghai()).expect("valid");
    let text = String::from_utf8(m.payload).expect("utf8");
    assert!(
        text.contains(r#""callId":"s-"#) && !text.contains("sub-1"),
        "{text}"
    );
    assert_eq!(m.key.as_deref(), Some("89:93:1122104910"));
}

#[test]
fn each_bad_field_has_its_reason_and_the_copy_keeps_no_personal_data() {
    let cases = [
        ("1", Invalid::NotObject),
        (r#"{"callStatus":6}"#, Invalid::BadCampaignId),
        (r#"{"campaignId":"12a"}"#, Invalid::BadCampaignId),
        (r#"{"campaignId":"1","vdnId":5001}"#, Invalid::BadVdn),
        (r#"{"campaignId":"1","vdnId":94}"#, Invalid::VdnNotAllowed),
        (
            r#"{"campaignId":"1","vdnId":92,"callStatus":4}"#,
            Invalid::BadCallStatus,
        ),
        (
            r#"{"campaignId":"1","vdnId":92,"callStatus":6,"callTimeStr":"2024-02-30 00:00:00"}"#,
            Invalid::BadCallTime,
        ),
        (
            r#"{"campaignId":"1","vdnId":92,"callStatus":6,"callTimeStr":"2024-02-03T00:00:00"}"#,
            Invalid::BadCallTime,
        ),
        (
            r#"{"campaignId":"1","vdnId":92,"callStatus":5,"callTimeStr":"2024-02-03 00:00:00","failCode":"12345678901234567"}"#,
            Invalid::BadFailCode,
        ),
        (
            r#"{"campaignId":"1","vdnId":92,"callStatus":6,"callTimeStr":"2024-02-03 00:00:00","called":"13800000000"}"#,
            Invalid::BadCallId,
        ),
    ];
    for (json, reason) in cases {
        let refused = map_record(&record(json), &grant(), &shanghai()).expect_err(json);
        assert_eq!(refused.reason, reason, "{json}");
        let copy = String::from_utf8(refused.copy.payload).expect("utf8");
        assert!(!copy.contains("13800000000"), "{copy}");
    }
}

#[test]
fn wall_clock_times_around_a_change_of_offset() {
    let ny = TimeZone::get("America/New_York").expect("zone");
    // 2024-03-10 02:30 does not exist in New York: moved forward by the hour.
    assert_eq!(
        local_millis("2024-03-10 02:30:00", &ny),
        local_millis("2024-03-10 03:30:00", &ny)
    );
    // 2024-11-03 01:30 happens twice: the earlier (EDT, UTC-4).
    assert_eq!(
        local_millis("2024-11-03 01:30:00", &ny),
        Some(1_730_611_800_000)
    );
    assert_eq!(local_millis("1969-12-31 23:59:59", &TimeZone::UTC), None);
    assert_eq!(local_millis("2024-1-03 01:30:00", &TimeZone::UTC), None);
}

#[test]
fn call_time_is_read_in_the_tenants_own_zone() {
    // Call center 89 in Shanghai by default; its VDN 92 in New York (UTC-5 in January).
    let zones = TimeZones::new(
        Calendar::named("Asia/Shanghai").expect("zone"),
        [(
            TenantScope::Vdn(89, 92),
            Calendar::named("America/New_York").expect("zone"),
        )],
    );
    let at = |vdn: u16| {
        let json = format!(
            r#"{{"campaignId":"1","vdnId":{vdn},"callStatus":6,"callTimeStr":"2024-01-15 09:00:00","callId":"c{vdn}"}}"#
        );
        let m = map_record(&record(&json), &grant(), &zones).expect("valid");
        Decoder::new(1).decode(&m.payload).expect("decodes").ts
    };
    // 09:00 in New York is 14:00 UTC; 09:00 in Shanghai is 01:00 UTC.
    assert_eq!(at(92), 1_705_327_200_000);
    assert_eq!(at(93), 1_705_280_400_000);
}

/// The event text is written out by hand: byte for byte what `serde_json` writes for the same
/// object, so events of a push retried across an upgrade stay identical.
#[test]
fn the_event_text_is_serde_jsons_own() {
    let records = [
        VENDOR.to_owned(),
        r#"{"campaignId":"77","vdnId":"93","callStatus":6,"callTimeStr":"2024-11-24 16:00:01","callId":"a\"b\\c/<"}"#.to_owned(),
        r#"{"campaignId":"78","vdnId":92,"callStatus":"5","failCode":"x\ty\u00e9\u0001","callTimeStr":"2024-11-24 16:00:01","callId":"","sessionId":"s"}"#.to_owned(),
    ];
    for json in &records {
        let m = map_record(&record(json), &grant(), &shanghai()).expect("valid");
        let e = Decoder::new(1).decode(&m.payload).expect("decodes");
        let text = String::from_utf8(m.payload.clone()).expect("utf8");
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(parsed.to_string(), text, "{json}");
        assert_eq!(parsed["ccId"], 89);
        assert_eq!(
            parsed["taskId"].as_str(),
            Some(e.task.task_id.to_string().as_str())
        );
    }
}

/// A number too large for a double refuses its record, not the push around it.
#[test]
fn a_number_out_of_range_refuses_only_its_record() {
    let body = br#"[{"campaignId":1e400,"vdnId":92,"callStatus":6,"callTimeStr":"2024-11-24 16:00:01","callId":"a"},
        {"campaignId":"5","vdnId":92,"callStatus":6,"callTimeStr":"2024-11-24 16:00:01","callId":"b"}]"#;
    let records = crate::callback::body::parse(body, 10).expect("a push");
    let refused = map_record(records[0], &grant(), &shanghai()).expect_err("refused");
    assert_eq!(refused.reason, Invalid::BadCampaignId);
    assert_eq!(
        String::from_utf8(refused.copy.payload).expect("utf8"),
        r#"{"callId":"a","callStatus":6,"callTimeStr":"2024-11-24 16:00:01","campaignId":"1e400","vdnId":92}"#
    );
    assert!(map_record(records[1], &grant(), &shanghai()).is_ok());
}

/// A campaign id with leading zeros is keyed by its value, like every producer's events of that
/// task, so they share a partition; the event names the same task.
#[test]
fn a_campaign_id_with_leading_zeros_is_keyed_by_its_value() {
    let json = r#"{"campaignId":"0012","vdnId":92,"callStatus":6,"callTimeStr":"2024-11-24 16:00:01","callId":"c"}"#;
    let m = map_record(&record(json), &grant(), &shanghai()).expect("valid");
    assert_eq!(m.key.as_deref(), Some("89:92:12"));
    let event = Decoder::new(1).decode(&m.payload).expect("decodes");
    assert_eq!(event.task.to_string(), "89:92:12");
}

#[test]
fn each_field_names_its_place_in_the_read_fields() {
    let places = [
        (Field::CampaignId, "campaignId"),
        (Field::VdnId, "vdnId"),
        (Field::CallId, "callId"),
        (Field::CallTimeStr, "callTimeStr"),
        (Field::CallStatus, "callStatus"),
        (Field::FailCode, "failCode"),
        (Field::SessionId, "sessionId"),
    ];
    assert_eq!(places.len(), READ_FIELDS.len());
    for (field, name) in places {
        assert_eq!(READ_FIELDS[field as usize], name);
    }
}
