//! The realstatistic API over real sockets: the application is built per test on loopback port 0
//! and fed through librdkafka's mock cluster, the same consumer code as production.

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod batch;
mod breakdown;
mod dead_letters;
mod errors;
mod health;
mod keys;
mod outage;
mod realstatistic;
mod restore;
mod stream;
mod tls;
mod wallboard;
