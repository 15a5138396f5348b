//! Tooling that is not the service: the embedded demo (librdkafka's mock cluster plus the
//! traffic simulator), the simulator itself, and the `realstat query` and `simulate` commands.
//!
//! Behind the `dev` cargo feature (on by default) so that a production image can be built
//! without it: `cargo build --release --no-default-features`.

pub mod commands;
pub mod demo;
pub mod embedded;
pub mod query;
pub mod simulate;
