//! The realstatistic API over real sockets: the application is built per test on loopback port 0
//! and fed through librdkafka's mock cluster, the same consumer code as production.

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod batch;
mod bounds;
mod breakdown;
mod callback;
mod dead_letters;
mod drain;
mod errors;
mod failstats;
mod fold_metrics;
mod health;
mod hostile_clients;
mod http_client;
mod keys;
mod outage;
mod query;
mod realstatistic;
mod resets;
mod restore;
mod staleness;
mod stalled_bodies;
mod stream;
mod supervision;
mod timezones;
mod tls;
mod wallboard;
