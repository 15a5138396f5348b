//! Rejected events are copied to the dead-letter topic with the reason and origin in headers.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use realstat::events::{encode_call, CallState};
use realstat::ingest::dead_letter::{HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC};

use crate::support::*;

#[actix_web::test]
async fn rejected_events_go_to_the_dead_letter_topic_with_their_reason() {
    let good = encode_call(&task(3), "a", CallState::Finished, now_ms() - 1_000);
    let app = TestApp::builder()
        .events(&[b"{broken".as_slice(), good.as_bytes()])
        .keyed_events(
            "1:92:3",
            &[br#"{"type":"CALL","vdn":92,"taskId":"3","callId":"b","state":"NOPE","ts":5}"#],
        )
        .dead_letters()
        .spawn()
        .await;
    assert_eq!(
        result(&app.query(r#"{"vdn":92,"taskId":3}"#).await).1["totalCount"],
        "1"
    );

    let brokers = app.kafka.brokers();
    let copies = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "dlq-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(DLQ_TOPIC, 0, Offset::Beginning)
            .expect("tpl");
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < 2 && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let mut h = std::collections::BTreeMap::new();
                if let Some(headers) = m.headers() {
                    for hd in headers.iter() {
                        h.insert(
                            hd.key.to_owned(),
                            String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                        );
                    }
                }
                out.push((
                    m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    h,
                ));
            }
        }
        out
    })
    .await
    .expect("join");

    assert_eq!(copies.len(), 2, "both rejected events were copied");
    let (key0, payload0, h0) = &copies[0];
    assert_eq!(key0, &None);
    assert_eq!(payload0.as_slice(), b"{broken");
    assert_eq!(h0[HEADER_REASON], "not_json");
    assert_eq!(h0[HEADER_TOPIC], "events");
    assert_eq!(h0[HEADER_PARTITION], "0");
    assert_eq!(h0[HEADER_OFFSET], "0");
    let (key2, _, h2) = &copies[1];
    assert_eq!(key2.as_deref(), Some("1:92:3"));
    assert_eq!(h2[HEADER_REASON], "bad_state");
    assert_eq!(h2[HEADER_OFFSET], "2");
    app.stop().await;
}
