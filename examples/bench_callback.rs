//! The iSales callback's throughput and freshness (docs/BENCHMARKS.md, "Callback"), next to the
//! limit of the stack in the same run:
//!
//! - `throughput`: records/s acknowledged by realstat's callback (pushes of `--batch` records
//!   from `--clients` concurrent clients over HTTP, each waiting for its answer), and records/s
//!   acknowledged by a bare rdkafka producer sending the same events with the same settings
//!   (`acks=all`, idempotent) in batches of the same size from the same number of tasks, each
//!   waiting for all its acknowledgements: what realstat's HTTP, parsing and mapping cost.
//! - `latency`: push-to-visible, one record per push, from sending the push to the call being in
//!   the replica's store (its answer counts it): p50 and p99.
//!
//! ```text
//! cargo build --release --example bench_callback
//! target/release/examples/bench_callback [--brokers H:P] [--records 20000] [--batch 100] \
//!     [--clients 8] [--probes 300]
//! ```
//! Without `--brokers`, librdkafka's mock cluster. Prints `BENCH <name> <value>` lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use realstat::callback::mapping::map_record;
use realstat::callback::tokens::TokenGrant;
use realstat::config::Settings;
use realstat::dev::embedded::EmbeddedKafka;
use realstat::events::ids::TaskKey;
use realstat::fold::{Calendar, TimeZones};
use realstat::startup::Application;

const TOKEN: &str = "bench-callback-token-0123456789";
const TOKENS: &str =
    "[[token]]\nvalue = \"bench-callback-token-0123456789\"\ncc_id = 89\nvdns = \"*\"\n";
const ZONE: &str = "Asia/Shanghai";

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("--{name} {v}")))
        .unwrap_or(default)
}

fn report(name: &str, value: f64) {
    println!("BENCH {name} {value:.1}");
}

/// Vendor record `i` of campaign `campaign`, a minute ago in the tenant's zone.
fn record(campaign: u64, i: usize, when: &str) -> serde_json::Value {
    serde_json::json!({
        "campaignId": campaign.to_string(), "sessionId": format!("s{i}"), "called": "13800000000",
        "callTimeStr": when, "callStatus": 5 + (i % 2), "failCode": "00601", "vdnId": 92,
        "callId": format!("bench-{campaign}-{i}"), "customField": "", "recordPath": "",
    })
}

fn when() -> String {
    let tz = jiff::tz::TimeZone::get(ZONE).expect("zone");
    jiff::Timestamp::now()
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn main() {
    let records: usize = arg("records", 20_000);
    let batch: usize = arg("batch", 100);
    let clients: usize = arg("clients", 8);
    let probes: usize = arg("probes", 300);
    let mock = std::env::args()
        .all(|a| a != "--brokers")
        .then(|| EmbeddedKafka::start().expect("mock cluster"));
    let brokers = mock
        .as_ref()
        .map(|k| k.bootstrap_servers().to_owned())
        .unwrap_or_else(|| arg("brokers", String::new()));
    let topic = format!("bench-callback-{}", std::process::id());
    create_topic(mock.as_ref(), &brokers, &topic);
    let rt = actix_web::rt::System::new();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = Application::build(settings(&brokers, &topic, &dir))
            .await
            .expect("builds");
        let addr = format!("127.0.0.1:{}", app.callback_port().expect("callback on"));
        let store = app.store();
        let stop = app.shutdown_handle();
        let run = tokio::spawn(async move { app.run_until_stopped().await.expect("clean stop") });
        // The bare producer runs beside the same replica (which folds what both write), so the
        // two share the machine alike.
        // Both paths warmed first (connections, metadata, producer ids), outside the timing.
        through_callback(&addr, batch, batch, 1).await;
        let bare = bare_producer(&brokers, &topic, records, batch, clients).await;
        report("callback_bare_producer_records_per_s", bare);
        let acked = through_callback(&addr, records, batch, clients).await;
        report("callback_acknowledged_records_per_s", acked);
        report("callback_ratio_to_bare_percent", 100.0 * acked / bare);
        let (p50, p99) = push_to_visible(&addr, store, probes).await;
        report("callback_push_to_visible_p50_ms", p50);
        report("callback_push_to_visible_p99_ms", p99);
        stop.trigger();
        let _ = run.await;
    });
}

fn create_topic(mock: Option<&EmbeddedKafka>, brokers: &str, topic: &str) {
    if let Some(k) = mock {
        k.create_topic(topic, 8).expect("topic");
        return;
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let new = NewTopic::new(topic, 8, TopicReplication::Fixed(1));
    rt.block_on(admin.create_topics(&[new], &AdminOptions::new()))
        .expect("created");
}

fn settings(brokers: &str, topic: &str, dir: &tempfile::TempDir) -> Settings {
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("file written");
        path
    };
    let mut s = Settings::default();
    s.callback.listen = Some("127.0.0.1:0".into());
    s.callback.tokens_file = Some(file("tokens.toml", TOKENS));
    s.auth.keys_file = Some(file(
        "keys.toml",
        "[[key]]\nak = \"benchak\"\nsk = \"benchSecretKey-0123456789\"\nvdns = \"*\"\n",
    ));
    s.timezone = realstat::fold::Calendar::named(ZONE).expect("zone");
    (s.listen, s.admin_listen) = ("127.0.0.1:0".into(), "127.0.0.1:0".into());
    (s.kafka.brokers, s.kafka.topic) = (Some(brokers.to_owned()), topic.to_owned());
    s.snapshot.dir = dir.path().join("data");
    s.snapshot.interval = Duration::from_secs(3600);
    s
}

/// The same events as the callback writes, from `clients` tasks, `batch` at a time, each batch
/// acknowledged (`acks=all`, idempotent) before the task sends its next.
async fn bare_producer(
    brokers: &str,
    topic: &str,
    records: usize,
    batch: usize,
    clients: usize,
) -> f64 {
    let producer: FutureProducer<
        rdkafka::client::DefaultClientContext,
        realstat::callback::producer::TokioRuntime,
    > = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let grant = TokenGrant {
        index: 1,
        cc_id: 89,
        vdns: realstat::auth::Scope::All,
    };
    let zone = TimeZones::single(Calendar::named(ZONE).expect("zone"));
    let t = when();
    let events: Vec<_> = (0..records)
        .map(|i| {
            let raw = serde_json::value::to_raw_value(&record(1, i, &t)).expect("json");
            map_record(&raw, &grant, &zone).expect("valid")
        })
        .collect();
    let events = Arc::new(events);
    for p in events[..batch.min(records)]
        .iter()
        .map(|m| {
            let key = m.key.as_deref().unwrap_or_default();
            producer
                .send_result(FutureRecord::to(topic).key(key).payload(&m.payload))
                .map_err(|(e, _)| e)
                .expect("queued")
        })
        .collect::<Vec<_>>()
    {
        p.await
            .expect("not cancelled")
            .expect("acknowledged (warm-up)");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (producer, events, topic) = (producer.clone(), events.clone(), topic.to_owned());
        tasks.push(tokio::spawn(async move {
            for chunk in events.chunks(batch).skip(c).step_by(clients) {
                let pending: Vec<_> = chunk
                    .iter()
                    .map(|m| {
                        let key = m.key.as_deref().unwrap_or_default();
                        producer
                            .send_result(FutureRecord::to(&topic).key(key).payload(&m.payload))
                            .map_err(|(e, _)| e)
                            .expect("queued")
                    })
                    .collect();
                for p in pending {
                    p.await.expect("not cancelled").expect("acknowledged");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    records as f64 / started.elapsed().as_secs_f64()
}

/// `clients` threads pushing `batch` records per push over keep-alive HTTP.
async fn through_callback(addr: &str, records: usize, batch: usize, clients: usize) -> f64 {
    let t = when();
    let bodies: Vec<String> = (0..records)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|c| {
            serde_json::Value::Array(c.iter().map(|&i| record(2, i, &t)).collect()).to_string()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let url = format!("http://{addr}/isales/callresult/{TOKEN}");
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (bodies, url) = (bodies.clone(), url.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for body in bodies.iter().skip(c).step_by(clients) {
                    let r = agent.post(&url).send(body.as_str()).expect("answered");
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        handles.into_iter().for_each(|h| h.join().expect("client"))
    })
    .await
    .expect("join");
    records as f64 / started.elapsed().as_secs_f64()
}

/// One record per push; the time until the store counts it.
async fn push_to_visible(
    addr: &str,
    store: Arc<realstat::fold::Store>,
    probes: usize,
) -> (f64, f64) {
    let url = format!("http://{addr}/isales/callresult/{TOKEN}");
    let task = TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 3,
    };
    let ms = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut ms = Vec::with_capacity(probes);
        for i in 0..probes {
            let day = store
                .calendar()
                .day_of(jiff::Timestamp::now().as_millisecond());
            let before = store.stats(&task, day).total;
            let body = serde_json::Value::Array(vec![record(3, i, &when())]).to_string();
            let sent = Instant::now();
            let r = agent.post(&url).send(body.as_str()).expect("answered");
            assert_eq!(r.status(), 200);
            while store.stats(&task, day).total == before {
                assert!(sent.elapsed() < Duration::from_secs(10), "never visible");
                std::thread::sleep(Duration::from_micros(100));
            }
            ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        ms
    })
    .await
    .expect("join");
    let mut sorted = ms;
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    (at(0.5), at(0.99))
}
