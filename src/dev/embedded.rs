//! The embedded Kafka: librdkafka's in-process mock cluster, for the demo and for fast tests.
//!
//! The mock cluster is `!Send`, so it lives on a thread of its own; this handle, which is `Send`,
//! talks to it over a channel. Its brokers listen on real loopback sockets, so everything else
//! (consumer, producer, simulator) uses it exactly as it would a real broker.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot start the embedded Kafka: {0}")]
    Start(String),
    #[error("embedded Kafka: {0}")]
    Command(String),
}

/// librdkafka's broker id for "every broker of the mock cluster".
const ALL_BROKERS: i32 = -1;

enum Command {
    CreateTopic {
        topic: String,
        partitions: i32,
        reply: mpsc::Sender<Result<(), String>>,
    },
    /// Take every broker down (`up == false`) or bring them back.
    SetBrokers {
        up: bool,
        reply: mpsc::Sender<Result<(), String>>,
    },
}

pub struct EmbeddedKafka {
    bootstrap_servers: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Starts a one-broker mock cluster.
    pub fn start() -> Result<Self, EmbeddedError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Serve commands until the handle is dropped (the sender closes).
                while let Ok(cmd) = cmd_rx.recv() {
                    match cmd {
                        Command::CreateTopic {
                            topic,
                            partitions,
                            reply,
                        } => {
                            let r = cluster
                                .create_topic(&topic, partitions, 1)
                                .map_err(|e| e.to_string());
                            let _ = reply.send(r);
                        }
                        Command::SetBrokers { up, reply } => {
                            let r = if up {
                                cluster.broker_up(ALL_BROKERS)
                            } else {
                                cluster.broker_down(ALL_BROKERS)
                            };
                            let _ = reply.send(r.map_err(|e| e.to_string()));
                        }
                    }
                }
            })
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let bootstrap_servers = ready_rx
            .recv()
            .map_err(|e| EmbeddedError::Start(e.to_string()))?
            .map_err(EmbeddedError::Start)?;
        Ok(EmbeddedKafka {
            bootstrap_servers,
            commands: Some(cmd_tx),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Creates a topic of `partitions` partitions (a count, as librdkafka takes it: ids are then
    /// `0..partitions`). Here because the mock broker does not implement the CreateTopics API.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        self.call(|reply| Command::CreateTopic {
            topic: topic.to_owned(),
            partitions,
            reply,
        })
    }

    /// Simulates a broker outage: connections are cut and refused until [`Self::brokers_up`].
    /// (For fault tests: a real broker cannot be stopped on demand without losing its log here.)
    pub fn brokers_down(&self) -> Result<(), EmbeddedError> {
        self.call(|reply| Command::SetBrokers { up: false, reply })
    }

    pub fn brokers_up(&self) -> Result<(), EmbeddedError> {
        self.call(|reply| Command::SetBrokers { up: true, reply })
    }

    fn call(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<(), String>>) -> Command,
    ) -> Result<(), EmbeddedError> {
        let (reply, result) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or_else(|| EmbeddedError::Command("stopped".into()))?
            .send(make(reply))
            .map_err(|e| EmbeddedError::Command(e.to_string()))?;
        result
            .recv()
            .map_err(|e| EmbeddedError::Command(e.to_string()))?
            .map_err(EmbeddedError::Command)
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which drops (destroys) the cluster.
        self.commands.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
