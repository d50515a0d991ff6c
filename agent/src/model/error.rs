//! Azure-style errors: `{"error": {"code": ..., "message": ..., "target": ...}}`.

use serde::{Deserialize, Serialize};

/// An error the way ARM reports it. `code` is Azure's code (e.g.
/// `InvalidTemplate`, `SubnetTooSmall`); `message` is plain words that name the
/// resource and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AzureError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The errors underneath, as ARM nests them (`DeploymentFailed` ->
    /// the failing resource's own error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<AzureError>,
    /// HTTP status the API answers with (400 bad request, 404 not found, 409 conflict, ...).
    #[serde(skip)]
    pub status: u16,
}

impl AzureError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        AzureError {
            code: code.into(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            status,
        }
    }
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }
    pub fn with_details(mut self, details: Vec<AzureError>) -> Self {
        self.details = details;
        self
    }
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    /// ARM's error envelope.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self })
    }
}
