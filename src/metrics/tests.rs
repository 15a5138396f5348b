//! The registry's text output is what operators and the tests read; these hold the verbs to
//! the series they move, and the table to what a fresh registry exports.

use std::collections::BTreeMap;

use prometheus::proto::MetricType;

use super::*;

#[test]
fn all_metrics_register_and_render() {
    let m = Metrics::new();
    let c = m.ingest_counters();
    c.rejected(Rejection::NotJson);
    c.flush();
    let text = m.render();
    assert!(text.contains("realstat_events_rejected_total{reason=\"not_json\"} 1"));
    assert!(text.contains("realstat_build_info{"));
    #[cfg(target_os = "linux")]
    for process in [
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(text.contains(process), "{process}missing");
    }
    assert!(text.contains("realstat_keys_reloads_total{result=\"ok\"} 0"));
    assert!(text.contains("realstat_keys_reloads_total{result=\"rejected\"} 0"));
    assert!(text.contains("realstat_keys_loaded 0"));
    // Two instances do not clash: each has its own registry.
    let _other = Metrics::new();
}

#[test]
fn key_reloads_and_the_keys_in_force() {
    let m = Metrics::new();
    m.keys_in_force(3);
    m.keys_rejected();
    m.keys_reloaded(2);
    m.keys_reloaded(5);
    let text = m.render();
    assert!(text.contains("realstat_keys_reloads_total{result=\"ok\"} 2"));
    assert!(text.contains("realstat_keys_reloads_total{result=\"rejected\"} 1"));
    assert!(text.contains("realstat_keys_loaded 5"));
}

#[test]
fn rejection_counters_are_indexed_by_the_enum() {
    let m = Metrics::new();
    let c = m.ingest_counters();
    for (i, r) in Rejection::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "Rejection::ALL is in declaration order");
        c.rejected(*r);
    }
    assert!(
        !m.render().contains("reason=\"not_json\"} 1"),
        "not flushed yet"
    );
    c.flush();
    let text = m.render();
    for r in Rejection::ALL {
        let line = format!(
            "realstat_events_rejected_total{{reason=\"{}\"}} 1",
            r.label()
        );
        assert!(text.contains(&line), "{line}");
    }
}

#[test]
fn lag_counts_neither_deleted_nor_read_messages() {
    let m = Metrics::new();
    m.partition_progress(0, Some(5), 10, 30); // stored offset below the log start
    m.partition_progress(1, None, 0, 7); // nothing read yet
    m.partition_progress(2, Some(9), 0, 7); // beyond a reported end
    let text = m.render();
    assert!(text.contains("realstat_partition_lag{partition=\"0\"} 20"));
    assert!(text.contains("realstat_partition_lag{partition=\"1\"} 7"));
    assert!(text.contains("realstat_partition_lag{partition=\"2\"} 0"));
}

/// Every verb once, so that every metric of the table has at least one series to show.
fn touch_every_series(m: &Metrics) {
    let c = m.ingest_counters();
    c.consumed();
    c.changed(0.5);
    c.unchanged();
    c.filtered();
    c.rejected(Rejection::NotJson);
    c.flush();
    m.partition_progress(0, Some(1), 0, 2);
    m.batch_folded(0.001);
    m.request_answered(200, ResultCode::Success, 0.001);
    m.request_answered(401, ResultCode::InvocationFailed, 0.001);
    m.auth_refused(AuthRefusal::Locked);
    m.calls_expired(1);
    m.became_ready();
    m.consumer_error(ConsumerError::Poll);
    m.snapshot_written(10, 0.1, 1);
    m.snapshot_failed();
    m.dead_letter_failed();
    m.keys_reloaded(1);
    m.stream_opened();
    m.stream_ended(StreamEnd::Client);
    m.events_lost(0, 0);
    m.log_reset(LogReset::Truncated);
}

/// The table `realstat metrics list` prints is what a replica exports: names, types, labels.
#[test]
fn the_catalogue_is_what_the_registry_exports() {
    let m = Metrics::new();
    touch_every_series(&m);
    let _ = m.scrape(ScrapeFacts {
        view_age_ms: 0,
        tasks_tracked: 1,
        calls_tracked: 2,
        ready: true,
        now_ms: 2,
    });
    let exported: BTreeMap<String, (&str, Vec<String>)> = m
        .registry
        .gather()
        .iter()
        .map(|f| {
            let kind = match f.get_field_type() {
                MetricType::COUNTER => "counter",
                MetricType::GAUGE => "gauge",
                MetricType::HISTOGRAM => "histogram",
                other => panic!("{}: unexpected type {other:?}", f.name()),
            };
            let mut labels: Vec<String> = f.get_metric()[0]
                .get_label()
                .iter()
                .map(|l| l.name().to_owned())
                .collect();
            labels.sort();
            (f.name().to_owned(), (kind, labels))
        })
        .collect();
    let listed: BTreeMap<String, (&str, Vec<String>)> = catalogue()
        .into_iter()
        .map(|i| {
            let mut labels: Vec<String> = i.labels.iter().map(|l| l.to_string()).collect();
            labels.sort();
            (i.name.to_owned(), (i.kind, labels))
        })
        .collect();
    assert_eq!(listed, exported);
    assert!(catalogue().iter().all(|i| !i.help.is_empty()));
    let json = serde_json::to_value(&catalogue()[1]).expect("serializable");
    assert_eq!(
        json,
        serde_json::json!({
            "name": "realstat_events_applied_total",
            "type": "counter",
            "labels": ["effect"],
            "help": "Valid events folded, by effect (changed, unchanged)."
        })
    );
}

/// The help texts that name a label's values name the enum's values, all of them.
#[test]
fn help_texts_name_every_label_value() {
    for end in StreamEnd::ALL {
        assert!(defs::STREAMS_ENDED.help.contains(end.label()), "{end:?}");
    }
    for effect in Effect::ALL {
        assert!(defs::EVENTS_APPLIED.help.contains(effect.label()));
    }
    for result in KeysReload::ALL {
        assert!(defs::KEYS_RELOADS.help.contains(result.label()));
    }
}

#[test]
fn requests_and_streams_are_counted_by_their_labels() {
    let m = Metrics::new();
    m.request_answered(200, ResultCode::Success, 0.001);
    m.request_answered(200, ResultCode::InvalidParameter, 0.001);
    m.request_answered(599, ResultCode::UnknownError, 0.001);
    m.auth_refused(AuthRefusal::UnknownKey);
    m.stream_opened();
    m.stream_opened();
    m.stream_closed();
    m.stream_ended(StreamEnd::SlowReader);
    assert_eq!(m.streams_open(), 1);
    let text = m.render();
    for line in [
        r#"realstat_requests_total{code="0100000",status="200"} 1"#,
        r#"realstat_requests_total{code="0100002",status="200"} 1"#,
        r#"realstat_requests_total{code="0100999",status="other"} 1"#,
        r#"realstat_auth_failures_total{category="unknown_key"} 1"#,
        r#"realstat_streams_ended_total{reason="slow_reader"} 1"#,
        r#"realstat_streams_ended_total{reason="client"} 0"#,
        "realstat_streams_open 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn the_scrape_sets_the_store_facts_and_the_snapshot_age() {
    let m = Metrics::new();
    let facts = ScrapeFacts {
        view_age_ms: 0,
        tasks_tracked: 3,
        calls_tracked: 40,
        ready: false,
        now_ms: 10_000,
    };
    assert!(m.scrape(facts).contains("realstat_snapshot_age_seconds 0"));
    m.snapshot_taken_at(7_500);
    let text = m.scrape(facts);
    for line in [
        "realstat_tasks_tracked 3",
        "realstat_calls_tracked 40",
        "realstat_ready 0",
        "realstat_snapshot_age_seconds 2.5",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}
