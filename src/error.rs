//! Error kinds the binary maps to exit codes: usage and config errors exit 2, the rest 1.
use std::fmt;

/// A problem with the configuration (YAML, object/config mismatch): exit status 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// A problem with the command line (unknown config name, bad argument value): exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

/// Builds a [`ConfigError`] wrapped in `anyhow`.
pub fn config_err(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(msg.into()))
}

/// Builds a [`UsageError`] wrapped in `anyhow`.
pub fn usage_err(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Exit status for an error chain: 2 for usage/config problems, 1 otherwise (a double interrupt
/// exits 130 from the signal handler in `window.rs`, not through an error).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<ConfigError>() || cause.is::<UsageError>() {
            return 2;
        }
    }
    1
}
