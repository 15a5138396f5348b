//! Configuration: one schema, [`Settings`], read from layered sources (lowest first): built-in
//! defaults, the TOML config file, `REALSTAT_*` environment variables, command-line flags.
//!
//! [`Settings`] is at once the file's schema (serde) and `serve`'s flags and environment
//! variables (clap): each setting is one field, its default written once in its `#[arg]`
//! attribute. Adding a setting is adding a field. [`Settings::load`] lays the layers key by key
//! (figment); it knows nothing of the command line: the caller hands it the values the
//! operator gave in the environment and flags as [`Overrides`]. Values are checked once, here,
//! so a bad value stops the service at start with the setting's name instead of surfacing later.
//!
//! Conventions of the attributes: the doc comment's first line is the setting's description
//! (`--help`, `realstat config schema`, the README table); `value_name` names its type
//! (`DURATION`, `ADDRESS`, `INTEGER`, ...); nested tables give each arg its dotted key as `id`.

mod overrides;
mod settings;
pub mod text;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

use crate::fold::{Calendar, FoldPolicy};

pub use overrides::Overrides;
pub use settings::{
    AuthSettings, CallbackSettings, KafkaSettings, LimitSettings, Settings, SnapshotSettings,
    StreamSettings, TenantSettings, TlsSettings,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(#[source] Box<figment::Error>),
    #[error("config file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

/// Where the demo's callback listens unless an address is given: any free loopback port.
pub const DEMO_CALLBACK_LISTEN: &str = "127.0.0.1:0";
/// Where the demo (no Kafka configured) listens unless an address is given.
pub const DEMO_LISTEN: &str = "127.0.0.1:8080";
pub const DEMO_ADMIN_LISTEN: &str = "127.0.0.1:9090";

impl Settings {
    /// Reads the settings of `serve`: defaults < config file < `overrides` (what the operator
    /// set in the environment and flags), then checks them.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
        // What the operator set, in every source but the defaults.
        let mut given = Figment::new();
        if let Some(path) = file {
            // Read once here for a plain "cannot read" error; figment's parse errors name the file.
            std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
            given = given.merge(Toml::file_exact(path));
        }
        given = given.merge(Serialized::defaults(overrides.as_value()));
        let mut s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(given.clone())
            .extract()
            .map_err(|e| ConfigError::Source(Box::new(e)))?;
        // An empty broker list (e.g. `REALSTAT_KAFKA_BROKERS=`) means "none": the demo.
        s.kafka.brokers = s.kafka.brokers.filter(|b| !b.trim().is_empty());
        if s.kafka.brokers.is_none() {
            // The demo prints a working secret: unless told otherwise, only this machine can
            // reach it.
            if !given.contains("listen") {
                s.listen = DEMO_LISTEN.into();
            }
            if !given.contains("admin_listen") {
                s.admin_listen = DEMO_ADMIN_LISTEN.into();
            }
            // The demo shows the iSales callback too, on a free loopback port, with a token
            // printed at start (docs/callback.md).
            if !given.contains("callback.listen") {
                s.callback.listen = Some(DEMO_CALLBACK_LISTEN.into());
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, addr) in [
            ("listen", &self.listen),
            ("admin_listen", &self.admin_listen),
        ] {
            addr.parse::<SocketAddr>()
                .map_err(|e| invalid(name, format!("{addr:?}: {e} (want ip:port)")))?;
        }
        let at_least_one = [
            ("default_cc_id", usize::from(self.default_cc_id)),
            ("retention_days", usize::from(self.retention_days)),
            ("limits.max_connections", self.limits.max_connections),
            ("limits.max_tasks", self.limits.max_tasks),
            ("limits.max_calls_per_task", self.limits.max_calls_per_task),
            ("streams.max_open", self.streams.max_open),
            ("streams.max_per_key", self.streams.max_per_key),
            ("workers", self.workers.unwrap_or(1)),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(name, "must be at least 1"));
        }
        let positive = [
            ("stale_call_timeout", self.stale_call_timeout),
            ("snapshot.interval", self.snapshot.interval),
            ("auth.keys_poll", self.auth.keys_poll),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(invalid(name, "must be positive"));
        }
        if self.kafka.topic.trim().is_empty() {
            return Err(invalid("kafka.topic", "must not be empty"));
        }
        if self.kafka.brokers.is_some() && self.auth.keys_file.is_none() {
            return Err(invalid(
                "auth.keys_file",
                "required when Kafka brokers are configured (only the embedded demo has a built-in key)",
            ));
        }
        self.allowed_hosts()?;
        if self.limits.max_header_bytes < 1024 {
            return Err(invalid("limits.max_header_bytes", "must be at least 1024"));
        }
        if let Some(bad) = self
            .tenants
            .vdns
            .iter()
            .find(|&&v| v == 0 || v > crate::auth::MAX_VDN)
        {
            return Err(invalid(
                "tenants.vdns",
                format!("{bad} is not a VDN (1..5000)"),
            ));
        }
        if self.tenants.cc_ids.contains(&0) {
            return Err(invalid(
                "tenants.cc_ids",
                "0 is not a call center (1..65535)",
            ));
        }
        self.callback.validate(self.kafka.brokers.is_none())
    }

    /// The names the API answers to (`auth.allowed_hosts`; empty: any).
    pub fn allowed_hosts(&self) -> Result<crate::auth::AllowedHosts, ConfigError> {
        crate::auth::AllowedHosts::parse(&self.auth.allowed_hosts)
            .map_err(|e| invalid("auth.allowed_hosts", e.to_string()))
    }

    pub fn calendar(&self) -> Calendar {
        self.timezone.clone()
    }

    /// Every tenant's calendar: `timezones` over the default `timezone`.
    pub fn time_zones(&self) -> crate::fold::TimeZones {
        crate::fold::TimeZones::new(self.timezone.clone(), self.timezones.iter().cloned())
    }

    pub fn fold_policy(&self) -> FoldPolicy {
        FoldPolicy {
            retention_days: self.retention_days,
            stale_after_ms: millis(self.stale_call_timeout),
            max_future_ms: millis(self.max_future_skew),
            max_tasks: self.limits.max_tasks,
            max_calls_per_task: self.limits.max_calls_per_task,
            history_days: self.history_days,
        }
    }

    /// The API listener's protections.
    pub fn http_limits(&self) -> crate::api::Limits {
        let l = &self.limits;
        crate::api::Limits {
            max_header_bytes: l.max_header_bytes,
            request_head_timeout: l.request_head_timeout,
            body_timeout: l.body_timeout,
            keep_alive: l.keep_alive,
            max_connections: l.max_connections,
        }
    }

    pub fn tenant_filter(&self) -> crate::events::TenantFilter {
        crate::events::TenantFilter::new(&self.tenants.cc_ids, &self.tenants.vdns)
    }

    /// librdkafka properties in the order they apply.
    pub fn kafka_properties(&self) -> Vec<(String, String)> {
        self.kafka.properties.clone()
    }
}

impl CallbackSettings {
    /// Only when the listener is on: a replica without it ignores the other keys. The demo
    /// (`demo`: no brokers) makes up a token when no tokens file is given.
    fn validate(&self, demo: bool) -> Result<(), ConfigError> {
        let Some(addr) = &self.listen else {
            return Ok(());
        };
        addr.parse::<SocketAddr>()
            .map_err(|e| invalid("callback.listen", format!("{addr:?}: {e} (want ip:port)")))?;
        if self.tokens_file.is_none() && !demo {
            return Err(invalid(
                "callback.tokens_file",
                "required with callback.listen",
            ));
        }
        if self.deadline.is_zero() {
            return Err(invalid("callback.deadline", "must be positive"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("callback.max_body_bytes", "must be at least 1024"));
        }
        if self.max_records == 0 {
            return Err(invalid("callback.max_records", "must be at least 1"));
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_that_are_not_hosts_are_refused() {
        let mut s = Settings::default();
        s.auth.allowed_hosts = vec!["realstat.example:8080".into(), "[fd00::1]".into()];
        assert!(s.validate().is_ok());
        s.auth.allowed_hosts.push("http://realstat.example".into());
        let err = s.validate().expect_err("a URL is not a host").to_string();
        assert!(err.contains("auth.allowed_hosts"), "{err}");
    }
}
