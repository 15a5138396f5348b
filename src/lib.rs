//! realstat: the CC-CMS `realstatistic` interface, computed event-sourced from iSales call events.
//!
//! Layers, from the inside out:
//! - [`events`] and [`fold`]: the domain core. Event schema and validation, the per-task fold and
//!   the numbers it serves. Knows nothing of HTTP or Kafka.
//! - [`auth`]: the C2 AK/SK request signature and the keys file.
//! - [`ingest`]: the Kafka consumer that feeds the fold.
//! - [`api`] and [`admin`]: the HTTP listeners.
//! - [`startup`], [`config`], [`cli`]: wiring.

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod embedded;
pub mod events;
pub mod fold;
pub mod ingest;
pub mod metrics;
pub mod simulate;
pub mod snapshot;
pub mod startup;
pub mod telemetry;
pub mod tls;
