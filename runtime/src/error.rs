//! One error type for the library. Every variant renders as one line that names the config
//! field or the kernel step, because that line is what engines show their users.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config.json / process.json field is malformed or impossible.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    /// A kernel or filesystem step failed.
    #[error("{step}: {source}")]
    Os {
        step: String,
        #[source]
        source: io::Error,
    },
    /// The request does not fit the container's state (not found, wrong status, ...).
    #[error("{0}")]
    State(String),
    /// The container init reported a failure over the sync socket; already formatted.
    #[error("{0}")]
    Child(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A config error naming `field`.
pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        msg: msg.into(),
    }
}

/// A state error (wrong status, unknown id, ...).
pub fn state(msg: impl Into<String>) -> Error {
    Error::State(msg.into())
}

/// Attach the name of the step to an OS error.
pub trait StepExt<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T>;
}

impl<T> StepExt<T> for io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Os {
            step: step(),
            source,
        })
    }
}

impl<T> StepExt<T> for nix::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Os {
            step: step(),
            source: io::Error::from_raw_os_error(errno as i32),
        })
    }
}

impl<T> StepExt<T> for std::result::Result<T, caps::errors::CapsError> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Os {
            step: step(),
            source: io::Error::other(e.to_string()),
        })
    }
}

impl Error {
    /// The errno behind an OS error, if any (used where a fallback depends on it).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
