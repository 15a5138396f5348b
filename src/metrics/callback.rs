//! The callback listener's metrics and their verbs (`realstat_callback_*`). Labels are closed
//! sets: no token, address or record field ever becomes a label value.

use prometheus::{Histogram, IntCounterVec, IntGauge, Registry};

use super::defs::{
    CALLBACK_INVALID, CALLBACK_PRODUCE, CALLBACK_PUSHES, CALLBACK_RECORDS, CALLBACK_TOKENS,
    CALLBACK_TOKENS_RELOADS, LATENCY_BUCKETS,
};
use super::{counter_vec, gauge, histogram, Metrics};

/// How a push was answered, the `outcome` of `realstat_callback_pushes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every event (and dead-letter copy) acknowledged: `retCode` 0.
    Accepted,
    /// Not JSON, or not an array.
    Malformed,
    /// Body or record count over the bound.
    TooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    UnknownToken,
    /// An unknown token from an address locked after repeated unknown tokens.
    Locked,
    /// Kafka did not acknowledge within the deadline, or refused.
    NotStored,
}

impl PushOutcome {
    pub const ALL: [PushOutcome; 7] = [
        PushOutcome::Accepted,
        PushOutcome::Malformed,
        PushOutcome::TooLarge,
        PushOutcome::BodyTimeout,
        PushOutcome::UnknownToken,
        PushOutcome::Locked,
        PushOutcome::NotStored,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            PushOutcome::Accepted => "accepted",
            PushOutcome::Malformed => "malformed",
            PushOutcome::TooLarge => "too_large",
            PushOutcome::BodyTimeout => "body_timeout",
            PushOutcome::UnknownToken => "unknown_token",
            PushOutcome::Locked => "locked",
            PushOutcome::NotStored => "not_stored",
        }
    }
}

/// Why a call-result record was refused: the `reason` of
/// `realstat_callback_invalid_records_total` and the dead-letter header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidRecord {
    NotObject,
    BadCampaignId,
    BadVdn,
    VdnNotAllowed,
    BadCallStatus,
    BadCallTime,
    BadCallId,
    BadFailCode,
}

impl InvalidRecord {
    pub const ALL: [InvalidRecord; 8] = [
        InvalidRecord::NotObject,
        InvalidRecord::BadCampaignId,
        InvalidRecord::BadVdn,
        InvalidRecord::VdnNotAllowed,
        InvalidRecord::BadCallStatus,
        InvalidRecord::BadCallTime,
        InvalidRecord::BadCallId,
        InvalidRecord::BadFailCode,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            InvalidRecord::NotObject => "not_object",
            InvalidRecord::BadCampaignId => "bad_campaign_id",
            InvalidRecord::BadVdn => "bad_vdn",
            InvalidRecord::VdnNotAllowed => "vdn_not_allowed",
            InvalidRecord::BadCallStatus => "bad_call_status",
            InvalidRecord::BadCallTime => "bad_call_time",
            InvalidRecord::BadCallId => "bad_call_id",
            InvalidRecord::BadFailCode => "bad_fail_code",
        }
    }
}

pub(super) struct CallbackMetrics {
    pushes: IntCounterVec,
    records: IntCounterVec,
    invalid: IntCounterVec,
    produce: Histogram,
    tokens: IntGauge,
    reloads: IntCounterVec,
}

/// Produce latency reaches the deadline (seconds), beyond the API's buckets.
const PRODUCE_BUCKETS_TAIL: &[f64] = &[2.5, 5.0, 10.0, 30.0];

impl CallbackMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let buckets: Vec<f64> = LATENCY_BUCKETS
            .iter()
            .chain(PRODUCE_BUCKETS_TAIL)
            .copied()
            .collect();
        let m = CallbackMetrics {
            pushes: counter_vec(r, CALLBACK_PUSHES),
            records: counter_vec(r, CALLBACK_RECORDS),
            invalid: counter_vec(r, CALLBACK_INVALID),
            produce: histogram(r, CALLBACK_PRODUCE, &buckets),
            tokens: gauge(r, CALLBACK_TOKENS),
            reloads: counter_vec(r, CALLBACK_TOKENS_RELOADS),
        };
        for o in PushOutcome::ALL {
            m.pushes.with_label_values(&[o.label()]);
        }
        for r in InvalidRecord::ALL {
            m.invalid.with_label_values(&[r.label()]);
        }
        for o in ["written", "invalid", "not_stored"] {
            m.records.with_label_values(&[o]);
        }
        for o in ["ok", "rejected"] {
            m.reloads.with_label_values(&[o]);
        }
        m
    }
}

impl Metrics {
    pub fn callback_push(&self, outcome: PushOutcome) {
        self.callback
            .pushes
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// The records of one parsed push: `written` on the topic, or `not_stored` when the push
    /// failed (a retry brings them again).
    pub fn callback_records(&self, written: bool, count: usize) {
        let label = if written { "written" } else { "not_stored" };
        self.callback
            .records
            .with_label_values(&[label])
            .inc_by(count as u64);
    }

    /// A record refused for `reason`.
    pub fn callback_record_invalid(&self, reason: InvalidRecord) {
        self.callback.records.with_label_values(&["invalid"]).inc();
        self.callback
            .invalid
            .with_label_values(&[reason.label()])
            .inc();
    }

    pub fn callback_produced(&self, seconds: f64) {
        self.callback.produce.observe(seconds);
    }

    /// A tokens file read: `Some(count)` swapped in, `None` rejected (the old tokens stay).
    pub fn callback_tokens_reloaded(&self, count: Option<usize>) {
        let label = if count.is_some() { "ok" } else { "rejected" };
        self.callback.reloads.with_label_values(&[label]).inc();
        if let Some(n) = count {
            self.callback_tokens_in_force(n);
        }
    }

    pub fn callback_tokens_in_force(&self, count: usize) {
        self.callback
            .tokens
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}
