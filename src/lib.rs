//! realstat: the CC-CMS `realstatistic` interface, computed event-sourced from iSales call events.
//!
//! Layers, from the inside out (map and data paths: `docs/design.md`):
//! - [`events`] and [`fold`]: the domain core. Event schema and validation, the per-task fold and
//!   the numbers it serves. Knows nothing of HTTP, Kafka or the wall clock.
//! - [`auth`]: the C2 AK/SK request signature, the keys file and the lockout.
//! - [`ingest`]: the Kafka consumer that feeds the fold; [`progress`] is what it tells the rest,
//!   in the [`log_position`] types (partitions and offsets).
//! - [`snapshot`]: the store and its log positions on disk.
//! - [`api`] and [`admin`]: the HTTP handlers; [`server`] runs them on their listeners;
//!   [`wallboard`]: the supervisor page served beside the API.
//! - [`result_code`]: the vendor's result codes, shared by `api`, `metrics` and the tools.
//! - [`startup`], [`config`], [`shutdown`], [`cli`]: wiring.
//! - [`dev`] (feature `dev`): the embedded demo, the simulator and the query client.

pub mod admin;
pub mod api;
pub mod auth;
pub mod callback;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "dev")]
pub mod dev;
pub mod events;
pub mod fold;
pub mod ingest;
pub mod log_position;
pub mod metrics;
pub mod progress;
pub mod result_code;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod wallboard;
