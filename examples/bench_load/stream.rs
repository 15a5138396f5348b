//! `stream`: live streams under live traffic. `--streams` (100) signed streams are open at once,
//! each on its own probe task plus `--hot` (10) of the busiest simulated tasks, while the
//! simulator produces `--rate` (1000) events/s over `--tasks` (100) tasks. Every round, one probe
//! event (a new call) per stream is produced; its latency runs from just before the produce call
//! to the moment the stream's reader has the row showing it (the probe task's `totalCount`
//! reaching the round). Rounds are `--gap-ms` (400..700, random) apart, so the 250 ms coalescing
//! window of a probe task is always open again: what is measured is wake-up and delivery under
//! load, not the window. p50/p99/max over all probes, and how many never arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use realstat::auth::client;
use realstat::dev::embedded::EmbeddedKafka;
use realstat::events::ids::TaskKey;

use super::sse::Sse;
use super::support::*;
use super::{
    background_traffic, bench_settings, create_topic, info, report, start_app, system, Opts,
};

/// Task ids of the probe tasks, one per stream; none of them is simulated.
fn probe_task(i: usize) -> TaskKey {
    TaskKey {
        cc_id: CC_ID,
        vdn: VDN,
        task_id: 9_100_000_000 + i as u128,
    }
}

/// When each stream saw its probe task's `totalCount` reach each value.
type Seen = Arc<Mutex<HashMap<usize, Vec<(u64, Instant)>>>>;

fn open_stream(api: &str, tasks: &[u128]) -> Sse {
    let query: Vec<String> = std::iter::once(format!("ccId={CC_ID}&vdn={VDN}"))
        .chain(tasks.iter().map(|t| format!("taskId={t}")))
        .collect();
    let query = query.join("&");
    let path = realstat::api::stream::PATH;
    let auth = client::authorization(
        AK,
        SK.as_bytes(),
        &client::timestamp_now(),
        &client::Request::get(api, path, Some(&query)),
    );
    Sse::open(
        api,
        &format!("{path}?{query}"),
        Some(&auth),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|r| panic!("stream refused: {} {}", r.status, r.body))
}

/// Reads one stream until it ends, noting every value of its probe task's `totalCount`.
fn read(mut sse: Sse, stream: usize, probe: String, seen: Seen) -> u64 {
    let mut events = 0;
    while let Some(e) = sse.next_event() {
        events += 1;
        let at = Instant::now();
        let Ok(row) = serde_json::from_str::<serde_json::Value>(&e.data) else {
            continue;
        };
        if row["taskId"].as_str() != Some(probe.as_str()) {
            continue;
        }
        let total = row["totalCount"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        seen.lock()
            .expect("lock")
            .entry(stream)
            .or_default()
            .push((total, at));
    }
    events
}

pub fn run(o: &Opts) {
    let streams: usize = o.num("streams", 100);
    let hot: usize = o.num("hot", 10);
    let tasks: usize = o.num("tasks", 100);
    let rate: f64 = o.num("rate", 1000.0);
    let rounds: usize = o.num("rounds", 30);
    let topic = format!("bench-stream-{}", now_ms());
    let (_kafka, brokers) = match o.opt("brokers") {
        Some(b) => {
            create_topic(&b, &topic, 8);
            (None, b)
        }
        None => {
            let k = EmbeddedKafka::start().expect("mock cluster");
            k.create_topic(&topic, 8).expect("topic");
            let b = k.bootstrap_servers().to_owned();
            (Some(k), b)
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = bench_settings(&brokers, &topic, &dir);
    settings.streams.max_per_key = streams;
    settings.streams.max_open = streams;
    settings.kafka.properties = o.props().into_iter().collect();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "0")
        .create()
        .expect("producer");

    system().block_on(async {
        let (app, _) = start_app(settings).await;
        let (stop, traffic) = background_traffic(&brokers, &topic, tasks, rate);
        let api = app.api.to_string();
        let seen: Seen = Arc::default();
        let hot_ids: Vec<u128> = (0..hot.min(tasks)).map(|i| task_key(i).task_id).collect();
        let readers: Vec<_> = (0..streams)
            .map(|i| {
                let mut ids = vec![probe_task(i).task_id];
                ids.extend(&hot_ids);
                let sse = open_stream(&api, &ids);
                let (seen, probe) = (seen.clone(), probe_task(i).task_id.to_string());
                std::thread::spawn(move || read(sse, i, probe, seen))
            })
            .collect();
        info(format!(
            "{streams} streams open, each on 1 probe task + {} busy tasks; {rate} events/s over {tasks} tasks",
            hot_ids.len()
        ));
        let sent = tokio::task::spawn_blocking(move || probe(&producer, &topic, streams, rounds))
            .await
            .expect("probes");
        stop.trigger();
        let _ = tokio::task::spawn_blocking(move || traffic.join()).await;
        app.stop().await;
        let mut events = 0;
        for r in readers {
            events += tokio::task::spawn_blocking(move || r.join().expect("reader"))
                .await
                .expect("join");
        }
        let seen = seen.lock().expect("lock");
        summarize(&sent, &seen, events);
    });
}

/// Produces `rounds` rounds of one probe event per stream, 400..700 ms apart; when each was sent.
fn probe(producer: &BaseProducer, topic: &str, streams: usize, rounds: usize) -> Vec<Vec<Instant>> {
    std::thread::sleep(Duration::from_secs(2));
    let mut sent: Vec<Vec<Instant>> = vec![Vec::new(); streams];
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for round in 0..rounds {
        for (i, times) in sent.iter_mut().enumerate() {
            let task = probe_task(i);
            let payload = realstat::events::encode_call(
                &task,
                &format!("probe-{round}"),
                realstat::events::CallState::Queued,
                now_ms(),
            );
            let key = task.to_string();
            times.push(Instant::now());
            producer
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .key(&key)
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)
                .expect("probe queued");
            producer.poll(Duration::ZERO);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pause = Instant::now() + Duration::from_millis(400 + x % 300);
        while Instant::now() < pause {
            producer.poll(Duration::from_millis(5));
        }
    }
    let _ = producer.flush(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    sent
}

/// A probe of round `r` arrived when its stream first showed `totalCount` of at least `r + 1`.
fn summarize(sent: &[Vec<Instant>], seen: &HashMap<usize, Vec<(u64, Instant)>>, events: u64) {
    let mut latencies = Vec::new();
    let mut missing = 0;
    for (i, times) in sent.iter().enumerate() {
        let rows = seen.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        for (round, &at) in times.iter().enumerate() {
            let want = round as u64 + 1;
            match rows.iter().find(|(n, _)| *n >= want) {
                Some((_, got)) => latencies.push(got.saturating_duration_since(at)),
                None => missing += 1,
            }
        }
    }
    latencies.sort();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let k = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[k - 1].as_secs_f64() * 1000.0
    };
    info(format!(
        "{} probes delivered, {missing} missing; {events} events read",
        latencies.len()
    ));
    info(format!(
        "probe to stream: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    ));
    report("stream_probes", latencies.len() as f64);
    report("stream_missing", f64::from(missing));
    report("stream_p50_ms", pct(0.5));
    report("stream_p99_ms", pct(0.99));
    report("stream_max_ms", pct(1.0));
    report("stream_events", events as f64);
}
