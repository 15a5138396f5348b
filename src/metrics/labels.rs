//! The closed label sets of the metrics, each an enum whose `label` is its one spelling. The
//! parts that count (auth, ingest, the stream feed) name a variant; only this module writes the
//! text.

/// What went wrong in the Kafka client, the `kind` of `realstat_consumer_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerError {
    Metadata,
    Assign,
    Watermarks,
    Poll,
}

impl ConsumerError {
    pub const ALL: [ConsumerError; 4] = [
        ConsumerError::Metadata,
        ConsumerError::Assign,
        ConsumerError::Watermarks,
        ConsumerError::Poll,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            ConsumerError::Metadata => "metadata",
            ConsumerError::Assign => "assign",
            ConsumerError::Watermarks => "watermarks",
            ConsumerError::Poll => "poll",
        }
    }
}

/// Why a partition's position was reset, the `reason` of `realstat_log_resets_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReset {
    /// The position lies below the log's start: retention deleted events not read yet.
    Truncated,
    /// The position lies beyond the log's end: the topic was deleted and created again.
    Recreated,
}

impl LogReset {
    pub const ALL: [LogReset; 2] = [LogReset::Truncated, LogReset::Recreated];

    pub const fn label(self) -> &'static str {
        match self {
            LogReset::Truncated => "truncated",
            LogReset::Recreated => "recreated",
        }
    }
}

/// Why a request was refused before it was answered, the `category` of
/// `realstat_auth_failures_total`. The first five are the signature check's failures
/// (`auth::AuthError::category`); they keep apart what the client is told alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No Authorization header.
    Missing,
    /// The Authorization value, or a signed header, is not well formed.
    Malformed,
    /// The signing time is outside the allowed clock skew.
    Expired,
    /// The access key is not known.
    UnknownKey,
    /// The signature does not match.
    Mismatch,
    /// The client's address is locked out.
    Locked,
    /// A valid key without the right to read the requested VDN or call center.
    Forbidden,
    /// The `Host` is not one of `auth.allowed_hosts`.
    WrongHost,
}

impl AuthRefusal {
    pub const ALL: [AuthRefusal; 8] = [
        AuthRefusal::Missing,
        AuthRefusal::Malformed,
        AuthRefusal::Expired,
        AuthRefusal::UnknownKey,
        AuthRefusal::Mismatch,
        AuthRefusal::Locked,
        AuthRefusal::Forbidden,
        AuthRefusal::WrongHost,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            AuthRefusal::Missing => "missing",
            AuthRefusal::Malformed => "malformed",
            AuthRefusal::Expired => "expired",
            AuthRefusal::UnknownKey => "unknown_key",
            AuthRefusal::Mismatch => "mismatch",
            AuthRefusal::Locked => "locked",
            AuthRefusal::Forbidden => "forbidden",
            AuthRefusal::WrongHost => "wrong_host",
        }
    }
}

/// Why a live stream ended: the `reason` of `realstat_streams_ended_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client closed the connection.
    Client,
    /// The client did not read what was sent.
    SlowReader,
    /// The key was removed, or changed its secret or scope.
    KeyRevoked,
    /// The process is stopping.
    Shutdown,
}

impl StreamEnd {
    pub const ALL: [StreamEnd; 4] = [
        StreamEnd::Client,
        StreamEnd::SlowReader,
        StreamEnd::KeyRevoked,
        StreamEnd::Shutdown,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            StreamEnd::Client => "client",
            StreamEnd::SlowReader => "slow_reader",
            StreamEnd::KeyRevoked => "key_revoked",
            StreamEnd::Shutdown => "shutdown",
        }
    }
}

/// What folding a valid event did: the `effect` of `realstat_events_applied_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The state moved.
    Changed,
    /// A duplicate, a redelivery, or a state below the call's current one.
    Unchanged,
}

impl Effect {
    pub const ALL: [Effect; 2] = [Effect::Changed, Effect::Unchanged];

    pub const fn label(self) -> &'static str {
        match self {
            Effect::Changed => "changed",
            Effect::Unchanged => "unchanged",
        }
    }
}

/// How a keys file reload went: the `result` of `realstat_keys_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeysReload {
    Ok,
    Rejected,
}

impl KeysReload {
    pub(super) const ALL: [KeysReload; 2] = [KeysReload::Ok, KeysReload::Rejected];

    pub(super) const fn label(self) -> &'static str {
        match self {
            KeysReload::Ok => "ok",
            KeysReload::Rejected => "rejected",
        }
    }
}
