//! The embedded demo: with no Kafka configured, `realstat` starts librdkafka's mock cluster, a
//! traffic simulator producing to it, and a demo key whose secret is drawn at random on every
//! start. [`Demo::start`] hands startup the two things it needs from any source of events: the
//! brokers to read and the keys to check requests against.

use std::thread::JoinHandle;

use super::embedded::{EmbeddedError, EmbeddedKafka};
use super::simulate::{self, SimulateOptions};
use crate::auth::KeySet;
use crate::shutdown::Shutdown;

/// The access key of the demo. Its secret is random per start and printed.
pub const DEMO_AK: &str = "demo-ak";
/// Partitions of the demo topic.
const PARTITIONS: i32 = 4;

/// The running demo. Dropping it (also when startup fails half way) stops the simulator before
/// the broker goes away, so it does not keep producing into a closed socket.
pub struct Demo {
    // Field order is drop order: the simulator's guard first, then the broker.
    _simulator: Simulator,
    kafka: EmbeddedKafka,
    secret: String,
    topic: String,
    cc_id: u16,
}

struct Simulator {
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Demo {
    /// Starts the broker with `topic`, and the simulator producing to it for call center
    /// `cc_id`, until `shutdown` or until the demo is dropped.
    pub fn start(topic: &str, cc_id: u16, shutdown: &Shutdown) -> Result<Demo, EmbeddedError> {
        let secret = random_secret()?;
        let kafka = EmbeddedKafka::start()?;
        kafka.create_topic(topic, PARTITIONS)?;
        let stop = shutdown.child();
        let thread = {
            let (brokers, topic, stop) = (
                kafka.bootstrap_servers().to_owned(),
                topic.to_owned(),
                stop.clone(),
            );
            let opts = SimulateOptions {
                cc_id,
                ..SimulateOptions::default()
            };
            std::thread::Builder::new()
                .name("demo-simulator".into())
                .spawn(move || {
                    if let Err(e) = simulate::produce(&brokers, &topic, &[], opts, &stop) {
                        tracing::error!(error = %e, "demo simulator stopped");
                    }
                })
                .map_err(|e| EmbeddedError::Start(e.to_string()))?
        };
        Ok(Demo {
            _simulator: Simulator {
                stop,
                thread: Some(thread),
            },
            kafka,
            secret,
            topic: topic.to_owned(),
            cc_id,
        })
    }

    pub fn brokers(&self) -> &str {
        self.kafka.bootstrap_servers()
    }

    /// The one demo key, reading every VDN.
    pub fn keys(&self) -> KeySet {
        KeySet::single(DEMO_AK, self.secret.as_bytes())
    }

    pub fn credentials(&self) -> (&'static str, &str) {
        (DEMO_AK, &self.secret)
    }

    /// What the person at the terminal needs to query the demo. It holds the one-off secret, so
    /// it is printed to stdout, never logged.
    pub fn banner(&self, api_port: u16, admin_port: u16) -> String {
        let opts = SimulateOptions::default();
        format!(
            "\n  realstat demo: embedded Kafka at {brokers}, simulator producing to {topic:?}\n  \
             API       http://127.0.0.1:{api}{path}\n  \
             wallboard http://127.0.0.1:{api}{wallboard}?ccId={cc}&vdn={vdn}&taskIds={tasks}\n  \
             admin     http://127.0.0.1:{admin}/metrics  /health/ready\n  \
             demo key  AK={ak}  SK={sk}\n\n  \
             Open the wallboard in a browser and enter the demo key, or query a demo task (in\n  \
             another terminal, from the checkout):\n    \
             REALSTAT_SK={sk} cargo run --release -- query --url http://127.0.0.1:{api} --ak {ak} --cc-id {cc} --vdn {vdn} --task-id {task}\n  \
             or, with the binary: REALSTAT_SK=... realstat query ... (same flags)\n",
            brokers = self.brokers(),
            topic = self.topic,
            api = api_port,
            admin = admin_port,
            path = crate::api::PATH,
            wallboard = crate::wallboard::PATH,
            tasks = opts.tasks.join(","),
            ak = DEMO_AK,
            sk = self.secret,
            cc = self.cc_id,
            vdn = opts.vdn,
            task = opts.tasks.first().map(String::as_str).unwrap_or("1122104910"),
        )
    }
}

/// 32 random alphanumeric characters from the OS generator.
fn random_secret() -> Result<String, EmbeddedError> {
    use rand::{RngExt, SeedableRng};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
        .map_err(|e| EmbeddedError::Start(format!("no randomness for the demo secret: {e}")))?;
    Ok((0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect())
}

/// The demo banner's lines about the iSales callback on `port`: its URL with the demo's `token`
/// (none: the operator's tokens file is in force) and a command that feeds it as iSales would.
pub fn callback_banner(port: u16, token: Option<&str>) -> String {
    let token = token.unwrap_or("<a token of your tokens file>");
    let url = format!("http://127.0.0.1:{port}/isales/callresult/{token}");
    format!(
        "\n  callback  {url}\n  \
         iSales call results through the callback (vendor format, retries and duplicates):\n    \
         cargo run --release -- simulate --callback {url} --tasks 1122104920 --rate 5 --duplicates 0.2 --max-calls 200\n  \
         then query task 1122104920 as above.\n"
    )
}
