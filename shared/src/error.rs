//! Taskcluster's error format (SPEC §2.3): `{code, message, requestInfo}` with the HTTP
//! status that goes with each code.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedPayload,
    InvalidRequestArguments,
    InputValidationError,
    InputError,
    AuthenticationFailed,
    InsufficientScopes,
    ResourceNotFound,
    RequestConflict,
    InternalServerError,
    /// A dependency (the Queue, the key-value store) did not answer: try again later.
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedPayload | InvalidRequestArguments | InputValidationError | InputError => 400,
            AuthenticationFailed => 401,
            InsufficientScopes => 403,
            ResourceNotFound => 404,
            RequestConflict => 409,
            InternalServerError => 500,
            ServiceUnavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedPayload => "MalformedPayload",
            InvalidRequestArguments => "InvalidRequestArguments",
            InputValidationError => "InputValidationError",
            InputError => "InputError",
            AuthenticationFailed => "AuthenticationFailed",
            InsufficientScopes => "InsufficientScopes",
            ResourceNotFound => "ResourceNotFound",
            RequestConflict => "RequestConflict",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

/// An API error before it knows which request it belongs to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The response body, with the request it answers (`method` is the API method name).
    pub fn body(&self, method: &str, params: Value, payload: Value, time: &str) -> Value {
        json!({
            "code": self.code.as_str(),
            "message": self.message,
            "requestInfo": {"method": method, "params": params, "payload": payload, "time": time},
        })
    }
}

impl From<crate::platform::StoreError> for ApiError {
    fn from(e: crate::platform::StoreError) -> Self {
        ApiError::new(ErrorCode::InternalServerError, e.to_string())
    }
}
