//! The vendor's result codes (api.md, "Errors"): the `resultCode` of every answer and the `code`
//! label of the request metrics. A module of its own, importing nothing, so that `api` (which
//! answers with them), `metrics` (which counts them) and the tools (which judge answers by them)
//! share one definition without depending on each other.

/// A `resultCode`. Business errors travel in the body (HTTP 200), so the code, not the status,
/// says what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `0100000`: the answer holds the values asked for.
    Success,
    /// `0100001`: the call itself failed (method, authentication, lockout).
    InvocationFailed,
    /// `0100002`: a parameter, the body or its size is not acceptable.
    InvalidParameter,
    /// `0100999`: the service cannot answer (not ready, or an internal failure).
    UnknownError,
    /// `0101003`: the key may not read what it asked for.
    InsufficientPermission,
}

impl ResultCode {
    pub const ALL: [ResultCode; 5] = [
        ResultCode::Success,
        ResultCode::InvocationFailed,
        ResultCode::InvalidParameter,
        ResultCode::UnknownError,
        ResultCode::InsufficientPermission,
    ];

    /// The code as it is written in a body and a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResultCode::Success => "0100000",
            ResultCode::InvocationFailed => "0100001",
            ResultCode::InvalidParameter => "0100002",
            ResultCode::UnknownError => "0100999",
            ResultCode::InsufficientPermission => "0101003",
        }
    }

    /// The code a text names, if it is one of the vendor's.
    pub fn parse(text: &str) -> Option<ResultCode> {
        ResultCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ResultCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_vendors_and_read_back() {
        let texts: Vec<&str> = ResultCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            texts,
            ["0100000", "0100001", "0100002", "0100999", "0101003"]
        );
        for c in ResultCode::ALL {
            assert_eq!(ResultCode::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).ok(), Some(format!("\"{c}\"")));
        }
        assert_eq!(ResultCode::parse("0100003"), None);
    }
}
