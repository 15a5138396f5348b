//! What the ingest threads ask of librdkafka: client settings per role, and the partition list.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::log_position::Partition;

/// Which client a configuration is for. Each starts from the same base (brokers, the
/// operator's properties) and adds only what its role needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The consumer that feeds the fold.
    Consumer,
    /// The client that reads end offsets for the lag metrics.
    Watermarks,
    /// The dead-letter producer.
    DeadLetters,
}

/// The settings of one client. The operator's `properties` come last, so they may override
/// ours (security settings, and any tuning below).
pub fn client_config(brokers: &str, properties: &[(String, String)], role: Role) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers);
    match role {
        Role::Consumer | Role::Watermarks => {
            // A group id is needed by librdkafka's consumer even with manual assignment;
            // nothing is ever committed under it.
            cc.set("group.id", "realstat")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                .set("auto.offset.reset", "earliest")
                .set("client.id", "realstat");
        }
        Role::DeadLetters => {
            cc.set("client.id", "realstat-dlq");
        }
    }
    if role == Role::Consumer {
        // Larger fetches: replay speed is bound by how much arrives per round trip.
        cc.set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "10485760")
            .set("queued.min.messages", "200000")
            // librdkafka pauses fetching for this long once its local queue is full (default
            // 1 s): during a catch-up that idled the consumer most of the time.
            .set("fetch.queue.backoff.ms", "10")
            // How long a broker may hold an empty fetch. The default 500 ms is the floor of the
            // event-to-visible delay; 10 ms brings it to tens of ms at the cost of more (small)
            // fetch requests while idle.
            .set("fetch.wait.max.ms", "10")
            // A position outside the log is realstat's to handle (`resets`): librdkafka's
            // `earliest` would jump over deleted events, or miss a recreated topic, silently.
            .set("auto.offset.reset", "error")
            // After a broker outage, reconnect within a second (the default backs off to 10 s,
            // all that time serving an old view while ready).
            .set("reconnect.backoff.max.ms", "1000")
            .set("fetch.error.backoff.ms", "100");
    }
    for (k, v) in properties {
        cc.set(k, v);
    }
    cc
}

/// The topic's partition ids, sorted; empty while the topic does not exist (yet).
pub fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Partition>, KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if t.error().is_some() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Partition> = t.partitions().iter().map(|p| Partition(p.id())).collect();
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_shares_the_base_and_the_operator_has_the_last_word() {
        let props = vec![
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ("fetch.wait.max.ms".to_owned(), "100".to_owned()),
        ];
        for role in [Role::Consumer, Role::Watermarks, Role::DeadLetters] {
            let cc = client_config("k:9092", &props, role);
            assert_eq!(cc.get("bootstrap.servers"), Some("k:9092"));
            assert_eq!(cc.get("security.protocol"), Some("SASL_SSL"));
        }
        let consumer = client_config("k:9092", &props, Role::Consumer);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("error"));
        let dlq = client_config("k:9092", &[], Role::DeadLetters);
        assert_eq!(dlq.get("group.id"), None);
        assert_eq!(dlq.get("fetch.max.bytes"), None);
    }
}
