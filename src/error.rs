//! The library's one error type. Every variant carries the facts a user needs to fix the
//! problem without a debugger: the file, the record, what was found and what was expected.

use std::path::PathBuf;

/// Everything that can go wrong in nabla's library code.
#[derive(Debug, thiserror::Error)]
pub enum NablaError {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {error}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error (part of the message, so not repeated as a `source`).
        error: std::io::Error,
    },
    /// A data file is malformed: names the file, where in it, and what was expected.
    #[error("{path}: {location}: {message}")]
    Data {
        /// The file involved.
        path: PathBuf,
        /// Where in the file: `line 12, column "age"`, `header`, `byte 16`, ...
        location: String,
        /// What was found and what was expected.
        message: String,
    },
    /// Settings that cannot work together, or a value out of range.
    #[error("{0}")]
    Usage(String),
    /// Tensor shapes that do not fit an operation.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Training produced a non-finite loss or gradient.
    #[error("{0}")]
    Diverged(String),
}

impl NablaError {
    /// True for errors caused by the user's data or settings (exit code 2 at the CLI), false for
    /// failures of the environment or of training itself (exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(self, NablaError::Data { .. } | NablaError::Usage(_))
    }

    /// Builds an [`NablaError::Data`].
    pub fn data(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        NablaError::Data {
            path: path.into(),
            location: location.into(),
            message: message.into(),
        }
    }

    /// Builds an [`NablaError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NablaError::Io {
            path: path.into(),
            error: source,
        }
    }
}
