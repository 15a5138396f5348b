//! The end-to-end measurements of `scripts/bench`: each subcommand measures realstat next to the
//! limit of the stack it runs on, in the same run, and prints `BENCH <name> <value>` lines that
//! the script turns into its report. Run through `scripts/bench`; by hand:
//!
//! ```text
//! cargo build --release --example bench_load
//! B=target/release/examples/bench_load
//! $B broker   --topic t --partitions 128 --events 2000000   # mock cluster + data; prints BROKERS
//! $B produce  --brokers H:P --topic t --partitions 16 --events 2000000 --create
//! $B consume  --brokers H:P --topic t --events 2000000      # (a) bare librdkafka consumer
//! $B fold     --brokers H:P --topic t --events 2000000      # (b) realstat, cold start to ready
//! $B query                                                  # realstat vs bare actix-web
//! $B freshness [--brokers H:P]                              # produce -> visible in a response
//! $B restore                                                # 1M-call snapshot -> ready
//! $B stream  [--brokers H:P]                                # 100 live streams: probe -> client
//! $B bare    --body TEXT                                    # the bare handler alone, for wrk
//! ```
//!
//! Every address is loopback. Options: `--key value`; see each function for its defaults.

#[path = "../tests/support/sse.rs"]
mod sse;
#[path = "bench_load/stream.rs"]
mod stream;
#[path = "../benches/support/mod.rs"]
mod support;

use realstat::shutdown::Shutdown;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use realstat::config::Settings;
use realstat::dev::embedded::EmbeddedKafka;
use realstat::dev::simulate::SimulateOptions;
use realstat::ingest::kafka::{self, Role};
use realstat::log_position;
use realstat::metrics::Effect;
use realstat::snapshot::SnapshotDir;
use realstat::startup::Application;

use support::*;

struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("expected --option, got {k:?}"));
            let value = it
                .next()
                .unwrap_or_else(|| panic!("--{key} needs a value"))
                .clone();
            map.insert(key.to_owned(), value);
        }
        Opts(map)
    }

    fn str(&self, key: &str, default: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn opt(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    /// `--props k=v,k=v`: extra librdkafka properties (for experiments; none by default).
    fn props(&self) -> Vec<(String, String)> {
        self.0
            .get("props")
            .map(|s| {
                s.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.0.get(key) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("--{key} {v}: not a number")),
            None => default,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: bench_load <broker|produce|consume|fold|query|freshness|restore|stream> [--key value]...");
        std::process::exit(2);
    };
    let o = Opts::parse(&args[1..]);
    // Logging as `realstat serve` sets it up (RUST_LOG filters, default `info`), on stderr: the
    // service then pays for its request spans exactly as in production.
    realstat::telemetry::init(realstat::telemetry::LogFormat::Text);
    match cmd.as_str() {
        "broker" => broker(&o),
        "produce" => produce_cmd(&o),
        "consume" => consume(&o),
        "fold" => fold(&o),
        "query" => query(&o),
        "freshness" => freshness(&o),
        "restore" => restore(&o),
        "stream" => stream::run(&o),
        "offsets" => offsets(&o),
        "bare" => bare(&o),
        other => {
            eprintln!("unknown subcommand {other:?}");
            std::process::exit(2);
        }
    }
}

/// A result line for the script: `BENCH <name> <value>`.
fn report(name: &str, value: f64) {
    println!("BENCH {name} {value}");
    let _ = io::stdout().flush();
}

fn info(text: impl AsRef<str>) {
    println!("  {}", text.as_ref());
    let _ = io::stdout().flush();
}

/// The runtime `realstat serve` runs the application on (`src/main.rs`).
fn system() -> actix_web::rt::SystemRunner {
    actix_web::rt::System::new()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Kafka: producing the data set, the bare consumer
// ---------------------------------------------------------------------------------------------

/// Produces `n` simulated events (keyed by task, so the default partitioner spreads the tasks over
/// the partitions), as fast as the broker takes them. Returns the mean value size.
fn produce_events(brokers: &str, topic: &str, n: usize, tasks: usize, seed: u64) -> f64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097152")
        .set("message.timeout.ms", "600000")
        .create()
        .expect("producer");
    let started = Instant::now();
    let mut bytes = 0usize;
    for (i, ev) in EventStream::new(n, tasks, seed, now_ms()).enumerate() {
        bytes += ev.payload.len();
        let mut record = BaseRecord::<str, [u8]>::to(topic)
            .key(ev.key.as_str())
            .payload(ev.payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(600))
        .expect("every event delivered");
    let secs = started.elapsed().as_secs_f64();
    info(format!(
        "produced {n} events ({:.0} MB) in {secs:.1} s ({:.0} events/s)",
        bytes as f64 / 1e6,
        n as f64 / secs
    ));
    bytes as f64 / n.max(1) as f64
}

/// Partition ids of `topic` and the messages they hold (sum of high - low); panics if any
/// message was dropped (a low watermark above 0: the mock cluster's per-partition size limit).
fn topic_contents(brokers: &str, topic: &str) -> (Vec<i32>, i64, Duration) {
    let consumer = inspector(brokers);
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic exists");
    let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    parts.sort_unstable();
    let started = Instant::now();
    let mut total = 0;
    for &p in &parts {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        assert!(
            low == 0,
            "partition {p} lost its oldest messages (low watermark {low}): use more partitions or fewer events"
        );
        total += high - low;
    }
    (parts, total, started.elapsed())
}

/// Checks that the topic holds the `n` messages produced. By the end offsets the broker reports
/// when they add up (the mock cluster); else by reading the topic (tansu 0.6 reports the base
/// offset of a partition's last batch as its end offset, short of the real end).
fn check_contents(brokers: &str, topic: &str, n: usize) {
    let started = Instant::now();
    loop {
        let (parts, total, took) = topic_contents(brokers, topic);
        if total as usize == n {
            info(format!(
                "topic {topic}: {n} messages in {} partitions (end offsets of all partitions read in {:.0} ms)",
                parts.len(),
                took.as_secs_f64() * 1000.0
            ));
            return;
        }
        if started.elapsed() > Duration::from_secs(3) {
            let read: u64 = count_by_reading(brokers, topic).values().map(|c| c.0).sum();
            assert_eq!(
                read as usize, n,
                "the topic holds {read} messages, {n} were produced"
            );
            info(format!(
                "topic {topic}: {n} messages, but the broker's end offsets add up to {total} (they are short of the last batch of each partition)"
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = runtime()
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create_topics answered");
    for r in results {
        r.expect("topic created");
    }
}

/// Messages per partition, counted by reading the topic until it has been idle for 3 s.
fn count_by_reading(brokers: &str, topic: &str) -> std::collections::BTreeMap<i32, (u64, i64)> {
    let consumer = realstat_like_consumer(brokers, &[]);
    let (parts, _, _) = topic_contents_unchecked(brokers, topic);
    let mut tpl = TopicPartitionList::new();
    for (p, _, _) in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut counts = std::collections::BTreeMap::new();
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let e = counts.entry(m.partition()).or_insert((0u64, -1i64));
            e.0 += 1;
            e.1 = e.1.max(m.offset());
            idle = Instant::now();
        }
    }
    counts
}

fn topic_contents_unchecked(brokers: &str, topic: &str) -> (Vec<(i32, i64, i64)>, i64, Duration) {
    let consumer = inspector(brokers);
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut out = Vec::new();
    let started = Instant::now();
    let mut total = 0;
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            total += high - low;
            out.push((p.id(), low, high));
        }
    }
    out.sort_unstable();
    (out, total, started.elapsed())
}

/// `offsets`: diagnostics, the end offsets a broker reports next to what reading finds.
fn offsets(o: &Opts) {
    let brokers = o.opt("brokers").expect("--brokers");
    let topic = o.str("topic", "bench");
    let (parts, total, took) = topic_contents_unchecked(&brokers, &topic);
    let counts = count_by_reading(&brokers, &topic);
    for (p, low, high) in parts {
        let (n, last) = counts.get(&p).copied().unwrap_or((0, -1));
        info(format!(
            "partition {p}: low {low} high {high}; read {n} messages, last offset {last}"
        ));
    }
    info(format!(
        "sum of high - low: {total} (read in {:.0} ms)",
        took.as_secs_f64() * 1000.0
    ));
}

/// `broker`: starts the in-process mock cluster, fills a topic, prints `BROKERS <addr>` and
/// serves until killed. The data lives in this process, so the consumers measured against it
/// run in processes of their own, exactly as against a real broker.
fn broker(o: &Opts) {
    let topic = o.str("topic", "bench");
    let partitions: i32 = o.num("partitions", 128);
    let n: usize = o.num("events", 2_000_000);
    let tasks: usize = o.num("tasks", 10_000);
    let kafka = EmbeddedKafka::start().expect("mock cluster");
    kafka
        .create_topic(&topic, partitions)
        .expect("topic created");
    let brokers = kafka.bootstrap_servers().to_owned();
    let mean = produce_events(&brokers, &topic, n, tasks, 1);
    check_contents(&brokers, &topic, n);
    info(format!(
        "mock cluster: {n} events over {partitions} partitions, mean value {mean:.0} bytes"
    ));
    report("event_mean_bytes", mean);
    println!("BROKERS {brokers}");
    let _ = io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `produce`: fills a topic of an external broker (tansu), creating it first with `--create`.
fn produce_cmd(o: &Opts) {
    let brokers = o.opt("brokers").expect("--brokers");
    let topic = o.str("topic", "bench");
    let partitions: i32 = o.num("partitions", 16);
    let n: usize = o.num("events", 2_000_000);
    let tasks: usize = o.num("tasks", 10_000);
    if o.opt("create").is_some_and(|v| v != "0") {
        create_topic(&brokers, &topic, partitions);
    }
    let mean = produce_events(&brokers, &topic, n, tasks, 1);
    check_contents(&brokers, &topic, n);
    report("event_mean_bytes", mean);
}

/// realstat's own consumer settings (`ingest::kafka::client_config`), so that the baseline
/// differs from realstat only by what realstat does with the messages.
fn realstat_like_consumer(brokers: &str, extra: &[(String, String)]) -> BaseConsumer {
    kafka::client_config(brokers, extra, Role::Consumer)
        .create()
        .expect("consumer")
}

/// A client for metadata and end offsets, set up as realstat's end-offsets reader is.
fn inspector(brokers: &str) -> BaseConsumer {
    kafka::client_config(brokers, &[], Role::Watermarks)
        .create()
        .expect("consumer")
}

/// `consume` (a): a plain BaseConsumer assigned every partition from the beginning, counting
/// messages until it has all `--events`. Timed from creating the client, like (b).
fn consume(o: &Opts) {
    let brokers = o.opt("brokers").expect("--brokers");
    let topic = o.str("topic", "bench");
    let n: u64 = o.num("events", 2_000_000);
    let started = Instant::now();
    let consumer = realstat_like_consumer(&brokers, &o.props());
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    // `--refresh-secs S`: also do what realstat's loop does every 5 s, reading every
    // partition's end offsets (`fetch_watermarks`, one blocking round trip each) on the polling
    // thread, to see what that costs a consumer that does nothing else.
    let refresh = o
        .opt("refresh-secs")
        .map(|v| Duration::from_secs_f64(v.parse().expect("seconds")));
    let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    let mut last_refresh = Instant::now();
    let mut refresh_time = Duration::ZERO;
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < n {
        if let Some(every) = refresh {
            if last_refresh.elapsed() >= every {
                let t = Instant::now();
                for &p in &parts {
                    let _ = consumer.fetch_watermarks(&topic, p, Duration::from_secs(1));
                }
                refresh_time += t.elapsed();
                last_refresh = Instant::now();
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(e)) => eprintln!("consumer error: {e}"),
            None => assert!(
                started.elapsed() < Duration::from_secs(600),
                "only {count} of {n} messages after 10 minutes"
            ),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    info(format!(
        "bare consumer: {count} messages ({:.0} MB) in {secs:.2} s",
        bytes as f64 / 1e6
    ));
    if refresh.is_some() {
        info(format!(
            "of which {:.2} s reading end offsets",
            refresh_time.as_secs_f64()
        ));
    }
    report("consume_events_per_s", count as f64 / secs);
    report("consume_secs", secs);
}

fn bench_settings(brokers: &str, topic: &str, dir: &tempfile::TempDir) -> Settings {
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, KEYS_TOML).expect("keys file");
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        timezone: realstat::fold::Calendar::named(TIMEZONE).expect("known zone"),
        ..Settings::default()
    };
    s.kafka.brokers = Some(brokers.to_owned());
    s.kafka.topic = topic.to_owned();
    s.auth.keys_file = Some(keys);
    s.snapshot.dir = dir.path().join("data");
    // No periodic snapshot during a measurement (the final one is written after it).
    s.snapshot.interval = Duration::from_secs(3600);
    s
}

/// A running application, as `realstat serve` runs it (minus signal handling and logging).
struct Running {
    api: SocketAddr,
    app_store: Arc<realstat::fold::Store>,
    metrics: Arc<realstat::metrics::Metrics>,
    shutdown: realstat::shutdown::Shutdown,
    run: tokio::task::JoinHandle<()>,
}

/// Builds and spawns the application; returns once it is ready, with the time that took.
async fn start_app(settings: Settings) -> (Running, Duration) {
    start_app_at(settings, Instant::now()).await
}

async fn start_app_at(settings: Settings, started: Instant) -> (Running, Duration) {
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let readiness = app.readiness();
    let running_parts = (
        SocketAddr::from(([127, 0, 0, 1], app.api_port())),
        app.store(),
        app.metrics(),
        app.shutdown_handle(),
    );
    let run = tokio::spawn(async move {
        app.run_until_stopped().await.expect("clean stop");
    });
    while !readiness.is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "not ready after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let (api, app_store, metrics, shutdown) = running_parts;
    (
        Running {
            api,
            app_store,
            metrics,
            shutdown,
            run,
        },
        took,
    )
}

impl Running {
    async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.run.await;
    }
}

/// `fold` (b): realstat from a cold start (no snapshot) until ready, i.e. until it has folded
/// everything that was in the topic when it started.
fn fold(o: &Opts) {
    let brokers = o.opt("brokers").expect("--brokers");
    let topic = o.str("topic", "bench");
    let n: u64 = o.num("events", 2_000_000);
    let rss_before = proc_status_bytes("VmRSS");
    system().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = bench_settings(&brokers, &topic, &dir);
        settings.kafka.properties = o.props().into_iter().collect();
        let started = Instant::now();
        let (app, ready) = start_app_at(settings, started).await;
        // A broker may report end offsets short of the real end (tansu 0.6 reports the base
        // offset of the last batch): then "ready" comes early, so also wait for every event.
        while app.metrics.events_consumed() < n {
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "not all events consumed after 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = started.elapsed();
        if took > ready + Duration::from_millis(5) {
            info(format!(
                "ready after {:.2} s, but the last event consumed after {:.2} s (the broker's end offsets were short)",
                ready.as_secs_f64(),
                took.as_secs_f64()
            ));
        }
        let consumed = app.metrics.events_consumed();
        let changed = app.metrics.events_applied(Effect::Changed);
        let unchanged = app.metrics.events_applied(Effect::Unchanged);
        let secs = took.as_secs_f64();
        info(format!(
            "realstat: ready after {secs:.2} s; consumed {consumed} (changed {changed}, unchanged {unchanged}, rejected {}), {} tasks, {} calls",
            consumed - changed - unchanged,
            app.app_store.tasks_tracked(),
            app.app_store.calls_tracked()
        ));
        assert_eq!(consumed, n, "realstat consumed exactly the topic");
        report("fold_events_per_s", n as f64 / secs);
        report("fold_secs", secs);
        report("fold_calls", app.app_store.calls_tracked() as f64);
        report("fold_rss_growth_bytes", proc_status_bytes("VmRSS").saturating_sub(rss_before) as f64);
        report("fold_peak_rss_bytes", proc_status_bytes("VmHWM") as f64);
        app.stop().await;
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP: a keep-alive client, closed- and open-loop load
// ---------------------------------------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection: one request in flight at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes `request`, reads the response; returns the status, the body is in `self.body()`.
    fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, usize)> {
        self.stream.write_all(request)?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let mut head: Option<(usize, usize)> = None; // (body start, total length)
        loop {
            if let Some((start, total)) = head {
                if self.buf.len() >= total {
                    let status = std::str::from_utf8(self.buf.get(9..12).unwrap_or_default())
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    return Ok((status, start));
                }
            } else if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&self.buf[..end]);
                let len = headers
                    .split("\r\n")
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                head = Some((end + 4, end + 4 + len));
                continue;
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn body(&self, start: usize) -> &[u8] {
        &self.buf[start..]
    }
}

/// What one load run measured.
struct Load {
    requests: u64,
    errors: u64,
    secs: f64,
    /// Microseconds, sorted.
    latencies: Vec<u32>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn pct_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        f64::from(self.latencies[i - 1]) / 1000.0
    }

    fn summary(&self) -> String {
        format!(
            "{:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, {} errors",
            self.rps(),
            self.pct_ms(0.5),
            self.pct_ms(0.99),
            self.pct_ms(0.999),
            self.errors
        )
    }
}

/// What a response must contain to count as a success.
#[derive(Clone, Copy)]
struct Expect {
    status: u16,
    body_contains: &'static [u8],
}

/// Runs `threads` connections, each sending requests from `pool` (round robin from its own
/// offset). `rate == None`: closed loop, each connection sends the next request as soon as the
/// previous answer is in. `Some(r)`: open loop at `r` requests/s in total, each request at its
/// scheduled time and its latency counted from that time (so a slow answer also delays, and is
/// charged for, the requests queued behind it: no coordinated omission).
fn load(
    addr: SocketAddr,
    pool: &Arc<Vec<Vec<u8>>>,
    threads: usize,
    rate: Option<f64>,
    warmup: Duration,
    measure: Duration,
    expect: Expect,
) -> Load {
    let start = Instant::now() + Duration::from_millis(50);
    let from = start + warmup;
    let until = from + measure;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::connect(addr).expect("connect");
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                let (mut ok, mut errors) = (0u64, 0u64);
                let interval = rate.map(|r| Duration::from_secs_f64(threads as f64 / r));
                // Stagger the open-loop schedules of the threads over one interval.
                let mut next =
                    start + interval.map_or(Duration::ZERO, |i| i * t as u32 / threads as u32);
                let mut i = t * 7919;
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_micros(200));
                }
                loop {
                    let sent = match interval {
                        Some(iv) => {
                            let now = Instant::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            }
                            let at = next;
                            next += iv;
                            at
                        }
                        None => Instant::now(),
                    };
                    if sent >= until {
                        break;
                    }
                    let req = &pool[i % pool.len()];
                    i += 1;
                    let result = conn.exchange(req);
                    let done = Instant::now();
                    let good = match &result {
                        Ok((status, start)) => {
                            *status == expect.status
                                && (i % 1024 != 1
                                    || find(conn.body(*start), expect.body_contains).is_some())
                        }
                        Err(_) => false,
                    };
                    if sent >= from && done <= until {
                        if good {
                            ok += 1;
                            lat.push((done - sent).as_micros().min(u128::from(u32::MAX)) as u32);
                        } else {
                            errors += 1;
                        }
                    }
                    if result.is_err() {
                        conn = Conn::connect(addr).expect("reconnect");
                    }
                }
                (ok, errors, lat)
            })
        })
        .collect();
    let mut out = Load {
        requests: 0,
        errors: 0,
        secs: measure.as_secs_f64(),
        latencies: Vec::new(),
    };
    for h in handles {
        let (ok, errors, lat) = h.join().expect("load thread");
        out.requests += ok;
        out.errors += errors;
        out.latencies.extend(lat);
    }
    out.latencies.sort_unstable();
    out
}

/// The bare baseline: the same actix-web stack, a handler on the same path that reads the body
/// and answers a fixed body of the size realstat answers.
async fn bare_server(
    path: &'static str,
    body: Vec<u8>,
) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let body = web::Data::new(web::Bytes::from(body));
    let server = HttpServer::new(move || {
        App::new().app_data(body.clone()).route(
            path,
            web::post().to(|_req: web::Bytes, body: web::Data<web::Bytes>| async move {
                HttpResponse::Ok()
                    .insert_header((actix_web::http::header::CONTENT_TYPE, CONTENT_TYPE))
                    .body(body.get_ref().clone())
            }),
        )
    })
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = *server.addrs().first().expect("bound address");
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (addr, handle)
}

/// `bare`: the bare baseline alone, on the realstatistic path, answering `--body`, for an
/// external load tool (scripts/bench-http runs wrk against it and against realstat). Prints
/// `ADDR host:port` and serves until killed.
fn bare(o: &Opts) {
    let body = o.str("body", "{}").into_bytes();
    system().block_on(async move {
        let (addr, _handle) = bare_server(realstat::api::PATH, body).await;
        println!("ADDR {addr}");
        let _ = io::stdout().flush();
        std::future::pending::<()>().await;
    });
}

/// Starts the simulator producing live traffic (ts = now) at about `events_per_s`.
fn background_traffic(
    brokers: &str,
    topic: &str,
    tasks: usize,
    events_per_s: f64,
) -> (Shutdown, std::thread::JoinHandle<()>) {
    let stop = Shutdown::new();
    let opts = SimulateOptions {
        cc_id: CC_ID,
        vdn: VDN,
        tasks: (0..tasks).map(task_id).collect(),
        calls_per_second: events_per_s / 3.6,
        answer_ratio: 0.55,
        planned_per_task: 2_000,
        duplicate_ratio: 0.01,
        max_calls: None,
        seed: 99,
    };
    let (brokers, topic, flag) = (brokers.to_owned(), topic.to_owned(), stop.clone());
    let thread = std::thread::spawn(move || {
        realstat::dev::simulate::produce(&brokers, &topic, &[], opts, &flag)
            .expect("background traffic");
    });
    (stop, thread)
}

/// `query`: realstat (while it ingests live traffic) against a bare actix-web handler with the
/// same response size, closed loop, alternating `--rounds` times; then realstat open loop at
/// half its best throughput. `--batch N`: the same with batch requests of N task ids each (the
/// bare handler then answers the batch path with a body of the size of realstat's answer).
fn query(o: &Opts) {
    let batch: usize = o.num("batch", 0);
    let path = if batch > 0 {
        realstat::api::batch::PATH
    } else {
        realstat::api::PATH
    };
    let request = move |host: &str, i: usize, tasks: usize| {
        if batch > 0 {
            signed_post(host, path, &batch_body(i, batch, tasks))
        } else {
            signed_request(host, i % tasks)
        }
    };
    let preload: usize = o.num("preload", 200_000);
    let tasks: usize = o.num("tasks", 10_000);
    let mix: usize = o.num("mix", 1_000);
    let threads: usize = o.num("connections", 16);
    let warmup = Duration::from_secs_f64(o.num("warmup", 2.0));
    let measure = Duration::from_secs_f64(o.num("secs", 8.0));
    let rounds: usize = o.num("rounds", 2);
    let live_rate: f64 = o.num("live-rate", 1000.0);
    let only = o.opt("only");
    // Experiments: `--lockout-threshold 0` turns the lockout table off.
    let lockout: Option<u32> = o
        .opt("lockout-threshold")
        .map(|v| v.parse().expect("a number"));
    let topic = "bench-query";
    let kafka = EmbeddedKafka::start().expect("mock cluster");
    kafka.create_topic(topic, 8).expect("topic");
    let brokers = kafka.bootstrap_servers().to_owned();
    produce_events(&brokers, topic, preload, tasks, 3);

    system().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = bench_settings(&brokers, topic, &dir);
        if let Some(t) = lockout {
            settings.auth.lockout_threshold = t;
        }
        let (app, _) = start_app(settings).await;
        info(format!(
            "realstat ready: {} tasks, {} calls; live traffic at ~{live_rate:.0} events/s; {threads} connections, mix of {mix} tasks",
            app.app_store.tasks_tracked(),
            app.app_store.calls_tracked()
        ));
        let (stop, producer) = background_traffic(&brokers, topic, tasks, live_rate);

        let host = app.api.to_string();
        // Signed now; the server checks each signature (and its ±15 min clock window) on every
        // request. Pre-signing keeps the client's CPU (which shares the 2 cores) for I/O.
        let pool: Arc<Vec<Vec<u8>>> =
            Arc::new((0..mix).map(|i| request(&host, i, tasks)).collect());
        let mut probe = Conn::connect(app.api).expect("connect");
        let (status, start) = probe.exchange(&pool[0]).expect("first answer");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&probe.buf));
        let body = probe.body(start).to_vec();
        info(format!("realstat answer ({} bytes): {}", body.len(), String::from_utf8_lossy(&body)));
        drop(probe);
        let (bare_addr, bare) = bare_server(path, body).await;
        let bare_host = bare_addr.to_string();
        let bare_pool: Arc<Vec<Vec<u8>>> =
            Arc::new((0..mix).map(|i| request(&bare_host, i, tasks)).collect());

        let ok = Expect {
            status: 200,
            body_contains: b"\"resultCode\":\"0100000\"",
        };
        let closed = |addr: SocketAddr, pool: &Arc<Vec<Vec<u8>>>| {
            let p = pool.clone();
            tokio::task::spawn_blocking(move || load(addr, &p, threads, None, warmup, measure, ok))
        };
        if only.as_deref() == Some("realstat") {
            // For profiling the service alone: one closed-loop run, nothing else.
            let real = closed(app.api, &pool).await.expect("load");
            info(format!("realstat: {}", real.summary()));
            report("query_realstat_rps", real.rps());
        } else {
            let mut best_real: Option<Load> = None;
            let mut best_bare: Option<Load> = None;
            for round in 1..=rounds {
                let real = closed(app.api, &pool).await.expect("load");
                info(format!("round {round} realstat: {}", real.summary()));
                let b = closed(bare_addr, &bare_pool).await.expect("load");
                info(format!("round {round} bare:     {}", b.summary()));
                if best_real.as_ref().is_none_or(|x| real.rps() > x.rps()) {
                    best_real = Some(real);
                }
                if best_bare.as_ref().is_none_or(|x| b.rps() > x.rps()) {
                    best_bare = Some(b);
                }
            }
            let real = best_real.expect("at least one round");
            let b = best_bare.expect("at least one round");
            for (name, l) in [("query_realstat", &real), ("query_bare", &b)] {
                report(&format!("{name}_rps"), l.rps());
                report(&format!("{name}_p50_ms"), l.pct_ms(0.5));
                report(&format!("{name}_p99_ms"), l.pct_ms(0.99));
                report(&format!("{name}_p999_ms"), l.pct_ms(0.999));
                report(&format!("{name}_errors"), l.errors as f64);
            }

            // Open loop at half of realstat's maximum (the target's rate), and at a quarter (where
            // the machine is not yet the limit), against realstat and, for the floor this machine
            // sets at that rate, against the bare handler.
            let open_threads = threads.clamp(1, 8);
            let m = measure.max(Duration::from_secs(5));
            for (share, label) in [(2.0, "half"), (4.0, "quarter")] {
                let rate = real.rps() / share;
                let open = |addr: SocketAddr, pool: &Arc<Vec<Vec<u8>>>| {
                    let p = pool.clone();
                    tokio::task::spawn_blocking(move || {
                        load(addr, &p, open_threads, Some(rate), warmup, m, ok)
                    })
                };
                let at_rate = open(app.api, &pool).await.expect("load");
                info(format!(
                    "realstat open loop at {rate:.0} req/s ({open_threads} connections): {}",
                    at_rate.summary()
                ));
                let bare_at_rate = open(bare_addr, &bare_pool).await.expect("load");
                info(format!(
                    "bare open loop at {rate:.0} req/s ({open_threads} connections):     {}",
                    bare_at_rate.summary()
                ));
                report(&format!("query_{label}_rate"), rate);
                for (name, l) in [
                    (format!("query_{label}"), &at_rate),
                    (format!("query_bare_{label}"), &bare_at_rate),
                ] {
                    report(&format!("{name}_achieved_rps"), l.rps());
                    report(&format!("{name}_p50_ms"), l.pct_ms(0.5));
                    report(&format!("{name}_p99_ms"), l.pct_ms(0.99));
                    report(&format!("{name}_p999_ms"), l.pct_ms(0.999));
                }
            }
        }
        report("query_peak_rss_bytes", proc_status_bytes("VmHWM") as f64);

        stop.trigger();
        let _ = tokio::task::spawn_blocking(move || producer.join()).await;
        bare.stop(true).await;
        app.stop().await;
    });
}

// ---------------------------------------------------------------------------------------------
// Freshness
// ---------------------------------------------------------------------------------------------

fn total_count(body: &[u8]) -> Option<u64> {
    let key = b"\"totalCount\":\"";
    let at = find(body, key)? + key.len();
    let digits: &[u8] = &body[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// `freshness`: with live traffic at `--rate` events/s, produces a probe (a new call of a probe
/// task, `ts` = now) and polls the realstatistic endpoint every `--poll-us` until the task's
/// totalCount changes; the delay is from handing the event to the producer to the answer that
/// shows it. `--brokers`: an external broker (else the in-process mock cluster).
/// `--props`: extra librdkafka properties for realstat's consumer (default: none).
fn freshness(o: &Opts) {
    let probes: usize = o.num("probes", 100);
    let rate: f64 = o.num("rate", 1000.0);
    let poll = Duration::from_micros(o.num("poll-us", 1000));
    let tasks: usize = o.num("tasks", 1000);
    let topic = format!("bench-fresh-{}", now_ms());
    let partitions: i32 = o.num("partitions", 8);
    let (_kafka, brokers) = match o.opt("brokers") {
        Some(b) => {
            create_topic(&b, &topic, partitions);
            (None, b)
        }
        None => {
            let k = EmbeddedKafka::start().expect("mock cluster");
            k.create_topic(&topic, partitions).expect("topic");
            let b = k.bootstrap_servers().to_owned();
            (Some(k), b)
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = bench_settings(&brokers, &topic, &dir);
    settings.kafka.properties = o.props().into_iter().collect();
    let probe_producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "0")
        .create()
        .expect("producer");

    system().block_on(async {
        let (app, _) = start_app(settings).await;
        let (stop, producer) = background_traffic(&brokers, &topic, tasks, rate);
        // Probe task: not among the simulated ones.
        let probe_task = realstat::events::ids::TaskKey {
            cc_id: CC_ID,
            vdn: VDN,
            task_id: 9_000_000_001,
        };
        let host = app.api.to_string();
        let api = app.api;
        let probe_topic = topic.clone();
        // The baseline: a bare consumer with realstat's settings, noting when each probe
        // message reaches the application (`probe-<n>-` in the call id).
        let seen: Arc<std::sync::Mutex<HashMap<usize, Instant>>> = Arc::default();
        let baseline = {
            let (seen, stop, brokers, topic, props) =
                (seen.clone(), stop.clone(), brokers.clone(), topic.clone(), o.props());
            std::thread::spawn(move || {
                let consumer = realstat_like_consumer(&brokers, &props);
                let mut tpl = TopicPartitionList::new();
                for p in 0..partitions {
                    tpl.add_partition_offset(&topic, p, Offset::End).expect("partition");
                }
                consumer.assign(&tpl).expect("assign");
                while !stop.is_triggered() {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                        let at = Instant::now();
                        let Some(payload) = m.payload() else { continue };
                        if let Some(i) = find(payload, b"probe-").and_then(|k| {
                            let rest = &payload[k + 6..];
                            let end = rest.iter().position(|b| !b.is_ascii_digit())?;
                            std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
                        }) {
                            seen.lock().expect("lock").entry(i).or_insert(at);
                        }
                    }
                }
            })
        };
        let delays = tokio::task::spawn_blocking(move || {
            let mut conn = Conn::connect(api).expect("connect");
            let body = format!(r#"{{"ccId":{CC_ID},"vdn":{VDN},"taskId":"{}"}}"#, probe_task.task_id);
            let request = signed_request_with_body(&host, &body);
            let count = |conn: &mut Conn| -> u64 {
                let (status, start) = conn.exchange(&request).expect("answer");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&conn.buf));
                total_count(conn.body(start)).expect("totalCount in the answer")
            };
            // Let the live traffic settle in first.
            std::thread::sleep(Duration::from_secs(2));
            let mut delays = Vec::with_capacity(probes);
            let mut sent_at = Vec::with_capacity(probes);
            let mut timeouts = 0;
            let mut rng_state = 0x2545_F491_4F6C_DD1D_u64;
            for i in 0..probes {
                let before = count(&mut conn);
                let payload = realstat::events::encode_call(
                    &probe_task,
                    &format!("probe-{i}-{}", now_ms()),
                    realstat::events::CallState::Queued,
                    now_ms(),
                );
                let key = probe_task.to_string();
                let sent = Instant::now();
                sent_at.push(sent);
                probe_producer
                    .send(
                        BaseRecord::<str, str>::to(&probe_topic)
                            .key(key.as_str())
                            .payload(payload.as_str()),
                    )
                    .map_err(|(e, _)| e)
                    .expect("probe queued");
                probe_producer.poll(Duration::ZERO);
                loop {
                    if count(&mut conn) != before {
                        delays.push(sent.elapsed().as_micros() as u32);
                        break;
                    }
                    if sent.elapsed() > Duration::from_secs(5) {
                        timeouts += 1;
                        break;
                    }
                    probe_producer.poll(Duration::ZERO);
                    std::thread::sleep(poll);
                }
                // A random pause of 0..0.5 s, so that the probes fall at random phases of the
                // consumer's fetch cycle (`fetch.wait.max.ms`, 500 ms by default) instead of
                // locking onto it.
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                std::thread::sleep(Duration::from_micros(rng_state % 500_000));
            }
            let _ = probe_producer.flush(Duration::from_secs(5));
            (delays, timeouts, sent_at)
        })
        .await
        .expect("probe thread");
        let (mut delays, timeouts, sent_at) = delays;
        stop.trigger();
        let _ = tokio::task::spawn_blocking(move || (producer.join(), baseline.join())).await;
        let mut base: Vec<u32> = {
            let seen = seen.lock().expect("lock");
            sent_at
                .iter()
                .enumerate()
                .filter_map(|(i, s)| seen.get(&i).map(|r| r.saturating_duration_since(*s).as_micros() as u32))
                .collect()
        };
        base.sort_unstable();
        let base = Load {
            requests: base.len() as u64,
            errors: 0,
            secs: 1.0,
            latencies: base,
        };
        info(format!(
            "bare consumer, same probes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} seen)",
            base.pct_ms(0.5),
            base.pct_ms(0.99),
            base.pct_ms(1.0),
            base.requests,
            sent_at.len()
        ));
        report("fresh_bare_p50_ms", base.pct_ms(0.5));
        report("fresh_bare_p99_ms", base.pct_ms(0.99));
        delays.sort_unstable();
        let load = Load {
            requests: delays.len() as u64,
            errors: timeouts,
            secs: 1.0,
            latencies: delays,
        };
        info(format!(
            "freshness over {} probes at ~{rate:.0} events/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} not visible within 5 s",
            load.requests,
            load.pct_ms(0.5),
            load.pct_ms(0.99),
            load.pct_ms(1.0),
            timeouts
        ));
        report("fresh_p50_ms", load.pct_ms(0.5));
        report("fresh_p99_ms", load.pct_ms(0.99));
        report("fresh_max_ms", load.pct_ms(1.0));
        report("fresh_timeouts", timeouts as f64);
        app.stop().await;
    });
}

// ---------------------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------------------

/// `restore`: a snapshot of `--calls` calls over `--tasks` tasks is written with the production
/// writer, then (1) loaded into a fresh store (read, checksum, decode, rebuild counters), best of
/// `--rounds`, and (2) used by a whole application start against an empty topic, timed from
/// `Application::build` to ready.
fn restore(o: &Opts) {
    let tasks: usize = o.num("tasks", 10_000);
    let calls: usize = o.num("calls", 1_000_000);
    let rounds: usize = o.num("rounds", 3);
    let topic = "bench-restore";
    let partitions = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = SnapshotDir::new(dir.path().join("data"), 3);
    {
        let store = synthetic_store(tasks, calls / tasks.max(1));
        let positions = (0..partitions)
            .map(|p| (log_position::Partition(p), log_position::Offset(0)))
            .collect();
        let w = snapshots
            .write(&store, &positions, topic)
            .expect("snapshot written");
        info(format!(
            "snapshot of {} calls over {} tasks: {} bytes ({:.1} per call), written in {:.0} ms",
            store.calls_tracked(),
            store.tasks_tracked(),
            w.bytes,
            w.bytes as f64 / store.calls_tracked() as f64,
            w.duration.as_secs_f64() * 1000.0
        ));
        report("snapshot_bytes", w.bytes as f64);
        report("snapshot_write_ms", w.duration.as_secs_f64() * 1000.0);
    }
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let store = new_store();
        let started = Instant::now();
        let r = snapshots
            .restore(&store, topic)
            .expect("restore")
            .expect("a snapshot");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(store.calls_tracked() as usize, calls / tasks.max(1) * tasks);
        info(format!(
            "restore into a fresh store: {:.0} ms ({} bytes)",
            secs * 1000.0,
            r.bytes
        ));
        best = best.min(secs);
    }
    report("restore_store_ms", best * 1000.0);

    let kafka = EmbeddedKafka::start().expect("mock cluster");
    kafka.create_topic(topic, partitions).expect("topic");
    let brokers = kafka.bootstrap_servers().to_owned();
    system().block_on(async {
        let keys_dir = tempfile::tempdir().expect("tempdir");
        let mut settings = bench_settings(&brokers, topic, &keys_dir);
        settings.snapshot.dir = dir.path().join("data");
        let (app, took) = start_app(settings).await;
        info(format!(
            "application start with the snapshot, empty topic: ready after {:.0} ms ({} calls)",
            took.as_secs_f64() * 1000.0,
            app.app_store.calls_tracked()
        ));
        report("restore_ready_ms", took.as_secs_f64() * 1000.0);
        app.stop().await;
    });
}
