//! The operations sections: `[health]`, `[metrics]` and `[log]` (the
//! rate limits sit in `[limits]` beside the size caps).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `GET /readyz`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// The outbox is stuck (not ready) when its oldest queued mail is at
    /// least this old; 0 turns the check off.
    pub outbox_max_age_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            outbox_max_age_secs: 900,
        }
    }
}

/// Prometheus metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record metrics and serve them; off: nothing is recorded and
    /// `/metrics` is unknown (404).
    pub enabled: bool,
    /// Serve `/metrics` on this address alone (an admin port) instead of
    /// on `listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// How log lines are written (standard error; `RUST_LOG` picks levels).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (one readable line) or `json` (one object per line).
    pub format: LogFormat,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// tracing-subscriber's text lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
